"""The policy contract every architecture and head implements, and what they share.

Why one module: the contract and the save / load / predict scaffold written once for every
subclass are one class; splitting it would split each hook from the code that calls it.

A Pose-VLA policy is an ``nn.Module`` that turns (rgb, depth, K, instruction) into a
camera-frame ``Prediction`` and can train, save and load itself:

    policy = load_policy("checkpoints/demo", device="auto")    # factory: config.json picks the class
    pred = policy.predict(rgb, depth, K, "pick up the red cube")

``PosePolicy`` (the role of LeRobot's ``PreTrainedPolicy``) does, once for every subclass:

- checkpoints: config.json (``checkpoint_meta``), the weights as safetensors (one file per
  ``weight_files`` entry; tied tensors stored once), pose_vocab.json. Loading refuses pickle
  weight files (they can run code on load) and any tensor whose name or shape differs from the
  model built from config.json. Subclasses add what differs: ``from_meta`` (the model of a
  config.json), ``save_extra_files`` (tokenizers), ``required_files``.
- prediction: ``predict`` / ``predict_batch`` (processor -> ``infer`` -> ``prediction``, with
  per-stage timings) and the refusal rule (``refusal_floor``, ``refusal_score``: an instruction
  whose object is absent, or rejected by a verifier, is answered ``<no_object>`` and never moves
  the arm). Subclasses implement ``infer`` (their network) and ``prediction`` (one row).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from posevla_core.paths import CONFIG_FILE
from posevla_core.poses import Prediction
from posevla_core.tokens.decoding import refusal_floor, refusal_score

WEIGHTS_FILE, VOCAB_FILE = "model.safetensors", "pose_vocab.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
IGNORE = -100             # label of a token the loss skips (as torch's cross_entropy ignore_index)


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


def tied_names(module: nn.Module) -> dict[str, str]:
    """{name: the name it repeats} of the tensors that repeat another one (e.g. a tied lm_head and
    embeddings): the first name of each group in sorted order is the one kept, as safetensors
    chooses. Found by object identity, not by storage, so it also holds on a sharded (FSDP)
    module whose full storage is not local."""
    groups: dict[int, list[str]] = {}
    for n, t in (*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)):
        groups.setdefault(id(t), []).append(n)
    return {n: sorted(g)[0] for g in groups.values() for n in sorted(g)[1:]}


class StageTimer:
    """Wall-clock milliseconds of one ``predict_batch`` call's stages, in order, and their total."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = (now - self.last) * 1e3
        self.last = now

    def timings(self) -> dict[str, float]:
        return {**self.ms, "total": (self.last - self.start) * 1e3}


class PosePolicy(nn.Module):
    """Base class of every architecture and head. Subclasses set ``architecture`` and implement
    the methods that raise NotImplementedError; ``processor`` turns camera frames (+ targets) into
    model examples (``make_example``) and batches (``collate``); ``tokenizer`` is the pose grammar."""

    architecture: str = ""
    #: how many cameras one prediction takes (the first + ``len(views)``). Callers with a list of
    #: cameras (policy_node's camera_namespaces) check it once at start, not per frame.
    max_cameras: int = 1
    processor: Any
    tokenizer: Any
    cfg: Any

    # ---- checkpoints -----------------------------------------------------------------------------
    #: safetensors file name -> the prefix of the state-dict names it holds (stripped in the file)
    weight_files: dict[str, str] = {WEIGHTS_FILE: ""}
    #: what else a checkpoint directory must hold (besides config.json and the weights)
    required_files: tuple[str, ...] = ()

    @staticmethod
    def config_from(overrides: dict):
        """The architecture's default config with ``overrides`` applied (has ``.tokens``)."""
        raise NotImplementedError

    @classmethod
    def build(cls, overrides: dict, base: str | None = None) -> "PosePolicy":
        """A new model to train (``base``: a pretrained backbone directory, where the architecture has one)."""
        raise NotImplementedError

    @classmethod
    def from_meta(cls, directory: Path, meta: dict) -> "PosePolicy":
        """The model (on CPU, weights not loaded yet) that the checkpoint's config.json ``meta``
        describes; ``directory`` for files besides the weights (e.g. a text tokenizer)."""
        raise NotImplementedError

    def checkpoint_meta(self) -> dict:
        """What config.json holds (before a caller's ``extra``)."""
        return {"architecture": self.architecture, "posevla": self.cfg.to_dict()}

    def file_metadata(self, name: str) -> dict[str, str]:
        """The safetensors metadata of weights file ``name``."""
        return {"format": "pt", "posevla_format": str(self.cfg.format_version)}

    def save_extra_files(self, directory: Path) -> None:
        """Files a checkpoint needs besides config.json, the weights and the pose vocabulary."""

    def save_pretrained(self, directory: str | Path, extra: dict | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """config.json (``checkpoint_meta`` + ``extra``), the weights (``weight_files``; a tensor
        that repeats another one, e.g. tied embeddings, is stored once), pose_vocab.json and the
        subclass's ``save_extra_files``. ``state_dict``: write this instead of the module's own
        (a trainer's gathered state)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps({**self.checkpoint_meta(), **(extra or {})}, indent=2, default=str))
        state = self.state_dict() if state_dict is None else state_dict
        tied = tied_names(self)
        files: dict[str, dict[str, torch.Tensor]] = {name: {} for name in self.weight_files}
        for key, value in state.items():
            if key in tied:
                continue
            name = self._file_of(key)
            files[name][key[len(self.weight_files[name]):]] = value.detach().cpu().contiguous()
        for name, tensors in files.items():
            save_file(tensors, str(out / name), metadata=self.file_metadata(name))
        (out / VOCAB_FILE).write_text(json.dumps(self.tokenizer.token_names()))
        self.save_extra_files(out)
        return out

    def _file_of(self, key: str) -> str:
        """The weights file that holds state-dict entry ``key``: the longest matching prefix."""
        names = [n for n, prefix in self.weight_files.items() if key.startswith(prefix)]
        if not names:
            raise ValueError(f"no weights file of {type(self).__name__} holds {key!r} (weight_files: "
                             f"{self.weight_files})")
        return max(names, key=lambda n: len(self.weight_files[n]))

    @classmethod
    def read_checkpoint(cls, directory: str | Path) -> dict:
        """Check that ``directory`` is a checkpoint of this class and return its config.json: it
        exists, holds no pickle weights in place of safetensors, holds config.json with a
        "posevla" config, passes ``check_meta`` and holds every weights and required file."""
        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"checkpoint directory {d} does not exist")
        if not all((d / name).is_file() for name in cls.weight_files):
            pickles = sorted(p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES)
            if pickles:
                raise ValueError(f"{d} holds pickle weights {pickles}; Pose-VLA loads only safetensors "
                                 f"(pickles can run code on load). Convert with safetensors first.")
        if not (d / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"checkpoint {d} has no {CONFIG_FILE}")
        meta = json.loads((d / CONFIG_FILE).read_text())
        if "posevla" not in meta:
            raise ValueError(f"{d / CONFIG_FILE} is not a Pose-VLA config (no 'posevla' key)")
        cls.check_meta(d, meta)
        for name in (*cls.weight_files, *cls.checkpoint_files(meta)):
            if not (d / name).exists():
                raise FileNotFoundError(f"checkpoint {d} has no {name}")
        return meta

    @classmethod
    def check_meta(cls, directory: Path, meta: dict) -> None:
        """Raise ValueError where config.json does not describe a checkpoint of this class."""

    @classmethod
    def checkpoint_files(cls, meta: dict) -> tuple[str, ...]:
        """The files besides the weights that a checkpoint with config.json ``meta`` must hold."""
        return cls.required_files

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "auto") -> "PosePolicy":
        """Load a checkpoint directory onto ``device``, in eval mode (see ``read_checkpoint`` and
        ``load_weight_files`` for what is checked)."""
        d = Path(directory)
        model = cls.from_meta(d, cls.read_checkpoint(d))
        model.load_weight_files(d)
        vocab = d / VOCAB_FILE
        if vocab.exists() and json.loads(vocab.read_text()) != model.tokenizer.token_names():
            raise ValueError(f"{vocab} does not match the tokenizer built from {d / CONFIG_FILE}")
        return model.to(resolve_device(device)).eval()

    def load_weight_files(self, directory: str | Path, strict: bool = True) -> tuple[list[str], list[str]]:
        """Load ``weight_files`` from ``directory`` into this model in place. A tensor whose shape
        differs from the model's is a ValueError naming it; so is, with ``strict``, a missing or
        unexpected name (tied copies are not expected: they are stored once). Returns the
        (missing, unexpected) names."""
        d = Path(directory)
        state: dict[str, torch.Tensor] = {}
        for name, prefix in self.weight_files.items():
            state.update({prefix + k: v for k, v in load_file(str(d / name)).items()})
        own = self.state_dict()
        missing = sorted(set(own) - set(tied_names(self)) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = [f"{k} {tuple(state[k].shape)} (model: {tuple(own[k].shape)})"
                  for k in sorted(set(own) & set(state)) if own[k].shape != state[k].shape]
        if shapes:
            raise ValueError(f"checkpoint {d} does not match its config: tensor shapes differ from the model's: "
                             f"{shapes[:5]}" + (f" and {len(shapes) - 5} more" if len(shapes) > 5 else ""))
        if strict and (missing or unexpected):
            raise ValueError(f"checkpoint {d} does not match its config: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        self.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        return missing, unexpected

    # ---- training --------------------------------------------------------------------------------
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

    # ---- inference -------------------------------------------------------------------------------
    #: whether ``predict`` needs the robot's ``state`` (a flow expert with proprioception)
    needs_state: bool = False
    #: the name of the last stage ``infer`` runs, in a prediction's ``timings_ms``
    final_stage: str = "decode"

    @torch.no_grad()
    def predict(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                views: list[dict] | None = None, state: dict | None = None, **kw) -> Prediction:
        """One camera frame + instruction -> Prediction in that camera's frame (see poses.py).
        ``views``: more cameras ({"rgb", "depth", "K"} each), for backbones that take them.
        ``state``: the robot at the image (``flow.processor.robot_state``), for heads that read it
        (``needs_state``); the others ignore it."""
        item = {"rgb": rgb, "depth": depth, "K": K, "instruction": instruction}
        if views:
            item["views"] = views
        if state is not None:
            item["state"] = state
        return self.predict_batch([item], **kw)[0]

    @torch.no_grad()
    def predict_batch(self, items: list[dict], use_cache: bool = True, constrained: bool = True,
                      **kw) -> list[Prediction]:
        """Items as ``predict``'s arguments -> one Prediction each: ``check_items``, the processor's
        examples and batch ("preprocess"), ``infer`` (its stages, ``final_stage`` last), then
        ``prediction`` per row. ``kw``: the subclass's ``infer`` options (e.g. ``decoding``)."""
        self.check_items(items)
        with eval_mode(self):
            timer = StageTimer()
            batch = self.processor.collate([
                self.processor.make_example(it["rgb"], it.get("depth"), it["K"], it["instruction"],
                                            **self.example_options(it)) for it in items])
            timer.lap("preprocess")
            out = self.infer(batch, items, timer, use_cache=use_cache, constrained=constrained, **kw)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            timer.lap(self.final_stage)
        timings = timer.timings()
        return [self.prediction(out, i, batch, dict(timings)) for i in range(len(items))]

    def check_items(self, items: list[dict]) -> None:
        """Raise ValueError for items this model cannot predict (before any work is done)."""

    def example_options(self, item: dict) -> dict:
        """Keyword arguments of ``processor.make_example`` for ``item`` besides the first camera."""
        return {}

    def infer(self, batch: dict, items: list[dict], timer: StageTimer, use_cache: bool = True,
              constrained: bool = True) -> dict:
        """The network on a collated batch -> what ``prediction`` reads; ``timer.lap(stage)`` after
        each stage but the last (``final_stage``, timed by the caller)."""
        raise NotImplementedError

    def prediction(self, out: dict, i: int, batch: dict, timings: dict) -> Prediction:
        """Row ``i`` of ``infer``'s output as a Prediction (``timings``: this row's copy)."""
        raise NotImplementedError

    def refusal_floor(self, grammar: torch.Tensor, p_match: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) the first-step P(<no_object>) at or above which a row is refused: this model's
        ``no_object_threshold`` on instructions (detect prompts: the argmax), 0 (always) where the
        object verifier's P(match) is below ``verify_threshold`` (decoding.refusal_floor)."""
        return refusal_floor(grammar, self.cfg.no_object_threshold, p_match, getattr(self.cfg, "verify_threshold", 0.0))

    def refused(self, p_absent: torch.Tensor, grammar: torch.Tensor, p_match: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) bool: the rows ``refusal_floor`` refuses, given their first-step P(<no_object>)."""
        return p_absent >= self.refusal_floor(grammar.to(p_absent.device), p_match)

    @staticmethod
    def refusal_score(p_absent: torch.Tensor, grammar: torch.Tensor, p_match: torch.Tensor | None = None) -> list[float]:
        """Each row's confidence that the instructed object is there (``Prediction.score``)."""
        return refusal_score(p_absent, grammar, p_match).tolist()

    # ---- the prefix an action head attends to (flow/modeling.py) -----------------------------------
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
