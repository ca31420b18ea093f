"""The flow head's processor: the backbone's examples and batches, plus each example's action
chunk and robot state as tensors (the codec, numpy only, is in ``codec``)."""
from __future__ import annotations

import numpy as np
import torch

from posevla_core.policies.flow.codec import state_vector
from posevla_core.policies.flow.configuration import ACTION_DIM, ExpertConfig


def state_rows(states: list[dict | None], frame: str) -> torch.Tensor:
    """A batch's (B, 10) ``state_vector`` rows; zeros for an example without a state (one without
    a chunk: its loss counts 0)."""
    return torch.from_numpy(np.stack([np.zeros(ACTION_DIM, np.float32) if st is None else state_vector(st, frame)
                                      for st in states]))


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
