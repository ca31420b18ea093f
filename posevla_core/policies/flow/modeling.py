"""Flow-matching action expert (pi0 / SmolVLA style) on any Pose-VLA backbone.

    backbone.prefix_features(batch) -> hidden states over its prefix (image + prompt), (B, L, D)
    action expert: H noisy action tokens (+ flow time) --self-attention + cross-attention to the
                   prefix--> velocity field v(x_t, t); 10 Euler steps from noise -> an action chunk

An action is one future end-effector pose plus the gripper, at the chunk's control period
``dt``: position (meters) + the 6D rotation representation (first two columns of R; continuous,
unlike Euler angles or quaternions with their sign ambiguity) + gripper (0 closed .. 1 open),
in the camera optical frame (default: the path to the robot stays TF -> IK -> controller) or
in the robot base frame. Action k of a chunk is the pose at t_image + k * dt (k = 1..H).

The expert sees the backbone only through ``prefix_features``: the backbone's hidden states
over its prefix (what pi0's expert reads as KV, here projected and used as cross-attention
memory, as SmolVLA does), plus an optional 3D *anchor*: the camera-frame point the backbone
grounded the instruction on (the small model's pointer with depth; NaN where a backbone has
none). The prefix is computed once per chunk, and so are its cross-attention keys/values; the
10 integration steps run only the expert's H action tokens.

Anchored positions (``anchor``, camera frame only): the chunk's positions are predicted as
offsets from the anchor, and the anchor conditions every action token. Why: a grasp is a pose
relative to its object. Measured on the first expert: read off the prefix alone, absolute
positions were 5.7 cm off (median) and aimed low near the objects, where the token head, whose
position tokens have a copy prior at the same point, is ~1 cm off.

Proprioception (``state``): the end-effector pose at the image, in the action frame, and the
measured gripper opening (``robot_state``: FK of the joint states, the camera extrinsics); its
position relative to the anchor (Fourier features) + its 6D rotation + the opening are added to
every action token like the anchor; positions stay offsets from the anchor. Why: the image
alone left the expert unsure where its hand was and whether it had closed (closed loop 15/30
without the state, 26-29/30 with it; offsets from the hand instead were worse closed loop; the
runs: docs/results/2026-12-07-flow-expert-runs.md).
A ``state`` expert refuses to predict without a state (``needs_state``; the policy node
computes it as the recorder does).

Flow matching (rectified flow): x_t = (1 - t) * noise + t * action, the expert regresses the
velocity action - noise; 1 - t ~ Beta(1.5, 1) (pi0: most weight at the noisy end).
Starting noise (``noise_scale``): inference integrates from ``noise_scale`` x Gaussian noise. 1 is
pi0's sampling; 0 starts every chunk at x0 = 0, the noise's centre: one chunk per input, no
sampling jitter between consecutive chunks. On our scripted demos (one way to do each task) 0
measured 30/30 + 57/60 closed loop against 29/30 + 56/60 with 1 (README); demos that do
a task in several different ways should keep 1 (the flow from the centre can land between them).

Knowledge insulation (pi0.5 "KI"): the prefix is detached, so the expert's loss does not
move the backbone; the backbone then learns only from the pose-token loss, if kept.

``FlowPolicy`` wraps a backbone policy + the expert behind the same model contract
(policy.PosePolicy); its checkpoint is the backbone's own files plus ``expert.safetensors``
and ``"head": "flow"`` / ``"expert": {...}`` in config.json.
"""
from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posevla_core.tokens.decoding import (check_decoding, compile_failed, compile_step, refusal_floor, refusal_score)
from posevla_core.policies.base import (CONFIG_FILE, PosePolicy, eval_mode, policy_class, read_meta, resolve_device)
from posevla_core.poses import Pose, Prediction, Waypoint

EXPERT_WEIGHTS = "expert.safetensors"
ACTION_DIM = 10                       # xyz + 6D rotation + gripper
FRAMES = ("camera", "base")


@dataclass
class ExpertConfig:
    horizon: int = 16                 # H actions per chunk
    dt: float = 0.1                   # control period of the chunk (s); PosePrediction.waypoint_dt
    frame: str = "camera"             # camera | base: the frame of the predicted poses
    base_frame: str = "base_link"     # frame_id of a base-frame chunk
    width: int = 128                  # expert transformer width
    layers: int = 1                   # 1: measured as accurate as 3 offline, and a chunk within 2x a backbone forward
    heads: int = 4
    ffn_mult: int = 4
    num_steps: int = 10               # Euler integration steps at inference
    noise_scale: float = 1.0          # inference: std of the starting noise (0: deterministic, the flow from x0 = 0)
    token_loss_weight: float = 0.0    # > 0: keep the pose-token loss beside the flow loss
    insulate: bool = True             # knowledge insulation: no expert gradient into the backbone
    anchor: bool = True               # positions relative to the backbone's grounded 3D point (camera frame only)
    anchor_default: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # where a frame has none
    state: bool = True                # proprioception: the hand's pose + gripper opening at the image
    action_mean: list[float] = field(default_factory=lambda: [0.0] * ACTION_DIM)   # normalization (data stats)
    action_std: list[float] = field(default_factory=lambda: [1.0] * ACTION_DIM)

    def __post_init__(self) -> None:
        if self.horizon < 1 or not self.dt > 0 or self.num_steps < 1 or not self.noise_scale >= 0:
            raise ValueError("ExpertConfig: horizon >= 1, dt > 0, num_steps >= 1 and noise_scale >= 0 required")
        if self.frame not in FRAMES:
            raise ValueError(f"ExpertConfig.frame must be one of {FRAMES}, not {self.frame!r}")
        if self.width % self.heads:
            raise ValueError("ExpertConfig.width must be divisible by heads")
        if len(self.action_mean) != ACTION_DIM or len(self.action_std) != ACTION_DIM:
            raise ValueError(f"ExpertConfig.action_mean/std need {ACTION_DIM} values")
        self.action_mean = [float(x) for x in self.action_mean]
        self.action_std = [max(float(x), 1e-3) for x in self.action_std]
        self.anchor_default = [float(x) for x in self.anchor_default]
        if len(self.anchor_default) != 3:
            raise ValueError("ExpertConfig.anchor_default needs 3 values (x, y, z in meters)")
        # the anchor is a camera-frame point: a base-frame chunk has no transform to use it
        self.anchor = bool(self.anchor) and self.frame == "camera"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExpertConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ExpertConfig keys {sorted(unknown)}")
        return cls(**d)


# ---- action <-> pose ---------------------------------------------------------------------------
def rot6d_from_matrix(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two columns (Zhou et al. 2019)."""
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def matrix_from_rot6d(r: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt (any non-degenerate 6-vector gives a rotation)."""
    a, b = r[..., :3], r[..., 3:6]
    x = a / np.linalg.norm(a, axis=-1, keepdims=True).clip(1e-9)
    b = b - (x * b).sum(-1, keepdims=True) * x
    y = b / np.linalg.norm(b, axis=-1, keepdims=True).clip(1e-9)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def waypoints_to_actions(waypoints: list[Waypoint]) -> np.ndarray:
    """Waypoints -> (H, 10) float32 actions."""
    T = np.stack([w.pose.matrix() for w in waypoints])
    g = np.array([[w.gripper] for w in waypoints])
    return np.concatenate([T[:, :3, 3], rot6d_from_matrix(T[:, :3, :3]), g], axis=1).astype(np.float32)


def actions_to_waypoints(a: np.ndarray, binary_gripper: bool = False) -> list[Waypoint]:
    """(H, 10) actions -> waypoints (rotation re-orthonormalized, gripper clipped to [0, 1], or
    thresholded at 0.5 with ``binary_gripper``: the demos' gripper targets are open/closed)."""
    from scipy.spatial.transform import Rotation

    a = np.asarray(a, dtype=np.float64)
    quats = Rotation.from_matrix(matrix_from_rot6d(a[:, 3:9])).as_quat()    # one call for the chunk
    quats[quats[:, 3] < 0] *= -1                                              # w >= 0, as se3.split_T
    grip = (a[:, 9] >= 0.5).astype(float) if binary_gripper else np.clip(a[:, 9], 0.0, 1.0)
    return [Waypoint(Pose(a[k, :3], quats[k]), float(grip[k])) for k in range(len(a))]


def chunk_from_trajectory(times: np.ndarray, T_base_ee: np.ndarray, gripper: np.ndarray, T_base_cam: np.ndarray,
                          t0: float, cfg: ExpertConfig, open_threshold: float = 0.5) -> np.ndarray:
    """The (H, 10) action chunk of a recorded trajectory at ``t0`` (see data/motion.py)."""
    from posevla_core.data.motion import waypoints_from_trajectory

    T_ref = T_base_cam if cfg.frame == "camera" else np.eye(4)
    return waypoints_to_actions(waypoints_from_trajectory(times, T_base_ee, gripper, T_ref, t0, cfg.horizon,
                                                          cfg.dt, open_threshold))


def robot_state(T_base_ee: np.ndarray, gripper: float, T_base_cam: np.ndarray) -> dict:
    """The robot at one image, as a model's ``state`` input: end-effector pose in the base frame
    (FK of the measured joints), gripper opening (0 closed .. 1 open) and the camera optical
    frame's pose in the base frame. What the recorder writes as ``observation.*``."""
    return {"T_base_ee": np.asarray(T_base_ee, float), "gripper": float(gripper),
            "T_base_cam": np.asarray(T_base_cam, float)}


def state_vector(state: dict, frame: str) -> np.ndarray:
    """``robot_state`` -> (10,) float32 laid out as an action (xyz, 6D rotation, gripper), the hand
    in ``frame`` (camera: through the camera's extrinsics; base: as is)."""
    from posevla_core.geometry.se3 import inv_T

    T = np.asarray(state["T_base_ee"], float)
    if frame == "camera":
        T = inv_T(np.asarray(state["T_base_cam"], float)) @ T
    v = np.concatenate([T[:3, 3], rot6d_from_matrix(T[:3, :3]), [float(state["gripper"])]]).astype(np.float32)
    if not np.all(np.isfinite(v)):
        raise ValueError("robot state is not finite")
    return v


def state_rows(states: list[dict | None], frame: str) -> torch.Tensor:
    """A batch's (B, 10) ``state_vector`` rows; zeros for an example without a state (one without
    a chunk: its loss counts 0)."""
    return torch.from_numpy(np.stack([np.zeros(ACTION_DIM, np.float32) if st is None else state_vector(st, frame)
                                      for st in states]))


def action_stats(chunks: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-dimension mean / std over every action of every chunk (the normalization)."""
    a = np.concatenate([np.asarray(c).reshape(-1, ACTION_DIM) for c in chunks])
    return a.mean(0).tolist(), np.maximum(a.std(0), 1e-3).tolist()


def fourier(x: torch.Tensor, scales: tuple[float, ...]) -> torch.Tensor:
    """(..., n) -> (..., 2 n len(scales)): sin / cos of x / scale, for each scale."""
    ang = x[..., None] / torch.as_tensor(scales, dtype=x.dtype, device=x.device)
    return torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(-2)


ANCHOR_SCALES = (0.02, 0.05, 0.12, 0.3, 0.8)      # m: from a grasp offset to the workspace


# ---- the network -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _time_freqs(half: int, device: str) -> torch.Tensor:
    return 1000.0 * torch.exp(-math.log(1000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the flow time t in [0, 1], (B,) -> (B, dim)."""
    ang = t.float()[:, None] * _time_freqs(dim // 2, str(t.device))[None]
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


class ActionExpert(nn.Module):
    """Velocity field v(x_t, t | prefix). Action tokens: MLP(action embedding, time embedding)
    (as pi0) + a learned position per chunk step; pre-norm transformer decoder layers
    (self-attention over the chunk, cross-attention to the projected prefix)."""

    def __init__(self, cfg: ExpertConfig, prefix_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.memory = nn.Sequential(nn.Linear(prefix_dim, w), nn.LayerNorm(w))
        self.action_in = nn.Linear(ACTION_DIM, w)
        self.token_mlp = nn.Sequential(nn.Linear(2 * w, w), nn.SiLU(), nn.Linear(w, w))
        self.position = nn.Parameter(torch.randn(cfg.horizon, w) * 0.02)
        # The mean of the prefix states added to every action token: a direct conditioning path
        # that trains in a few hundred steps (cross-attention alone was slow to be used at all).
        self.pooled = nn.Linear(w, w)
        if cfg.anchor:   # the grounded point (Fourier features) + "has one", added like the pooled prefix
            self.anchor_in = nn.Sequential(nn.Linear(6 * len(ANCHOR_SCALES) + 1, w), nn.SiLU(), nn.Linear(w, w))
        if cfg.state:    # the hand relative to the anchor (Fourier features) + its 6D rotation + gripper opening
            self.state_in = nn.Sequential(nn.Linear(6 * len(ANCHOR_SCALES) + 7, w), nn.SiLU(), nn.Linear(w, w))
        layer = nn.TransformerDecoderLayer(w, cfg.heads, cfg.ffn_mult * w, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerDecoder(layer, cfg.layers, norm=nn.LayerNorm(w))
        self.action_out = nn.Linear(w, ACTION_DIM)
        nn.init.zeros_(self.action_out.weight)
        nn.init.zeros_(self.action_out.bias)
        self.register_buffer("mean", torch.tensor(cfg.action_mean), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.action_std), persistent=False)
        self.register_buffer("anchor_default", torch.tensor(cfg.anchor_default), persistent=False)

    def set_stats(self, mean, std) -> None:
        """Normalization from absolute training chunks. With ``anchor`` their mean position is
        the fallback anchor and the offsets are normalized around 0 with the positions' spread."""
        mean, std = [float(x) for x in mean], [max(float(x), 1e-3) for x in std]
        if self.cfg.anchor:
            self.cfg.anchor_default = mean[:3]
            mean = [0.0, 0.0, 0.0] + mean[3:]
            self.anchor_default.copy_(torch.tensor(self.cfg.anchor_default))
        self.cfg.action_mean, self.cfg.action_std = mean, std
        self.mean.copy_(torch.tensor(self.cfg.action_mean))
        self.std.copy_(torch.tensor(self.cfg.action_std))

    def resolve_anchor(self, anchor: torch.Tensor | None, B: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """((B, 3) the point positions are relative to, (B,) whether the backbone gave one):
        the backbone's anchor where finite, else ``anchor_default``; zeros when ``anchor`` is off."""
        if not self.cfg.anchor:
            return torch.zeros(B, 3, device=device), torch.zeros(B, dtype=torch.bool, device=device)
        if anchor is None:
            anchor = torch.full((B, 3), float("nan"), device=device)
        anchor = anchor.to(device).float()
        has = torch.isfinite(anchor).all(-1)
        return torch.where(has[:, None], anchor, self.anchor_default[None]), has

    def anchor_features(self, point: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
        return self.anchor_in(torch.cat([fourier(point, ANCHOR_SCALES), has.float()[:, None]], dim=-1))

    def state_features(self, state: torch.Tensor | None, point: torch.Tensor) -> torch.Tensor:
        """(B, 10) ``state_vector`` rows -> (B, w); ``point``: the resolved anchor (zeros without one)."""
        if state is None:
            raise ValueError("this expert reads the robot state (ExpertConfig.state): pass state=robot_state(...)")
        state = state.to(point.device).float()
        return self.state_in(torch.cat([fourier(state[:, :3] - point, ANCHOR_SCALES), state[:, 3:]], dim=-1))

    def _offset(self, point: torch.Tensor) -> torch.Tensor:
        """(B, 1, ACTION_DIM) raw-action offset: the anchor on the position dims."""
        return F.pad(point, (0, ACTION_DIM - 3))[:, None]

    def _tokens(self, x: torch.Tensor, t: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        temb = time_embedding(t, self.cfg.width)[:, None].expand(-1, x.shape[1], -1)
        return self.token_mlp(torch.cat([self.action_in(x), temb], dim=-1)) + self.position + pooled[:, None]

    def pool(self, memory: torch.Tensor, pad: torch.Tensor, point: torch.Tensor | None = None,
             has: torch.Tensor | None = None, state: torch.Tensor | None = None) -> torch.Tensor:
        """The conditioning added to every action token: the mean prefix state (+ the anchor,
        + the robot state)."""
        keep = (~pad).float()[..., None]
        out = self.pooled((memory * keep).sum(1) / keep.sum(1).clamp(min=1))
        if self.cfg.anchor and point is not None:
            out = out + self.anchor_features(point, has)
        if self.cfg.state:
            if point is None:
                point = torch.zeros(memory.shape[0], 3, device=memory.device)
            out = out + self.state_features(state, point)
        return out

    def velocity(self, x: torch.Tensor, t: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor,
                 point: torch.Tensor | None = None, has: torch.Tensor | None = None,
                 state: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, H, 10) normalized actions at flow time t (B,); memory (B, L, w); pad (B, L) True = ignore;
        point / has: ``resolve_anchor``'s output (with ``anchor``); state: (B, 10) ``state_vector``
        rows (with ``state``)."""
        h = self._tokens(x, t, self.pool(memory, pad, point, has, state))
        h = self.blocks(h, memory, memory_key_padding_mask=pad)
        return self.action_out(h)

    def encode_memory(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.memory(hidden.float()), ~mask.bool()

    def flow_loss(self, actions: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor,
                  valid: torch.Tensor, anchor: torch.Tensor | None = None,
                  state: torch.Tensor | None = None) -> torch.Tensor:
        """Rectified-flow regression loss of (B, H, 10) raw actions; rows with valid False count 0;
        ``anchor`` (B, 3): the backbone's grounded point (NaN rows: none); ``state`` (B, 10)."""
        B = actions.shape[0]
        point, has = self.resolve_anchor(anchor, B, actions.device)
        a = (actions - self._offset(point) - self.mean) / self.std
        # pi0's schedule: 1 - t ~ Beta(1.5, 1), weighted toward the noisy end, where the chunk
        # must come from the prefix (a logit-normal t left the expert ignoring its prefix).
        t = 1 - 0.999 * torch.distributions.Beta(1.5, 1.0).sample((B,)).to(a.device)
        noise = torch.randn_like(a)
        x = (1 - t)[:, None, None] * noise + t[:, None, None] * a
        memory, pad = self.encode_memory(hidden, mask)
        err = ((self.velocity(x, t, memory, pad, point, has, state) - (a - noise)) ** 2).mean((1, 2))
        v = valid.float()
        return (err * v).sum() / v.sum().clamp(min=1)

    # ---- inference fast path: the prefix's cross-attention keys/values once per chunk (as pi0's
    # KV cache of the prefix), then per Euler step only the H action tokens; same weights and
    # math as ``velocity`` (tested equal), without nn.MultiheadAttention's per-call overhead.
    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.cfg.heads, -1).transpose(1, 2)

    def prefix_cache(self, memory: torch.Tensor, pad: torch.Tensor, point: torch.Tensor | None = None,
                     has: torch.Tensor | None = None, state: torch.Tensor | None = None) -> dict:
        w = self.cfg.width
        out = []
        for layer in self.blocks.layers:
            a = layer.multihead_attn
            kv = F.linear(memory, a.in_proj_weight[w:], a.in_proj_bias[w:])
            out.append(tuple(self._heads(z) for z in kv.chunk(2, dim=-1)))
        # The action-token MLP's first layer on [action_in(x), time embedding], folded: one
        # (ACTION_DIM -> w) matrix for the action, the time's share added as a bias per step.
        lin0 = self.token_mlp[0]
        w_act = lin0.weight[:, :w] @ self.action_in.weight
        b0 = lin0.weight[:, :w] @ self.action_in.bias + lin0.bias
        keep = None if not bool(pad.any()) else ~pad[:, None, None, :]     # no padding (one frame): no mask
        return {"kv": out, "keep": keep, "base": self.position + self.pool(memory, pad, point, has, state)[:, None],
                "w_act": w_act, "w_time": lin0.weight[:, w:], "b0": b0}

    def time_bias(self, t: torch.Tensor, cache: dict) -> torch.Tensor:
        """The action tokens' time-dependent part, (B,) flow times -> (B, width)."""
        return F.linear(time_embedding(t, self.cfg.width), cache["w_time"], cache["b0"])

    def velocity_cached(self, x: torch.Tensor, t: torch.Tensor, cache: dict) -> torch.Tensor:
        """``velocity`` with ``prefix_cache(memory, pad, ...)``: the same math, in plain tensor
        ops (no module calls: at H = 16 tokens a step is bound by per-op overhead)."""
        return self._velocity_step(x, self.time_bias(t, cache), cache)

    def _velocity_step(self, x: torch.Tensor, bias: torch.Tensor, cache: dict) -> torch.Tensor:
        """``velocity_cached`` given its time bias (B, w) (``sample`` computes every step's at once)."""
        w, keep = self.cfg.width, cache["keep"]
        h = F.linear(F.silu(F.linear(x, cache["w_act"]) + bias[:, None]), self.token_mlp[2].weight,
                     self.token_mlp[2].bias) + cache["base"]
        B, H, _ = h.shape
        for layer, (k, v) in zip(self.blocks.layers, cache["kv"]):
            sa, ca = layer.self_attn, layer.multihead_attn
            n1, n2, n3 = layer.norm1, layer.norm2, layer.norm3
            qkv = F.linear(F.layer_norm(h, (w,), n1.weight, n1.bias, n1.eps), sa.in_proj_weight, sa.in_proj_bias)
            q, k1, v1 = qkv.view(B, H, 3, self.cfg.heads, -1).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k1, v1).transpose(1, 2).reshape(B, H, w)
            h = h + F.linear(a, sa.out_proj.weight, sa.out_proj.bias)
            q = self._heads(F.linear(F.layer_norm(h, (w,), n2.weight, n2.bias, n2.eps), ca.in_proj_weight[:w],
                                     ca.in_proj_bias[:w]))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(B, H, w)
            h = h + F.linear(a, ca.out_proj.weight, ca.out_proj.bias)
            f = F.linear(F.layer_norm(h, (w,), n3.weight, n3.bias, n3.eps), layer.linear1.weight, layer.linear1.bias)
            h = h + F.linear(F.gelu(f), layer.linear2.weight, layer.linear2.bias)
        nf = self.blocks.norm
        return F.linear(F.layer_norm(h, (w,), nf.weight, nf.bias, nf.eps), self.action_out.weight, self.action_out.bias)

    @torch.no_grad()
    def sample(self, hidden: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None,
               anchor: torch.Tensor | None = None, state: torch.Tensor | None = None) -> torch.Tensor:
        """``num_steps`` Euler steps from Gaussian noise -> (B, H, 10) raw actions."""
        B, n = hidden.shape[0], self.cfg.num_steps
        point, has = self.resolve_anchor(anchor, B, hidden.device)
        cache = self.prefix_cache(*self.encode_memory(hidden, mask), point, has, state)
        x = self.cfg.noise_scale * torch.randn(B, self.cfg.horizon, ACTION_DIM, device=hidden.device,
                                               generator=generator)
        biases = self.time_bias(torch.arange(n, device=hidden.device) / n, cache)       # (n, w): t = i / n
        x = (self.__dict__.get("_compiled_integrate") or self._integrate)(x, biases, cache)
        return x * self.std + self.mean + self._offset(point)

    def _integrate(self, x: torch.Tensor, biases: torch.Tensor, cache: dict) -> torch.Tensor:
        """The Euler steps of ``sample``: x += v(x, t_i) / n for the n rows of ``biases``."""
        n, B = biases.shape[0], x.shape[0]
        for i in range(n):
            x = x + self._velocity_step(x, biases[i].expand(B, -1), cache) / n
        return x

    def compile_integration(self, prefix_dim: int) -> None:
        """Put the Euler steps under torch.compile (``decoding.compile_step``: one graph for the
        whole integration, shapes symbolic so any prefix length and batch reuse it) and compile it
        now on zeros (``prefix_dim``: the backbone's), not at a robot's first chunk. At H = 16
        tokens a step is bound by per-op overhead, which the compiled kernels remove."""
        self.__dict__["_compiled_integrate"] = compile_step(self._integrate, self.action_out.weight.device, dynamic=True)
        dev = self.action_out.weight.device
        state = torch.zeros(1, 10, device=dev) if self.cfg.state else None
        with torch.no_grad():
            # two lengths (the graph is the symbolic one from the start), with and without padding
            for L, pad in ((7, 0), (8, 0), (8, 1)):
                mask = torch.ones(1, L, dtype=torch.bool, device=dev)
                mask[:, L - pad:] = False
                self.sample(torch.zeros(1, L, prefix_dim, device=dev), mask, state=state)


# ---- the policy --------------------------------------------------------------------------------
class FlowProcessor:
    """The backbone's processor; batches also carry ``chunk`` (B, H, 10), ``chunk_valid`` and, with
    ``state``, ``state`` (B, 10) (zeros where an example has none: rows without a chunk)."""

    def __init__(self, inner, cfg: ExpertConfig) -> None:
        self.inner, self.cfg = inner, cfg

    def make_example(self, *args, **kwargs) -> dict:
        return self.inner.make_example(*args, **kwargs)

    def collate(self, examples: list[dict]) -> dict:
        out = self.inner.collate(examples)
        zeros = np.zeros((self.cfg.horizon, ACTION_DIM), np.float32)
        out["chunk"] = torch.from_numpy(np.stack([e.get("chunk", zeros) for e in examples]))
        out["chunk_valid"] = torch.tensor([e.get("chunk") is not None for e in examples])
        if self.cfg.state:
            out["state"] = state_rows([e.get("state") for e in examples], self.cfg.frame)
        return out


class FlowPolicy(PosePolicy):
    """A backbone policy with the flow-matching action expert as its head (see module docstring)."""

    head = "flow"

    def __init__(self, backbone: PosePolicy, cfg: ExpertConfig) -> None:
        super().__init__()
        self.backbone, self.cfg = backbone, cfg
        self.expert = ActionExpert(cfg, backbone.prefix_dim)
        self.tokenizer = backbone.tokenizer
        self.processor = FlowProcessor(backbone.processor, cfg)
        self.architecture = backbone.architecture

    @property
    def needs_state(self) -> bool:
        return self.cfg.state

    def to(self, *args, **kwargs):   # the backbone may keep unregistered parts (small: its text tower)
        out = super().to(*args, **kwargs)
        self.backbone.to(*args, **kwargs)
        return out

    # ---- building / checkpoints
    @classmethod
    def attach(cls, backbone: PosePolicy, overrides: dict | None = None, chunks: list[np.ndarray] | None = None
               ) -> "FlowPolicy":
        """A new expert on ``backbone``; ``chunks``: training chunks for the action normalization."""
        cfg = ExpertConfig.from_dict(dict(overrides or {}))
        model = cls(backbone, cfg)
        if chunks:
            model.expert.set_stats(*action_stats(chunks))
        return model

    def save_pretrained(self, directory: str | Path, extra: dict | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        from safetensors.torch import save_file

        state = state_dict if state_dict is not None else self.state_dict()
        bb = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        ex = {k[len("expert."):]: v.detach().cpu().contiguous() for k, v in state.items() if k.startswith("expert.")}
        out = self.backbone.save_pretrained(directory, extra={**(extra or {}), "head": self.head,
                                                              "expert": self.cfg.to_dict()}, state_dict=bb)
        save_file(ex, str(Path(out) / EXPERT_WEIGHTS), metadata={"format": "pt"})
        return Path(out)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "auto") -> "FlowPolicy":
        from safetensors.torch import load_file

        d = Path(directory)
        meta = read_meta(d)
        if meta.get("head") != cls.head or "expert" not in meta:
            raise ValueError(f"{d / CONFIG_FILE} does not describe a flow-head checkpoint (no 'head': 'flow')")
        if not (d / EXPERT_WEIGHTS).is_file():
            raise FileNotFoundError(f"flow-head checkpoint {d} has no {EXPERT_WEIGHTS}")
        backbone = policy_class(meta.get("architecture", "small")).from_pretrained(d, device="cpu")
        # experts saved before anchored positions / proprioception existed have neither
        model = cls(backbone, ExpertConfig.from_dict({"anchor": False, "state": False, **meta["expert"]}))
        missing, unexpected = model.expert.load_state_dict(load_file(str(d / EXPERT_WEIGHTS)), strict=False)
        if missing or unexpected:
            raise ValueError(f"{d / EXPERT_WEIGHTS} does not match its config: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        return model.to(resolve_device(device)).eval()

    def load_weights(self, directory: str | Path) -> tuple[list[str], list[str]]:
        """Load a saved FlowPolicy's weights in place (trainer resume); (missing, unexpected) keys."""
        from safetensors.torch import load_file, load_model

        d = Path(directory)
        missing, unexpected = load_model(self.backbone, str(d / "model.safetensors"), strict=False)
        m2, u2 = self.expert.load_state_dict(load_file(str(d / EXPERT_WEIGHTS)), strict=False)
        return [*missing, *m2], [*unexpected, *u2]

    # ---- training
    def no_decay(self, name: str) -> bool:
        return name.startswith("backbone.") and self.backbone.no_decay(name[len("backbone."):])

    def set_decoding(self, mode: str, batch: int = 1) -> str:
        """policy_node's ``decoding`` for a flow head: "static-compile" compiles the expert's Euler
        steps now (``ActionExpert.compile_integration``); "static" / "eager" run them uncompiled.
        A chunk decodes no pose token, so the backbone's token decoding is not involved. A failed
        compilation leaves the uncompiled steps and is re-raised as a RuntimeError to log."""
        check_decoding(mode)
        self.expert.__dict__.pop("_compiled_integrate", None)
        if mode == "static-compile":
            try:
                self.expert.compile_integration(self.backbone.prefix_dim)
            except Exception as e:          # inductor's errors have no common base class
                self.expert.__dict__.pop("_compiled_integrate", None)
                raise compile_failed(e, "the expert's steps", "running them uncompiled") from e
        return mode

    @property
    def frozen_backbone(self) -> bool:
        """Insulated and no token loss: training never changes the backbone (its prefix can be cached)."""
        return self.cfg.insulate and self.cfg.token_loss_weight <= 0

    @torch.no_grad()
    def cache_prefixes(self, batch_of, n: int, batch_size: int = 32, progress: bool = True) -> dict:
        """``prefix_features`` of items 0..n-1 (``batch_of(indices)`` -> a collated batch), on CPU."""
        from tqdm.auto import tqdm

        if not self.frozen_backbone:
            raise ValueError("prefix caching needs a frozen backbone (insulate true, token_loss_weight 0)")
        hs, ms, anchors = [], [], []
        with eval_mode(self):
            for k in tqdm(range(0, n, batch_size), desc="cache prefixes", disable=not progress):
                h, m, ex = self.backbone.prefix_features(batch_of(list(range(k, min(n, k + batch_size)))),
                                                         with_extras=True)
                hs += list(h.float().cpu())
                ms += list(m.cpu())
                anchors.append(ex["anchor"].float().cpu())
        L = max(len(m) for m in ms)          # left-pad to one length (PaliGemma prompts differ)
        H = torch.zeros(n, L, hs[0].shape[-1])
        M = torch.zeros(n, L, dtype=torch.bool)
        for i, (h, m) in enumerate(zip(hs, ms)):
            H[i, L - len(m):], M[i, L - len(m):] = h, m
        return {"hidden": H, "mask": M, "anchor": torch.cat(anchors)}

    def cached_batch(self, cache: dict, idx, chunks: list, states: list | None = None) -> dict:
        """A training batch of cached prefixes; ``chunks`` / ``states``: the samples' (None: none)."""
        zeros = np.zeros((self.cfg.horizon, ACTION_DIM), np.float32)
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        out = {"prefix_hidden": cache["hidden"][idx], "prefix_mask": cache["mask"][idx],
               "prefix_anchor": cache["anchor"][idx],
               "chunk": torch.from_numpy(np.stack([zeros if c is None else c for c in chunks])),
               "chunk_valid": torch.tensor([c is not None for c in chunks])}
        if self.cfg.state:
            out["state"] = state_rows(states or [None] * len(chunks), self.cfg.frame)
        return out

    def prefix(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The backbone's prefix states, mask and anchor; without gradient under knowledge insulation."""
        if "prefix_hidden" in batch:         # cached (frozen backbone)
            return (batch["prefix_hidden"].to(self.device), batch["prefix_mask"].to(self.device),
                    batch["prefix_anchor"].to(self.device))
        if self.cfg.insulate:
            with torch.no_grad():
                h, m, ex = self.backbone.prefix_features(batch, with_extras=True)
            return h.detach(), m, ex["anchor"]
        h, m, ex = self.backbone.prefix_features(batch, with_extras=True)
        return h, m, ex["anchor"]

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        dev = self.device
        hidden, mask, anchor = self.prefix(batch)
        fl = self.expert.flow_loss(batch["chunk"].to(dev).float(), hidden, mask, batch["chunk_valid"].to(dev),
                                   anchor.detach(), batch.get("state"))
        logs = {"flow_loss": float(fl.detach()), "token_acc": 0.0}
        loss = fl
        if self.cfg.token_loss_weight > 0:
            tl, tlogs = self.backbone.compute_loss(batch)
            loss = loss + self.cfg.token_loss_weight * tl
            logs.update({k: v for k, v in tlogs.items() if k != "loss"})
        logs["loss"] = float(loss.detach())
        return loss, logs

    def sample_metrics(self, pred: Prediction, s) -> dict:
        """Offline metrics of a chunk against the sample's recorded chunk."""
        if s.chunk is None or not pred.valid:
            return {"valid": float(pred.valid)}
        if not pred.found:          # refused (<no_object>) on a frame whose demo moved: no chunk to compare
            return {"valid": 1.0, "false_refusal": 1.0}
        a = waypoints_to_actions(pred.waypoints)
        R, Rt = matrix_from_rot6d(a[:, 3:9]), matrix_from_rot6d(s.chunk[:, 3:9])
        cos = np.clip((np.einsum("kij,kij->k", R, Rt) - 1) / 2, -1, 1)
        pe = np.linalg.norm(a[:, :3] - s.chunk[:, :3], axis=1)
        return {"valid": 1.0, "false_refusal": 0.0, "chunk_pos_err_m": float(pe.mean()),
                "chunk_last_pos_err_m": float(pe[-1]),
                "chunk_rot_err_deg": float(np.degrees(np.arccos(cos)).mean()),
                "gripper_acc": float(np.mean((a[:, 9] >= 0.5) == (s.chunk[:, 9] >= 0.5)))}

    # ---- inference
    @torch.no_grad()
    def predict_batch(self, items: list[dict], use_cache: bool = True, constrained: bool = True,
                      generator: torch.Generator | None = None) -> list[Prediction]:
        """Items as ``PosePolicy.predict``'s; with ``state`` each needs its robot ``state``."""
        state = None
        if self.cfg.state:
            missing = [i for i, it in enumerate(items) if it.get("state") is None]
            if missing:
                raise ValueError(f"this expert reads the robot state (ExpertConfig.state); items {missing} have "
                                 "none: pass state=expert.robot_state(T_base_ee, gripper, T_base_cam)")
            state = state_rows([it["state"] for it in items], self.cfg.frame)
        with eval_mode(self):
            t0 = time.perf_counter()
            batch = self.processor.collate([self.processor.make_example(it["rgb"], it.get("depth"), it["K"],
                                                                        it["instruction"]) for it in items])
            t1 = time.perf_counter()
            hidden, mask, extras = self.backbone.prefix_features(batch, with_extras=True)
            t2 = time.perf_counter()
            # The token head's refusal, read off the same backbone forward: an instruction whose first
            # pose token would be <no_object> (P >= no_object_threshold; detect prompts: argmax), or whose
            # pointed-at object the backbone's verifier rejects, gets no chunk. On a robot, unsure means do not move.
            p_absent, p_match = extras["p_absent"].float(), extras.get("p_match")
            grammar = batch["grammar"].to(p_absent.device)
            absent = (p_absent >= refusal_floor(grammar, self.backbone.cfg.no_object_threshold, p_match,
                                                getattr(self.backbone.cfg, "verify_threshold", 0.0))).tolist()
            scores = refusal_score(p_absent, grammar, p_match).tolist()
            chunks = [None] * len(absent)
            if not all(absent):
                chunks = self.expert.sample(hidden, mask, generator, extras["anchor"], state).float().cpu().numpy()
            t3 = time.perf_counter()
        frame_id = self.cfg.base_frame if self.cfg.frame == "base" else ""
        timings = {"preprocess": (t1 - t0) * 1e3, "prefix": (t2 - t1) * 1e3, "expert": (t3 - t2) * 1e3,
                   "total": (t3 - t0) * 1e3}
        preds = []
        for c, no, score in zip(chunks, absent, scores):
            if no:
                pred = Prediction.absent()
                pred.waypoint_dt, pred.timings_ms, pred.frame_id = self.cfg.dt, dict(timings), frame_id
            else:
                # No grounding is decoded for a chunk: object fields are neutral (identity pose).
                pred = Prediction("", (float("nan"), float("nan")), Pose(np.zeros(3), [0, 0, 0, 1]),
                                  actions_to_waypoints(c, binary_gripper=True), waypoint_dt=self.cfg.dt,
                                  token_ids=[], timings_ms=dict(timings), valid=bool(np.all(np.isfinite(c))),
                                  frame_id=frame_id)
            pred.score = score
            preds.append(pred)
        return preds

    def config_summary(self) -> str:
        return json.dumps(self.cfg.to_dict())
