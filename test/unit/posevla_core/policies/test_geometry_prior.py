"""Geometry prior: back-projection, robust per-patch aggregation, additive wiring."""
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from posevla_core.config import GeometryConfig
from posevla_core.policies.geometry_prior import (GeometryPrior, backproject, depth_support, patch_points, project)

K = np.array([[100.0, 0, 7.5], [0, 120.0, 7.5], [0, 0, 1]])


def test_backproject_hand_computed():
    depth = np.full((16, 16), 2.0, np.float32)
    p = backproject(depth, K)
    # Pixel (u=11.5 -> use u=11, v=3): x = (11 - 7.5) * 2 / 100, y = (3 - 7.5) * 2 / 120.
    np.testing.assert_allclose(p[3, 11], [0.07, -0.075, 2.0], atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 15), st.integers(0, 15), st.floats(0.3, 5.0))
def test_project_inverts_backproject(u, v, z):
    depth = np.full((16, 16), z, np.float32)
    uv = project(backproject(depth, K)[v, u], K)
    np.testing.assert_allclose(uv, [u, v], atol=1e-3)


def test_patch_median_ignores_holes_and_flags_empty_patches():
    depth = np.full((16, 16), 1.0, np.float32)
    depth[0:8, 0:8] = np.nan                 # patch 0: no reading at all
    depth[0:8, 8:16] = 0.0
    depth[0:2, 8:10] = 1.5                   # patch 1: few valid pixels
    depth[8, 8] = 50.0                       # patch 3: one flying pixel
    xyz, ok = patch_points(depth, K, 8, min_valid_fraction=0.05)
    assert xyz.shape == (4, 3) and ok.tolist() == [False, True, True, True]
    assert xyz[1, 2] == 1.5 and xyz[3, 2] == 1.0     # the median shrugs off the outlier
    assert np.all(xyz[0] == 0)


def test_prior_is_added_and_no_depth_embedding_is_used():
    prior = GeometryPrior(GeometryConfig(), 32)
    xyz = torch.tensor([[[0.1, 0.0, 1.0], [0.3, 0.0, 1.0]]])
    emb = prior(xyz, torch.tensor([[True, False]]), 1, 2)
    assert torch.equal(emb[0, 1], prior.no_depth)
    assert not torch.equal(emb[0, 0], prior.no_depth)
    emb2 = prior(xyz + 0.05, torch.tensor([[True, True]]), 1, 2)
    assert not torch.allclose(emb[0, 0], emb2[0, 0])
    assert torch.equal(prior(None, None, 2, 3)[1, 2], prior.no_depth)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 0.995))
def test_patch_median_equals_numpys_nanmedian(seed, holes):
    """The sort-based per-patch median is np.nanmedian exactly, for any fraction of holes."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.3, 2.0, (32, 32)).astype(np.float32)
    d[rng.random((32, 32)) < holes] = np.nan
    K = np.array([[40.0, 0, 15.5], [0, 45.0, 16.0], [0, 0, 1]])
    med, ok = patch_points(d, K, 8, 0.05)
    pts = backproject(d, K).reshape(4, 8, 4, 8, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 64, 3)
    with np.errstate(all="ignore"):
        ref = np.nanmedian(pts[ok], axis=1).astype(np.float32)
    assert np.array_equal(med[ok], ref) and not med[~ok].any()


@settings(max_examples=30, deadline=None)
@given(st.floats(10, 2000), st.floats(10, 2000), st.floats(-2, 2), st.floats(-50, 100), st.floats(-50, 100))
def test_ray_map_is_the_inverse_intrinsics_applied_to_pixel_centers(fx, fy, skew, cx, cy):
    from posevla_core.policies.geometry_prior import ray_map

    K = np.array([[fx, skew, cx], [0, fy, cy], [0, 0, 1]])
    v, u = np.mgrid[0:12, 0:10].astype(np.float64)
    ref = (np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])).reshape(3, 12, 10)
    assert np.allclose(ray_map(K, 12, 10), ref, rtol=1e-5, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.floats(-20, 120), st.floats(-20, 100), st.floats(0.0, 1.0), st.integers(0, 2**16))
def test_depth_support_is_the_valid_share_of_the_window(u, v, hole_share, seed):
    """depth_support counts finite, positive readings in the clipped window around (u, v):
    compared with a direct count, over random holes (NaN, 0, negative) and windows that leave
    the image."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.3, 2.0, (80, 100)).astype(np.float32)
    holes = rng.random(depth.shape) < hole_share
    depth[holes] = rng.choice([np.nan, 0.0, -1.0], size=int(holes.sum()))
    r = 3                                                     # 0.02 x 80 px rounds to 2: the 3-px floor
    u0, u1, v0, v1 = max(0, int(np.floor(u)) - r), min(100, int(np.floor(u)) + r + 1), \
        max(0, int(np.floor(v)) - r), min(80, int(np.floor(v)) + r + 1)
    got = depth_support(depth, (u, v))
    if u0 >= u1 or v0 >= v1:
        assert got == 0.0
    else:
        win = depth[v0:v1, u0:u1]
        assert np.isclose(got, np.mean(np.isfinite(win) & (win > 0)))
    assert depth_support(depth, (np.nan, 10.0)) == 0.0
