"""Raw buffer decoding and intrinsics bookkeeping on resize/crop."""
import numpy as np
import pytest

from posevla_core.policies.geometry_prior import project
from posevla_core.image import crop_with_intrinsics, decode_color, decode_depth, resize_with_intrinsics

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 255, (6, 5, 3), dtype=np.uint8)


def padded(arr2d_bytes: np.ndarray, pad: int) -> tuple[bytes, int]:
    h = arr2d_bytes.shape[0]
    rows = arr2d_bytes.reshape(h, -1)
    out = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return out.tobytes(), out.shape[1]


@pytest.mark.parametrize("enc,conv", [
    ("rgb8", lambda x: x), ("bgr8", lambda x: x[..., ::-1]),
    ("rgba8", lambda x: np.concatenate([x, np.full(x.shape[:2] + (1,), 255, np.uint8)], -1)),
    ("bgra8", lambda x: np.concatenate([x[..., ::-1], np.full(x.shape[:2] + (1,), 7, np.uint8)], -1)),
])
@pytest.mark.parametrize("pad", [0, 3, 16])
def test_color_encodings_with_padding(enc, conv, pad):
    data, step = padded(np.ascontiguousarray(conv(RGB)).view(np.uint8), pad)
    assert np.array_equal(decode_color(data, 6, 5, enc, step), RGB)


def test_mono8():
    g = RGB[..., 0]
    out = decode_color(g.tobytes(), 6, 5, "mono8", 5)
    assert out.shape == (6, 5, 3) and np.array_equal(out[..., 2], g)


@pytest.mark.parametrize("big", [False, True])
def test_depth_16uc1_mm_and_32fc1(big):
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    d = decode_depth(mm.astype(">u2" if big else "<u2").tobytes(), 2, 2, "16UC1", 4, is_bigendian=big)
    assert np.isnan(d[0, 0]) and d[0, 1] == pytest.approx(1.0) and d[1, 0] == pytest.approx(2.5)
    m = np.array([[np.nan, 1.5], [np.inf, -1.0]], np.float32)
    data, step = padded(m.astype(">f4" if big else "<f4").view(np.uint8), 4)
    d = decode_depth(data, 2, 2, "32FC1", step, is_bigendian=big)
    assert d[0, 1] == pytest.approx(1.5) and np.isnan(d[0, 0]) and np.isnan(d[1, 0]) and np.isnan(d[1, 1])


def test_bad_buffers_raise_clear_errors():
    with pytest.raises(ValueError, match="encoding"):
        decode_color(b"\0" * 12, 2, 2, "yuv422")
    with pytest.raises(ValueError, match="bytes"):
        decode_color(b"\0" * 5, 2, 2, "rgb8")
    with pytest.raises(ValueError, match="step"):
        decode_color(b"\0" * 12, 2, 2, "rgb8", step=3)
    with pytest.raises(ValueError, match="no pixels"):
        decode_depth(b"", 0, 2, "32FC1")


K = np.array([[300.0, 0, 159.5], [0, 310.0, 119.5], [0, 0, 1]])
PTS = np.array([[0.1, -0.05, 1.0], [-0.2, 0.1, 0.8], [0.0, 0.0, 2.0]])


def test_resize_updates_K_like_the_pixels():
    rgb = np.zeros((240, 320, 3), np.uint8)
    _, _, K2 = resize_with_intrinsics(rgb, None, K, (160, 120))
    uv = project(PTS, K)
    uv2 = project(PTS, K2)
    # Continuous pixel-center mapping for a 0.5x resize: u' = 0.5 * (u + 0.5) - 0.5.
    np.testing.assert_allclose(uv2, 0.5 * (uv + 0.5) - 0.5, atol=1e-9)


def test_crop_shifts_principal_point():
    rgb = np.zeros((240, 320, 3), np.uint8)
    r, _, K2 = crop_with_intrinsics(rgb, None, K, 40, 0, 240, 240)
    assert r.shape == (240, 240, 3)
    np.testing.assert_allclose(project(PTS, K2), project(PTS, K) - [40, 0], atol=1e-9)
    with pytest.raises(ValueError, match="outside"):
        crop_with_intrinsics(rgb, None, K, 100, 0, 240, 240)


def test_resized_depth_keeps_object_edges():
    depth = np.full((8, 8), 2.0, np.float32)
    depth[:, :4] = 1.0
    _, d2, _ = resize_with_intrinsics(np.zeros((8, 8, 3), np.uint8), depth, np.eye(3), 4)
    assert set(np.unique(d2)) <= {1.0, 2.0}
