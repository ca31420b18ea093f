"""The registry of policies by name, and the loader that picks one from a checkpoint.

A checkpoint's config.json names its ``architecture`` (the backbone: ``small``, ``paligemma``;
a config without the key is a ``small`` checkpoint, as every checkpoint written before the key
existed) and its ``head`` (``tokens``: the architecture's own pose-token decoder, the default;
``flow``: the flow-matching action expert on that backbone). Nothing outside this module
branches on either name.

Classes are named as "module:class" and imported on first use: importing this module needs no
torch (train/config.py checks architecture names with it), and the PaliGemma class pulls in
most of transformers.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from posevla_core.paths import CONFIG_FILE, DEFAULT_HEAD, HEADS, architecture_of, read_meta

if TYPE_CHECKING:
    import torch

    from posevla_core.policies.base import PosePolicy

# architecture name -> "module:class" of its token-head policy
ARCHITECTURES = {"small": "posevla_core.policies.small.modeling:PoseVLA",
                 "paligemma": "posevla_core.policies.paligemma.modeling:PaliGemmaPoseVLA"}
# head name (other than "tokens", the architecture's own) -> "module:class" of the head on a backbone
HEAD_CLASSES = {"flow": "posevla_core.policies.flow.modeling:FlowPolicy"}
assert set(HEADS) == {DEFAULT_HEAD, *HEAD_CLASSES}, "paths.HEADS and HEAD_CLASSES name different heads"


def _import(spec: str) -> type:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def policy_class(architecture: str) -> type[PosePolicy]:
    """The token-head policy class of ``architecture``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return _import(ARCHITECTURES[architecture])


def head_class(head: str) -> type[PosePolicy] | None:
    """The class of an action head on a backbone; None for ``tokens`` (the architecture's own)."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; known: {list(HEADS)}")
    return _import(HEAD_CLASSES[head]) if head in HEAD_CLASSES else None


def load_policy(directory: str | Path, device: str | torch.device = "auto") -> PosePolicy:
    """Load any Pose-VLA checkpoint directory onto ``device``, in eval mode: config.json's
    "head" picks the head class, else its "architecture" the backbone's."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory {d} does not exist")
    head = read_meta(d).get("head", DEFAULT_HEAD)
    if head not in HEADS:
        raise ValueError(f"{d / CONFIG_FILE}: unknown head {head!r}; known: {list(HEADS)}")
    cls = head_class(head) or policy_class(architecture_of(d))
    return cls.from_pretrained(d, device=device)
