"""The one model contract every caller uses, and the one loader that picks the backbone.

A Pose-VLA policy is an ``nn.Module`` that turns (rgb, depth, K, instruction) into a
camera-frame ``Prediction`` and can train, save and load itself:

    policy = load_policy("checkpoints/demo", device="auto")    # reads config.json's "architecture"
    pred = policy.predict(rgb, depth, K, "pick up the red cube")

Implementations: ``small`` (model.PoseVLA, the CPU model of the sim demo) and ``paligemma``
(paligemma.PaliGemmaPoseVLA). A checkpoint's config.json names its architecture; a config
without the key is a ``small`` checkpoint (every checkpoint written before the key existed).
Nothing outside this module branches on the architecture.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# config.json's reading lives in paths.py (no torch: graphs and launch files read a checkpoint's head)
from posevla_core.paths import CONFIG_FILE, DEFAULT_ARCHITECTURE, DEFAULT_HEAD, HEADS  # noqa: F401 - re-exported
from posevla_core.paths import architecture_of, head_of, read_meta  # noqa: F401 - re-exported
from posevla_core.poses import Prediction

# architecture name -> "module:class"; imported lazily (the VLM pulls in more of transformers).
ARCHITECTURES = {"small": "posevla_core.policies.small.modeling:PoseVLA", "paligemma": "posevla_core.policies.paligemma.modeling:PaliGemmaPoseVLA"}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available (use 'cpu' or 'auto')")
    return torch.device(device)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model.eval()`` inside, ``model.train(<its flag before>)`` after, as a bare
    eval() / train() pair would do, but nothing at all when every submodule is already in eval
    mode, the serving case: switching walks every submodule twice (about 0.8 ms per prediction
    on a CPU, most of what an action chunk spent outside the networks); reading the flags does not."""
    if not any(m.training for m in model.modules()):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class PosePolicy(nn.Module):
    """Base class of every backbone. Subclasses set ``architecture`` and implement the
    abstract methods; ``processor`` turns camera frames (+ targets) into model examples
    (``make_example``) and batches (``collate``); ``tokenizer`` is the pose grammar."""

    architecture: str = ""
    #: how many cameras one prediction takes (the first + ``len(views)``). Callers with a list of
    #: cameras (policy_node's camera_namespaces) check it once at start, not per frame.
    max_cameras: int = 1
    processor: Any
    tokenizer: Any

    # ---- checkpoints
    @staticmethod
    def config_from(overrides: dict):
        """The architecture's default config with ``overrides`` applied (has ``.tokens``)."""
        raise NotImplementedError

    @classmethod
    def build(cls, overrides: dict, base: str | None = None) -> "PosePolicy":
        """A new model to train (``base``: a pretrained backbone directory, where the architecture has one)."""
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "auto") -> "PosePolicy":
        raise NotImplementedError

    def save_pretrained(self, directory: str | Path, extra: dict | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        raise NotImplementedError

    # ---- training
    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Training forward = the loss (so that DDP/FSDP wrappers see a normal forward call)."""
        return self.compute_loss(batch)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups of the trainable parameters: matrices decay, vectors do not."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        decay = [p for n, p in named if p.ndim >= 2 and not self.no_decay(n)]
        rest = [p for n, p in named if not (p.ndim >= 2 and not self.no_decay(n))]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]

    def no_decay(self, name: str) -> bool:
        return False

    # ---- inference
    @torch.no_grad()
    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                views: list[dict] | None = None, state: dict | None = None, **kw) -> Prediction:
        """One camera frame + instruction -> Prediction in that camera's frame (see types.py).
        ``views``: more cameras ({"rgb", "depth", "K"} each), for backbones that take them.
        ``state``: the robot at the image (``expert.robot_state``), for heads that read it
        (``needs_state``); the others ignore it."""
        item = {"rgb": rgb, "depth": depth, "K": K, "instruction": instruction}
        if views:
            item["views"] = views
        if state is not None:
            item["state"] = state
        return self.predict_batch([item], **kw)[0]

    def predict_batch(self, items: list[dict], use_cache: bool = True, constrained: bool = True) -> list[Prediction]:
        raise NotImplementedError

    #: whether ``predict`` needs the robot's ``state`` (a flow expert with proprioception)
    needs_state: bool = False

    # ---- the prefix an action head attends to (expert.py)
    @property
    def prefix_dim(self) -> int:
        """Width of ``prefix_features``' hidden states."""
        raise NotImplementedError

    def prefix_features(self, batch: dict, with_extras: bool = False):
        """The backbone's hidden states over its prefix (image + prompt), (B, L, prefix_dim),
        and the prefix mask (B, L) bool (True = a real token): one backbone forward.
        ``with_extras``: also a dict of (B, ...) tensors from the same forward: ``anchor`` (B, 3),
        the camera-frame point (m) the backbone grounded the instruction on, NaN where it has none
        (an action expert's positions are relative to it), and ``p_absent`` (B,), the first pose
        token's P(<no_object>) (an action head refuses on it like the token head)."""
        raise NotImplementedError

    @staticmethod
    def no_anchor(batch_size: int, device) -> torch.Tensor:
        """``prefix_features``' anchor of a backbone that grounds no 3D point."""
        return torch.full((batch_size, 3), float("nan"), device=device)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def policy_class(architecture: str) -> type[PosePolicy]:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    mod, name = ARCHITECTURES[architecture].split(":")
    return getattr(importlib.import_module(mod), name)


def load_policy(directory: str | Path, device: str | torch.device = "auto") -> PosePolicy:
    """Load any Pose-VLA checkpoint directory onto ``device``, in eval mode. config.json's
    "head" picks the head: "tokens" (default; every checkpoint before the key) or "flow"
    (the action expert of expert.py on top of the named backbone)."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory {d} does not exist")
    head = read_meta(d).get("head", DEFAULT_HEAD)
    if head not in HEADS:
        raise ValueError(f"{d / CONFIG_FILE}: unknown head {head!r}; known: {list(HEADS)}")
    if head == "flow":
        from posevla_core.policies.flow.modeling import FlowPolicy

        return FlowPolicy.from_pretrained(d, device=device)
    return policy_class(architecture_of(d)).from_pretrained(d, device=device)


def use_decoding(model, mode: str) -> str | None:
    """``model.set_decoding(mode)`` where the model has one (the small model's decode step, a flow
    head's Euler steps; PaliGemma token heads keep their own): what policy_node and ``posevla
    serve`` do after loading. Returns the one-line message of a compilation that fell back to
    the uncompiled step, for the caller's log; None when the mode took."""
    if not hasattr(model, "set_decoding"):
        return None
    try:
        model.set_decoding(mode)
    except RuntimeError as e:
        return str(e)
    return None


def set_inference_threads(requested: int) -> int:
    """Set torch's intra-op threads (process-wide) for a model that predicts on a worker thread
    (policy_node's inference thread, ``posevla serve``'s connection threads), before it is loaded
    and compiled (a compiled step is specialized to the thread count), and return the count.
    ``requested`` > 0 is used as is; 0 = half the CPUs this process may use, at least 1, and no
    more than torch's own default. Why half: libgomp, torch's OpenMP, spin-waits
    between kernels only while it manages no more threads than there are CPUs, and a worker
    thread's team counts on top of the main thread's; past that, each of the small model's ~150
    tiny kernels per decode step waits for its threads to wake. Measured on 2 cores, policy_node's
    predict median: 203 ms with 2 threads, 94 ms with 1 (on the main thread 2 threads give 85)."""
    if int(requested) < 0:
        raise ValueError(f"CPU threads must be >= 0 (0 = half the CPUs), got {requested}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = int(requested) or max(1, min(torch.get_num_threads(), cpus // 2))
    torch.set_num_threads(n)
    return n


def prediction_from_tokens(tokenizer, ids: list[int], to_image_uv, waypoint_dt: float,
                           timings: dict, grammar: int = 0) -> Prediction:
    """Decoded pose-token ids -> Prediction; ``to_image_uv`` maps the model image's normalized
    box center back into the camera image. An unparsable sequence (only possible without the
    grammar constraint) is an invalid prediction, never an exception at a robot."""
    if not tokenizer.is_valid(ids, grammar):
        return Prediction("", (float("nan"), float("nan")), None, [], waypoint_dt=waypoint_dt,
                          token_ids=ids, timings_ms=timings, valid=False)
    t = tokenizer.decode(ids, grammar)
    if not t.found:       # <no_object>: a valid answer that never moves the arm
        return Prediction(t.category, t.box_uv, t.object_pose, [], found=False, waypoint_dt=waypoint_dt,
                          token_ids=ids[:1], timings_ms=timings)
    if t.instances is not None:                        # a detect answer: the ids up to its EOS
        ids = ids[:len(t.instances) * tokenizer.num_grounding_steps + 1]
    t = t.map_image(to_image_uv)
    ok = t.object_pose.is_finite() and all(w.pose.is_finite() for w in t.waypoints)
    return Prediction(t.category, t.box_uv, t.object_pose, t.waypoints, box_xyxy=t.box_xyxy, size=t.size,
                      instances=t.instances, waypoint_dt=waypoint_dt, token_ids=ids, timings_ms=timings, valid=ok)
