"""Pose tokens: a prediction as a fixed-grammar token sequence, and back.

Vocabulary (ids are contiguous blocks):
    PAD BOS EOS | categories | box bins | position bins | rotation bins | gripper bins
Grammar of one prediction (after BOS):
    category, box_u, box_v, object (x, y, z, rx, ry, rz), T x waypoint (x, y, z, rx, ry, rz, g), EOS
Because every step of the grammar has one field, constrained decoding is "pick the argmax
inside this step's token block" and every decoded sequence parses by construction.

Quantization: value v in [lo, hi] with n bins of width w -> bin floor((v - lo) / w), decoded
at the bin center, so the error is <= w / 2. Values outside the range are clipped to the
edge bin AND reported by field name: a silent wrap would turn 'too far left' into 'far right'.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.config import TokenizerConfig
from posevla_core.types import Pose, PoseTarget, Waypoint

PAD, BOS, EOS = 0, 1, 2
POSE_FIELDS = ("x", "y", "z", "rx", "ry", "rz")


@dataclass(frozen=True)
class Block:
    """A contiguous range of token ids [start, start + size)."""

    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size


class PoseTokenizer:
    def __init__(self, cfg: TokenizerConfig) -> None:
        self.cfg = cfg
        start = 3
        self.blocks: dict[str, Block] = {}
        for name, size in (("category", len(cfg.categories)), ("box", cfg.box_bins),
                           ("position", cfg.position_bins), ("rotation", cfg.rotation_bins),
                           ("gripper", cfg.gripper_bins)):
            self.blocks[name] = Block(start, size)
            start += size
        self.vocab_size = start
        # The grammar: one (field name, block name) per step after BOS.
        steps = [("category", "category"), ("box_u", "box"), ("box_v", "box")]
        steps += [(f"object.{f}", "position" if i < 3 else "rotation") for i, f in enumerate(POSE_FIELDS)]
        for t in range(cfg.num_waypoints):
            steps += [(f"wp{t}.{f}", "position" if i < 3 else "rotation") for i, f in enumerate(POSE_FIELDS)]
            steps.append((f"wp{t}.gripper", "gripper"))
        steps.append(("eos", "eos"))
        self.steps = steps
        self.seq_len = len(steps)
        self.num_grounding_steps = 9   # category, box u/v, object pose: what stage 1 supervises
        lo = np.array([self._range(b)[0] for _, b in steps], dtype=np.int64)
        hi = np.array([self._range(b)[1] for _, b in steps], dtype=np.int64)
        self.step_lo, self.step_hi = lo, hi
        # Ordinal steps (numeric bins) get soft labels in training; category/gripper/eos do not.
        self.step_ordinal = np.array([b in ("box", "position", "rotation") for _, b in steps])

    # ---- blocks and the grammar -------------------------------------------------------------
    def _range(self, block: str) -> tuple[int, int]:
        if block == "eos":
            return EOS, EOS + 1
        b = self.blocks[block]
        return b.start, b.stop

    def allowed_range(self, step: int) -> tuple[int, int]:
        """Token ids allowed at grammar step ``step`` (0 = the token after BOS): [lo, hi)."""
        return int(self.step_lo[step]), int(self.step_hi[step])

    def step_mask(self) -> np.ndarray:
        """(seq_len, vocab) boolean mask of allowed tokens per step, for constrained decoding."""
        m = np.zeros((self.seq_len, self.vocab_size), dtype=bool)
        for s in range(self.seq_len):
            m[s, self.step_lo[s]:self.step_hi[s]] = True
        return m

    def token_names(self) -> list[str]:
        """Human-readable name of every token id (written into checkpoints as the pose vocab)."""
        names = ["<pad>", "<bos>", "<eos>"]
        names += [f"<cat:{c}>" for c in self.cfg.categories]
        for blk in ("box", "position", "rotation", "gripper"):
            names += [f"<{blk}:{i}>" for i in range(self.blocks[blk].size)]
        return names

    # ---- scalar quantization ----------------------------------------------------------------
    @staticmethod
    def _quantize(v: float, lo: float, hi: float, n: int) -> tuple[int, bool]:
        if not math.isfinite(v):
            raise ValueError(f"cannot tokenize a non-finite value {v}")
        clipped = v < lo or v > hi
        i = int(math.floor((min(max(v, lo), hi) - lo) / (hi - lo) * n))
        return min(max(i, 0), n - 1), clipped

    @staticmethod
    def _center(i: int, lo: float, hi: float, n: int) -> float:
        return lo + (i + 0.5) * (hi - lo) / n

    def bin_width(self, kind: str, axis: int = 0) -> float:
        c = self.cfg
        if kind == "position":
            return (c.position_max[axis] - c.position_min[axis]) / c.position_bins
        if kind == "rotation":
            return 2 * math.pi / c.rotation_bins
        if kind == "box":
            return 1.0 / c.box_bins
        raise ValueError(kind)

    def _pose_tokens(self, pose: Pose, prefix: str, clipped: list[str]) -> list[int]:
        c, ids = self.cfg, []
        for a in range(3):
            i, clip = self._quantize(float(pose.position[a]), c.position_min[a], c.position_max[a], c.position_bins)
            ids.append(self.blocks["position"].start + i)
            if clip:
                clipped.append(f"{prefix}.{'xyz'[a]}")
        rv = Rotation.from_quat(pose.quat_xyzw).as_rotvec()   # angle in [0, pi]
        for a in range(3):
            i, clip = self._quantize(float(rv[a]), -math.pi, math.pi, c.rotation_bins)
            ids.append(self.blocks["rotation"].start + i)
            if clip:
                clipped.append(f"{prefix}.r{'xyz'[a]}")
        return ids

    def _pose_from_tokens(self, ids: list[int]) -> Pose:
        c = self.cfg
        pos = [self._center(ids[a] - self.blocks["position"].start, c.position_min[a], c.position_max[a],
                            c.position_bins) for a in range(3)]
        rv = np.array([self._center(ids[3 + a] - self.blocks["rotation"].start, -math.pi, math.pi,
                                    c.rotation_bins) for a in range(3)])
        return Pose(np.array(pos), Rotation.from_rotvec(rv).as_quat())

    # ---- whole predictions ------------------------------------------------------------------
    def encode(self, target: PoseTarget) -> tuple[list[int], list[str]]:
        """Token ids of ``target`` (without BOS, with EOS) and the names of clipped fields.

        A target without waypoints (grounding data) encodes only the grounding steps; the
        trainer masks the rest of the sequence.
        """
        c, clipped = self.cfg, []
        if target.category not in c.categories:
            raise ValueError(f"unknown category {target.category!r}; known: {c.categories}")
        ids = [self.blocks["category"].start + c.categories.index(target.category)]
        for k, name in enumerate(("box_u", "box_v")):
            i, clip = self._quantize(float(target.box_uv[k]), 0.0, 1.0, c.box_bins)
            ids.append(self.blocks["box"].start + i)
            if clip:
                clipped.append(name)
        ids += self._pose_tokens(target.object_pose, "object", clipped)
        if not target.waypoints:
            return ids, clipped
        if len(target.waypoints) != c.num_waypoints:
            raise ValueError(f"target has {len(target.waypoints)} waypoints, the config expects {c.num_waypoints}")
        for t, wp in enumerate(target.waypoints):
            ids += self._pose_tokens(wp.pose, f"wp{t}", clipped)
            g = int(round(float(np.clip(wp.gripper, 0.0, 1.0)) * (c.gripper_bins - 1)))
            ids.append(self.blocks["gripper"].start + g)
        ids.append(EOS)
        return ids, clipped

    def is_valid(self, ids: list[int]) -> bool:
        """True when ``ids`` (without BOS) follows the grammar exactly."""
        if len(ids) != self.seq_len:
            return False
        return bool(np.all((np.asarray(ids) >= self.step_lo) & (np.asarray(ids) < self.step_hi)))

    def decode(self, ids: list[int]) -> PoseTarget:
        """The PoseTarget of a full grammar sequence (without BOS). Raises ValueError otherwise."""
        ids = [int(i) for i in ids]
        if not self.is_valid(ids):
            bad = next((s for s in range(min(len(ids), self.seq_len))
                        if not self.step_lo[s] <= ids[s] < self.step_hi[s]), None)
            raise ValueError(f"token sequence does not follow the pose grammar (length {len(ids)}, "
                             f"expected {self.seq_len}; first bad step {bad})")
        c = self.cfg
        category = c.categories[ids[0] - self.blocks["category"].start]
        box = tuple(self._center(ids[k] - self.blocks["box"].start, 0.0, 1.0, c.box_bins) for k in (1, 2))
        obj = self._pose_from_tokens(ids[3:9])
        wps, k = [], 9
        for _ in range(c.num_waypoints):
            pose = self._pose_from_tokens(ids[k:k + 6])
            g = (ids[k + 6] - self.blocks["gripper"].start) / (c.gripper_bins - 1)
            wps.append(Waypoint(pose, float(g)))
            k += 7
        return PoseTarget(category, box, obj, wps)
