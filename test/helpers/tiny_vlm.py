"""The tests' tiny random PaliGemma directory (posevla_core.policies.paligemma.random_init, built offline)."""
from __future__ import annotations

from pathlib import Path


def make_tiny_paligemma(path: str | Path, seed: int = 0) -> Path:
    from posevla_core.policies.paligemma.random_init import save_random_paligemma

    return save_random_paligemma(path, "tiny", seed)


def make_tiny_vlm_checkpoint(root: str | Path, num_waypoints: int = 6) -> Path:
    """A saved PaliGemma Pose-VLA checkpoint (random tiny backbone) under ``root``/ckpt."""
    import torch

    from posevla_core.config import TokenizerConfig
    from posevla_core.policies.paligemma.configuration import VLMConfig
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA

    root = Path(root)
    torch.manual_seed(0)
    tokens = TokenizerConfig(box_bins=1024, num_waypoints=num_waypoints, position_bins=64, rotation_bins=63)
    model = PaliGemmaPoseVLA.from_base(make_tiny_paligemma(root / "base"), VLMConfig(tokens=tokens))
    return model.save_pretrained(root / "ckpt")
