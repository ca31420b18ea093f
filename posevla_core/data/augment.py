"""Label-consistent augmentation of one observation.

A crop moves the principal point (K) and the 2D box center with it; 3D targets stay put
because the camera frame does not change when pixels are dropped. Resizing back to the
original size scales K and the box. Photometric jitter touches colors only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posevla_core.image import crop_with_intrinsics, resize_with_intrinsics
from posevla_core.poses import PoseTarget


@dataclass
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.8, 1.0)     # side of the crop / side of the image
    brightness: float = 0.15                          # multiplicative, +-
    contrast: float = 0.15
    keep_box_inside: bool = True                      # never crop the grounded object out


def crop(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, target: PoseTarget | None,
         x0: int, y0: int, w: int, h: int):
    """Crop [y0:y0+h, x0:x0+w]; returns (rgb, depth, K, target) with K and the box updated."""
    H, W = rgb.shape[:2]
    rgb2, d2, K2 = crop_with_intrinsics(rgb, depth, K, x0, y0, w, h)   # checks the window
    t2 = target
    if target is not None:
        t2 = target.map_image(lambda uv: ((uv[0] * W - x0) / w, (uv[1] * H - y0) / h))
    return rgb2, d2, K2, t2


def random_crop_resize(rng: np.random.Generator, rgb, depth, K, target: PoseTarget | None,
                       cfg: AugmentConfig = AugmentConfig()):
    """A random square-ish crop (same aspect as the image) resized back to the input size."""
    H, W = rgb.shape[:2]
    s = float(rng.uniform(*cfg.crop_scale))
    w, h = max(8, int(round(W * s))), max(8, int(round(H * s)))
    x_lo, x_hi, y_lo, y_hi = 0, W - w, 0, H - h
    if target is not None and target.instances:
        return rgb, depth, K, target          # a detect answer: every instance must stay in view
    if cfg.keep_box_inside and target is not None and target.found:
        # the whole 2D box when known (else its center) stays inside, with a small margin
        bx = target.box_xyxy or (*target.box_uv, *target.box_uv)
        x1, y1, x2, y2 = bx[0] * W, bx[1] * H, bx[2] * W, bx[3] * H
        margin = 0.05 * min(w, h)
        x_lo, x_hi = max(x_lo, int(np.ceil(x2 + margin - w))), min(x_hi, int(np.floor(x1 - margin)))
        y_lo, y_hi = max(y_lo, int(np.ceil(y2 + margin - h))), min(y_hi, int(np.floor(y1 - margin)))
        if x_lo > x_hi or y_lo > y_hi:
            return rgb, depth, K, target
    x0, y0 = int(rng.integers(x_lo, x_hi + 1)), int(rng.integers(y_lo, y_hi + 1))
    rgb_c, d_c, K_c, t_c = crop(rgb, depth, K, target, x0, y0, w, h)
    if (w, h) == (W, H):
        return rgb_c, d_c, K_c, t_c
    rgb_r, d_r, K_r = resize_with_intrinsics(rgb_c, d_c, K_c, (W, H))
    return rgb_r, d_r, K_r, t_c          # the normalized box center does not change on resize


def color_jitter(rng: np.random.Generator, rgb: np.ndarray, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    x = rgb.astype(np.float32)
    b = 1.0 + rng.uniform(-cfg.brightness, cfg.brightness)
    c = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    mean = x.mean()
    x = (x - mean) * c + mean * b
    return np.clip(x, 0, 255).astype(np.uint8)
