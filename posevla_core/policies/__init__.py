"""Pose-VLA policies in LeRobot's shape: one folder per architecture or head (small, paligemma,
flow), each with its ``configuration``, ``processor`` and ``modeling``, on the shared base class
``base.PosePolicy``; ``factory`` holds the registry by name and ``load_policy``.

Only ``load_policy`` is re-exported here, from the torch-free factory, so that importing a
configuration module (e.g. ``policies.small.configuration``) does not import torch."""
from posevla_core.policies.factory import load_policy

__all__ = ["load_policy"]
