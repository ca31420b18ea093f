"""Raw camera buffers -> numpy images, and resizing/cropping that keeps K consistent.

ROS-free on purpose: the policy node uses cv_bridge when it imports and these functions
otherwise, and the training data path uses the same resize/crop, so a pixel means the same
thing on the robot and in training.

Pixel convention (OpenCV/ROS CameraInfo): integer pixel coordinates are pixel centers.
Scaling an image by s maps u to s * (u + 0.5) - 0.5, so fx' = s * fx, cx' = s * (cx + 0.5) - 0.5.
"""
from __future__ import annotations

import numpy as np

_COLOR = {  # encoding -> (channels, order to get RGB)
    "rgb8": (3, (0, 1, 2)), "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)), "bgra8": (4, (2, 1, 0)), "mono8": (1, (0, 0, 0)),
}
_DEPTH = {"16UC1": np.dtype("<u2"), "mono16": np.dtype("<u2"), "32FC1": np.dtype("<f4")}

COLOR_ENCODINGS = tuple(_COLOR)
DEPTH_ENCODINGS = tuple(_DEPTH)


def _rows(data, height: int, width: int, step: int, bytes_per_pixel: int, encoding: str) -> np.ndarray:
    """View ``data`` as (height, width * bytes_per_pixel) bytes, dropping each row's padding."""
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview, np.ndarray))
                        else data, dtype=np.uint8)
    if height <= 0 or width <= 0:
        raise ValueError(f"{encoding} image has no pixels ({width}x{height})")
    row = width * bytes_per_pixel
    if step < row:
        raise ValueError(f"{encoding} image step {step} is smaller than width*{bytes_per_pixel} = {row}")
    if buf.size < step * (height - 1) + row:
        raise ValueError(f"{encoding} image data has {buf.size} bytes, expected {step * height} "
                         f"({height} rows of step {step})")
    if buf.size >= step * height:
        return buf[: step * height].reshape(height, step)[:, :row]
    # The last row may come without its padding.
    padded = np.zeros(step * height, np.uint8)
    padded[: buf.size] = buf
    return padded.reshape(height, step)[:, :row]


def decode_color(data, height: int, width: int, encoding: str, step: int | None = None,
                 is_bigendian: bool = False) -> np.ndarray:
    """An 8-bit color buffer (rgb8, bgr8, rgba8, bgra8, mono8) as an HxWx3 uint8 RGB array."""
    if encoding not in _COLOR:
        raise ValueError(f"unsupported color encoding {encoding!r}; supported: {', '.join(_COLOR)}")
    ch, order = _COLOR[encoding]
    step = width * ch if step is None else int(step)
    rows = _rows(data, height, width, step, ch, encoding)
    px = rows.reshape(height, width, ch)
    return np.ascontiguousarray(px[:, :, list(order)])


def decode_depth(data, height: int, width: int, encoding: str, step: int | None = None,
                 is_bigendian: bool = False) -> np.ndarray:
    """A depth buffer as HxW float32 meters; no reading (0, NaN, inf, negative) becomes NaN.

    16UC1 is millimeters (the RealSense/OpenNI convention), 32FC1 meters (REP-118).
    """
    if encoding not in _DEPTH:
        raise ValueError(f"unsupported depth encoding {encoding!r}; supported: 16UC1 (mm), 32FC1 (m)")
    dt = _DEPTH[encoding].newbyteorder(">" if is_bigendian else "<")
    step = width * dt.itemsize if step is None else int(step)
    rows = _rows(data, height, width, step, dt.itemsize, encoding)
    d = np.ascontiguousarray(rows).view(dt).reshape(height, width).astype(np.float32)
    if dt.kind == "u":
        d *= 1e-3
    d[~np.isfinite(d) | (d <= 0)] = np.nan
    return d


def check_frame(rgb: np.ndarray, depth: np.ndarray | None, K) -> np.ndarray:
    """One clear error for a malformed camera frame; returns K as float64."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be HxWx3 uint8, got {rgb.dtype} {rgb.shape}")
    if depth is not None and depth.shape != rgb.shape[:2]:
        raise ValueError(f"depth {depth.shape} does not match the image {rgb.shape[:2]}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"invalid camera intrinsics K: {K.tolist()}")
    return K


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    K2 = np.array(K, dtype=np.float64).copy()
    K2[0, 0] *= sx
    K2[1, 1] *= sy
    K2[0, 1] *= sx
    K2[0, 2] = sx * (K2[0, 2] + 0.5) - 0.5
    K2[1, 2] = sy * (K2[1, 2] + 0.5) - 0.5
    return K2


def crop_with_intrinsics(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray,
                         x0: int, y0: int, w: int, h: int):
    """Crop the window [x0, x0+w) x [y0, y0+h); the principal point shifts by (x0, y0)."""
    H, W = rgb.shape[:2]
    if not (0 <= x0 and 0 <= y0 and w > 0 and h > 0 and x0 + w <= W and y0 + h <= H):
        raise ValueError(f"crop ({x0}, {y0}, {w}, {h}) outside the {W}x{H} image")
    K2 = np.array(K, dtype=np.float64).copy()
    K2[0, 2] -= x0
    K2[1, 2] -= y0
    d = None if depth is None else depth[y0:y0 + h, x0:x0 + w]
    return rgb[y0:y0 + h, x0:x0 + w], d, K2


def resize_with_intrinsics(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, size: int | tuple[int, int]):
    """Resize to ``size`` (square int or (W, H)). RGB is area/bilinear filtered; depth takes the
    nearest sample so that no depth value is invented between an object and the background."""
    # Pillow: optional (the train extra), only image files need it
    from PIL import Image

    W2, H2 = (size, size) if isinstance(size, int) else size
    H, W = rgb.shape[:2]
    if (W2, H2) == (W, H):
        return rgb, depth, np.array(K, dtype=np.float64)
    out = np.asarray(Image.fromarray(rgb).resize((W2, H2), Image.BILINEAR, reducing_gap=None))
    d2 = None
    if depth is not None:
        # Nearest sample at the center of each output pixel.
        ys = np.clip(((np.arange(H2) + 0.5) * H / H2 - 0.5).round().astype(int), 0, H - 1)
        xs = np.clip(((np.arange(W2) + 0.5) * W / W2 - 0.5).round().astype(int), 0, W - 1)
        d2 = depth[ys][:, xs]
    return out, d2, scale_intrinsics(K, W2 / W, H2 / H)


def center_square_box(height: int, width: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the largest centered square of a height x width image."""
    s = min(height, width)
    return (width - s) // 2, (height - s) // 2, s


def center_square_crop(rgb, depth, K):
    """The largest centered square (the model's input is square)."""
    x0, y0, s = center_square_box(*rgb.shape[:2])
    return crop_with_intrinsics(rgb, depth, K, x0, y0, s, s)


def letterbox(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, size: int):
    """Fit the whole image into a ``size`` x ``size`` square (aspect kept, black bars; depth
    bars are NaN = no reading), unlike a center crop, which would drop the sides of a 4:3 view.
    Returns (rgb, depth, K, (sx, sy, x0, y0)): a continuous image coordinate (x, y) of the input
    is (sx * x + x0, sy * y + y0) in the output (see ``unletterbox_uv``)."""
    H, W = rgb.shape[:2]
    s = size / max(H, W)
    w, h = max(1, round(W * s)), max(1, round(H * s))
    rgb_r, depth_r, K_r = resize_with_intrinsics(rgb, depth, K, (w, h))
    x0, y0 = (size - w) // 2, (size - h) // 2
    out = np.zeros((size, size, 3), np.uint8)
    out[y0:y0 + h, x0:x0 + w] = rgb_r
    d = None
    if depth_r is not None:
        d = np.full((size, size), np.nan, np.float32)
        d[y0:y0 + h, x0:x0 + w] = depth_r
    K2 = np.array(K_r, dtype=np.float64)
    K2[0, 2] += x0
    K2[1, 2] += y0
    return out, d, K2, (w / W, h / H, x0, y0)


def unletterbox_uv(uv, transform, width: int, height: int, size: int) -> tuple[float, float]:
    """Normalized (u, v) in the letterboxed square -> normalized (u, v) in the original image
    (the inverse of ``letterbox``'s ``transform`` = (sx, sy, x0, y0))."""
    sx, sy, x0, y0 = transform
    return ((uv[0] * size - x0) / sx / width, (uv[1] * size - y0) / sy / height)
