"""Helpers the model tests share."""
from __future__ import annotations

from posevla_core.tokens.grammar import NO_OBJECT


def forbid_no_object(model):
    """Random or briefly trained weights may answer ``<no_object>`` to anything; forbid it at
    the first decoding step so a test sees a full answer (the no-object path has tests of its
    own). Works for the small model and for PaliGemma (whose pose ids are mapped)."""
    nid = model.id_map[NO_OBJECT] if hasattr(model, "id_map") else NO_OBJECT
    model.step_bias[:, 0, nid] = float("-inf")
    return model


def random_frame(seed: int = 0, h: int = 48, w: int = 64, f: float = 60.0, depth: tuple = (0.5, 1.5)):
    """A random RGB-D frame (uint8 RGB, float32 depth in meters) and its pinhole K."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    d = rng.uniform(*depth, (h, w)).astype(np.float32)
    K = np.array([[f, 0, w / 2 - 0.5], [0, f, h / 2 - 0.5], [0, 0, 1]])
    return rgb, d, K
