"""The flow-matching action expert (pi0 / SmolVLA style) as a head on any Pose-VLA backbone.

    backbone.prefix_features(batch) -> hidden states over its prefix (image + prompt), (B, L, D)
    action_expert.ActionExpert: H noisy action tokens (+ flow time), cross-attending to the prefix
        -> velocity field; ``num_steps`` Euler steps from noise -> an action chunk (processor.py: actions)

The expert sees the backbone only through ``prefix_features``: the backbone's hidden states
over its prefix (what pi0's expert reads as KV, here projected and used as cross-attention
memory, as SmolVLA does), plus an optional 3D *anchor*: the camera-frame point the backbone
grounded the instruction on (the small model's pointer with depth; NaN where a backbone has
none). The prefix is computed once per chunk, and so are its cross-attention keys/values; the
integration steps run only the expert's H action tokens.

Anchored positions (``anchor``, camera frame only): the chunk's positions are predicted as
offsets from the anchor, and the anchor conditions every action token. Why: a grasp is a pose
relative to its object; read off the prefix alone, absolute positions were 5.7 cm off (median),
where the token head, whose position tokens have a copy prior at the same point, is ~1 cm off.

Proprioception (``state``): the end-effector pose at the image, in the action frame, and the
measured gripper opening (``robot_state``: FK of the joint states, the camera extrinsics); its
position relative to the anchor (Fourier features) + its 6D rotation + the opening are added to
every action token like the anchor; positions stay offsets from the anchor. Why: the image
alone leaves the expert unsure where its hand is and whether it has closed. A ``state`` expert
refuses to predict without a state (``needs_state``; the policy node computes it as the
recorder does).

Starting noise (``noise_scale``): 0 suits demos that do each task one way (one chunk per input,
no sampling jitter); demos that do a task in several different ways should keep 1 (the flow
from the centre can land between them).

Knowledge insulation (pi0.5 "KI"): the prefix is detached, so the expert's loss does not
move the backbone; the backbone then learns only from the pose-token loss, if kept.

Refusal: the backbone's token-head rule (``PosePolicy.refused``) on the first pose token's
P(<no_object>) from the same prefix forward: a refused instruction gets no chunk.

``FlowPolicy``'s checkpoint is the backbone's own files plus ``expert.safetensors`` and
``"head": "flow"`` / ``"expert": {...}`` in config.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from posevla_core.paths import CONFIG_FILE
from posevla_core.policies.base import WEIGHTS_FILE, PosePolicy, StageTimer, eval_mode
from posevla_core.policies.factory import policy_class
from posevla_core.policies.flow.action_expert import ActionExpert
from posevla_core.policies.flow.codec import action_stats, actions_to_waypoints, matrix_from_rot6d, waypoints_to_actions
from posevla_core.policies.flow.configuration import ACTION_DIM, ExpertConfig
from posevla_core.policies.flow.processor import FlowProcessor, state_rows
from posevla_core.poses import Pose, Prediction
from posevla_core.tokens.decoding import check_decoding, compile_failed

EXPERT_WEIGHTS = "expert.safetensors"


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

    weight_files = {WEIGHTS_FILE: "backbone.", EXPERT_WEIGHTS: "expert."}

    def checkpoint_meta(self) -> dict:
        return {**self.backbone.checkpoint_meta(), "head": self.head, "expert": self.cfg.to_dict()}

    def file_metadata(self, name: str) -> dict[str, str]:
        return self.backbone.file_metadata(name) if name == WEIGHTS_FILE else {"format": "pt"}

    def save_extra_files(self, directory: Path) -> None:
        self.backbone.save_extra_files(directory)

    @classmethod
    def check_meta(cls, directory: Path, meta: dict) -> None:
        if meta.get("head") != cls.head or "expert" not in meta:
            raise ValueError(f"{directory / CONFIG_FILE} does not describe a flow-head checkpoint (no 'head': 'flow')")

    @classmethod
    def checkpoint_files(cls, meta: dict) -> tuple[str, ...]:
        return policy_class(meta.get("architecture", "small")).checkpoint_files(meta)

    @classmethod
    def from_meta(cls, directory: Path, meta: dict) -> "FlowPolicy":
        backbone = policy_class(meta.get("architecture", "small")).from_meta(directory, meta)
        # experts saved before anchored positions / proprioception existed have neither
        return cls(backbone, ExpertConfig.from_dict({"anchor": False, "state": False, **meta["expert"]}))

    def load_weights(self, directory: str | Path) -> tuple[list[str], list[str]]:
        """Load a saved FlowPolicy's weights in place (trainer resume); (missing, unexpected) keys."""
        return self.load_weight_files(directory, strict=False)

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
        # tqdm: only the progress-bar path needs it
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
    final_stage = "expert"

    def check_items(self, items: list[dict]) -> None:
        """Items as ``PosePolicy.predict``'s; with ``state`` each needs its robot ``state``."""
        missing = [i for i, it in enumerate(items) if it.get("state") is None]
        if self.cfg.state and missing:
            raise ValueError(f"this expert reads the robot state (ExpertConfig.state); items {missing} have "
                             "none: pass state=flow.processor.robot_state(T_base_ee, gripper, T_base_cam)")

    def refusal_floor(self, grammar: torch.Tensor, p_match: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone.refusal_floor(grammar, p_match)

    def infer(self, batch: dict, items: list[dict], timer: StageTimer, use_cache: bool = True,
              constrained: bool = True, generator: torch.Generator | None = None) -> dict:
        """The backbone's prefix ("prefix"), then the expert's chunk for every row not refused."""
        state = state_rows([it["state"] for it in items], self.cfg.frame) if self.cfg.state else None
        hidden, mask, extras = self.backbone.prefix_features(batch, with_extras=True)
        timer.lap("prefix")
        p_absent, p_match = extras["p_absent"].float(), extras.get("p_match")
        grammar = batch["grammar"].to(p_absent.device)
        absent = self.refused(p_absent, grammar, p_match).tolist()
        chunks = [None] * len(absent)
        if not all(absent):
            chunks = self.expert.sample(hidden, mask, generator, extras["anchor"], state).float().cpu().numpy()
        return {"chunks": chunks, "absent": absent, "scores": self.refusal_score(p_absent, grammar, p_match)}

    def prediction(self, out: dict, i: int, batch: dict, timings: dict) -> Prediction:
        frame_id = self.cfg.base_frame if self.cfg.frame == "base" else ""
        if out["absent"][i]:
            pred = Prediction.absent()
            pred.waypoint_dt, pred.timings_ms, pred.frame_id = self.cfg.dt, timings, frame_id
        else:
            # No grounding is decoded for a chunk: object fields are neutral (identity pose).
            c = out["chunks"][i]
            pred = Prediction("", (float("nan"), float("nan")), Pose(np.zeros(3), [0, 0, 0, 1]),
                              actions_to_waypoints(c, binary_gripper=True), waypoint_dt=self.cfg.dt,
                              token_ids=[], timings_ms=timings, valid=bool(np.all(np.isfinite(c))),
                              frame_id=frame_id)
        pred.score = out["scores"][i]
        return pred

    def config_summary(self) -> str:
        return json.dumps(self.cfg.to_dict())
