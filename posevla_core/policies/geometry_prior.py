"""The 3D geometry prior: depth + intrinsics -> per-patch camera-frame points -> an embedding
ADDED to each vision patch embedding, like a positional encoding (compare SpatialVLA's Ego3D).

Why additive and per patch: the decoder must read metric 3D positions off the image to emit
camera-frame pose tokens. Adding a 3D code to the patch that sees a point lets attention pick
"the red cube's patch" and read its position in one step, without a separate 3D branch.
Depth is noisy (holes, zeros, NaN, flying pixels), so each patch is summarized robustly by
the median of its valid points; patches without enough valid pixels and images without depth
get a learned "no depth" embedding instead of a fake 3D point.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from posevla_core.config import GeometryConfig


def backproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """HxW depth (meters, NaN = no reading) -> HxWx3 camera-frame points (NaN where invalid).

    Pixel (u, v) at depth z: x = (u - cx) z / fx, y = (v - cy) z / fy (optical frame: x right,
    y down, z forward). Skew is ignored (zero for every camera we know of).
    """
    H, W = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u = np.arange(W, dtype=np.float32)[None, :]
    v = np.arange(H, dtype=np.float32)[:, None]
    z = depth.astype(np.float32)
    z = np.where(np.isfinite(z) & (z > 0), z, np.nan)
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixel coordinates."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([K[0, 0] * p[..., 0] / p[..., 2] + K[0, 2], K[1, 1] * p[..., 1] / p[..., 2] + K[1, 2]], -1)


def depth_support(depth: np.ndarray, uv, window: float = 0.02) -> float:
    """The share of valid depth readings (finite, > 0) in a square window around pixel ``uv``
    (x right, y down; half-side ``window`` x the image's shorter side, at least 3 px); 0 outside
    the image.

    Why: both shipped checkpoints place an object along the viewing ray from the depth under it.
    With that depth gone (a RealSense on a black or shiny object) they still answer, decimeters
    off, and do not refuse; a caller refuses such an answer instead. Measured at the grounded box
    center: 0 on 57 of 60 such answers, 1 on every clean sim frame.
    """
    H, W = depth.shape[:2]
    u, v = (float(x) for x in uv)
    if not (np.isfinite(u) and np.isfinite(v)):
        return 0.0
    r = max(3, int(round(window * min(H, W))))
    u0, u1 = int(max(0, np.floor(u) - r)), int(min(W, np.floor(u) + r + 1))
    v0, v1 = int(max(0, np.floor(v) - r)), int(min(H, np.floor(v) + r + 1))
    if u0 >= u1 or v0 >= v1:
        return 0.0
    win = depth[v0:v1, u0:u1]
    return float(np.mean(np.isfinite(win) & (win > 0)))


def patch_points(depth: np.ndarray | None, K: np.ndarray, patch: int,
                 min_valid_fraction: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per patch: the median valid 3D point and whether the patch has enough valid pixels.

    Returns (Hp*Wp, 3) float32 points (zeros where invalid) and a (Hp*Wp,) bool validity mask,
    in row-major patch order (the order of the vision tokens).
    """
    if depth is None:
        return None, None
    H, W = depth.shape
    if H % patch or W % patch:
        raise ValueError(f"depth {W}x{H} is not a multiple of the patch size {patch}")
    pts = backproject(depth, K).reshape(H // patch, patch, W // patch, patch, 3)
    pts = pts.transpose(0, 2, 1, 3, 4).reshape(-1, patch * patch, 3)
    valid = np.isfinite(pts[..., 2])
    frac = valid.mean(axis=1)
    ok = frac >= max(min_valid_fraction, 1e-9)
    med = np.zeros((pts.shape[0], 3), np.float32)
    if ok.any():
        # nanmedian by sorting (NaNs sort last; a pixel is valid in all 3 coordinates or none):
        # the mean of the two middle valid values, as np.nanmedian, without its masked-array path
        srt = np.sort(pts[ok], axis=1)
        n = valid[ok].sum(axis=1)
        lo = np.take_along_axis(srt, ((n - 1) // 2)[:, None, None].repeat(3, -1), axis=1)[:, 0]
        hi = np.take_along_axis(srt, (n // 2)[:, None, None].repeat(3, -1), axis=1)[:, 0]
        med[ok] = (lo + hi) / 2
    return med, ok


class GeometryPrior(nn.Module):
    """Fourier features of each patch's 3D point -> MLP -> an embedding added to the patch.

    Frequencies are geometric from 1 to ``max_frequency`` cycles per meter so that both the
    coarse layout (meters) and grasp-scale offsets (centimeters) are linearly readable.
    """

    def __init__(self, cfg: GeometryConfig, dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        freqs = torch.logspace(0, math.log10(cfg.max_frequency), cfg.num_frequencies) * 2 * math.pi
        self.register_buffer("freqs", freqs, persistent=False)
        in_dim = 3 + 3 * 2 * cfg.num_frequencies
        self.mlp = nn.Sequential(nn.Linear(in_dim, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, dim))
        self.no_depth = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.no_depth, std=0.02)

    def forward(self, xyz: torch.Tensor | None, valid: torch.Tensor | None, batch: int, num: int) -> torch.Tensor:
        """(B, N, 3) points + (B, N) validity -> (B, N, dim); None -> the no-depth embedding."""
        if xyz is None or not self.cfg.use_depth:
            return self.no_depth.expand(batch, num, -1)
        ang = xyz[..., None] * self.freqs                     # B N 3 F
        feats = torch.cat([xyz, ang.sin().flatten(-2), ang.cos().flatten(-2)], dim=-1)
        emb = self.mlp(feats)
        return torch.where(valid[..., None], emb, self.no_depth.expand_as(emb))


# ---- the paper's pixel prior: rays and depth, patchified at the vision patch size -------------
RAY_CHANNELS, DEPTH_CHANNELS = 3, 2


def ray_map(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """(3, H, W) float32 viewing rays K^-1 [u, v, 1] of every pixel center (z = 1): the camera's
    intrinsics as an image, so a model sees K even without depth."""
    # K is upper triangular: its inverse in closed form (no LAPACK call: numpy's inv of a 3x3
    # was measured at ~30 ms per frame on a loaded 2-core machine, waiting on BLAS threads).
    K = np.asarray(K, np.float64)
    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    y = (v - cy) / fy
    x = (u - cx - s * y) / fx
    return np.stack([x, y, np.ones_like(x)]).astype(np.float32)


def depth_map(depth: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """(2, H, W) float32: metric depth (0 where there is no reading) and its valid mask."""
    if depth is None:
        return np.zeros((DEPTH_CHANNELS, height, width), np.float32)
    ok = np.isfinite(depth) & (depth > 0)
    return np.stack([np.where(ok, depth, 0.0), ok]).astype(np.float32)


class PixelPrior(nn.Module):
    """A per-pixel map (B, C, H, W) -> PixelUnshuffle(patch) -> MLP -> (B, N, width) tokens in
    the vision tower's row-major patch order, to be ADDED to its output."""

    def __init__(self, channels: int, patch: int, width: int, hidden: int) -> None:
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(patch)
        self.mlp = nn.Sequential(nn.Linear(channels * patch * patch, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.unshuffle(x).flatten(2).transpose(1, 2))


class RayDepthPrior(nn.Module):
    """Rays (3 ch) and depth + valid mask (2 ch), each through its own ``PixelPrior``; a
    dropped prior (per sample: ``use_rays`` / ``use_depth`` False) contributes nothing."""

    def __init__(self, patch: int, width: int, hidden: int) -> None:
        super().__init__()
        self.rays = PixelPrior(RAY_CHANNELS, patch, width, hidden)
        self.depth = PixelPrior(DEPTH_CHANNELS, patch, width, hidden)

    def forward(self, rays: torch.Tensor, depth: torch.Tensor, use_rays: torch.Tensor,
                use_depth: torch.Tensor) -> torch.Tensor:
        r = self.rays(rays) * use_rays[:, None, None].to(rays.dtype)
        return r + self.depth(depth) * use_depth[:, None, None].to(depth.dtype)
