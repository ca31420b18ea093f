"""The tests' tiny random PaliGemma directory (posevla_core.paligemma_random, built offline)."""
from __future__ import annotations

from pathlib import Path


def make_tiny_paligemma(path: str | Path, seed: int = 0) -> Path:
    from posevla_core.paligemma_random import save_random_paligemma

    return save_random_paligemma(path, "tiny", seed)
