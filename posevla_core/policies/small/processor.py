"""The small model's processor: a camera frame (+ a pose target) -> one numpy example, and
examples -> a torch batch. Shared by ``predict`` and the training data path, so that a pixel
means the same in both."""
from __future__ import annotations

import numpy as np
import torch

from posevla_core.image import center_square_box, center_square_crop, check_frame, resize_with_intrinsics
from posevla_core.policies.base import IGNORE
from posevla_core.policies.geometry_prior import backproject, patch_points, ray_map
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.layers import STEM_STRIDE
from posevla_core.poses import PoseTarget
from posevla_core.tokens.grammar import PoseTokenizer, grammar_of


def stem_points(depth: np.ndarray | None, K: np.ndarray, stride: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """3D point (camera frame) at the center pixel of every stride x stride cell: (3, S, S)
    float32 (0 where invalid) and a (S, S) validity mask. No depth: all invalid."""
    S = size // stride
    if depth is None:
        return np.zeros((3, S, S), np.float32), np.zeros((S, S), bool)
    c = stride // 2
    pts = backproject(depth, K)[c::stride, c::stride][:S, :S]
    ok = np.isfinite(pts[..., 2])
    return np.where(ok[..., None], pts, 0.0).transpose(2, 0, 1).astype(np.float32), ok


class SmallProcessor:
    """Camera frame (+ target) -> the small model's numpy example, and examples -> a batch.
    Shared by predict and the training data path, so a pixel means the same in both."""

    def __init__(self, cfg: PoseVLAConfig, tokenizer: PoseTokenizer) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer

    def make_example(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                     target: PoseTarget | None = None, rng: np.random.Generator | None = None) -> dict:
        """One model input (numpy) from a camera frame, and its token targets when given.

        The image is center-cropped to a square and resized to cfg.image_size; K follows.
        A target's box center is mapped into the model image. Targets without waypoints
        (grounding data) supervise the grounding steps only (the rest is IGNORE). ``rng`` is
        unused: this model's depth dropout is the trainer's ``depth_dropout``.
        """
        K = check_frame(rgb, depth, K)
        H, W = rgb.shape[:2]
        x0, y0, s = center_square_box(H, W)
        rgb_c, depth_c, K_c = center_square_crop(rgb, depth, K)
        rgb_r, depth_r, K_r = resize_with_intrinsics(rgb_c, depth_c, K_c, self.cfg.image_size)
        xyz, valid = patch_points(depth_r, K_r, self.cfg.patch_size, self.cfg.geometry.min_valid_fraction)
        n = self.cfg.num_patches
        xyz_map, valid_map = stem_points(depth_r, K_r, STEM_STRIDE, self.cfg.image_size)
        ex = {
            "image": np.ascontiguousarray(rgb_r.transpose(2, 0, 1)),
            "xyz": xyz if xyz is not None else np.zeros((n, 3), np.float32),
            "valid": valid if valid is not None else np.zeros(n, bool),
            "xyz_map": xyz_map, "valid_map": valid_map,
            "instruction": instruction,
            "grammar": np.int64(grammar_of(instruction)),
            "crop": np.array([x0, y0, s, W, H], np.float64),
        }
        if self.cfg.geometry.use_rays:
            ex["rays"] = ray_map(K_r, self.cfg.image_size, self.cfg.image_size)
        if self.cfg.glimpse_size:
            ex["image_hr"] = np.ascontiguousarray(
                resize_with_intrinsics(rgb_c, None, K_c, self.cfg.glimpse_size)[0].transpose(2, 0, 1))
        if target is not None:
            t2 = target.map_image(lambda uv: ((uv[0] * W - x0) / s, (uv[1] * H - y0) / s))
            ids, clipped = self.tokenizer.encode(t2)
            labels = np.full(self.tokenizer.seq_len, IGNORE, np.int64)
            labels[: len(ids)] = ids
            ex["labels"], ex["clipped"] = labels, clipped
        return ex

    @staticmethod
    def collate(examples: list[dict]) -> dict:
        out = {"instruction": [e["instruction"] for e in examples]}
        for k in ("image", "xyz", "valid", "xyz_map", "valid_map", "grammar", "crop", "labels", "rays", "image_hr"):
            if k in examples[0]:
                out[k] = torch.from_numpy(np.stack([e[k] for e in examples]))
        return out
