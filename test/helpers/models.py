"""Helpers the model tests share: ``forbid_no_object`` (full answers from random weights),
``random_frame`` (a random RGB-D frame and K) and ``frame`` (the small-model tests' frame, used by
test/unit/posevla_core/policies/small/test_model.py and test/integration/test_model_training.py)."""
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


def frame(seed: int = 0, h: int = 48, w: int = 64):
    """The small-model tests' frame: ``random_frame`` with f = 60 px and depth in [0.5, 1.5] m
    (test/unit/posevla_core/policies/small/test_model.py, test/integration/test_model_training.py)."""
    return random_frame(seed, h, w, f=60.0, depth=(0.5, 1.5))
