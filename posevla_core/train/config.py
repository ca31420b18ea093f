"""Typed training configuration: one dataclass for all three stages (the stage only changes
defaults and which tokens are supervised). Loadable from YAML (config/train/*.yaml)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from posevla_core.config import STAGES
from posevla_core.policies.factory import ARCHITECTURES


@dataclass
class TrainConfig:
    stage: str = "grounding"
    steps: int = 2000
    batch_size: int = 32                 # global batch (split across processes)
    lr: float = 1e-3
    min_lr_ratio: float = 0.05           # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    mixed_precision: str = "auto"        # auto (bf16 on CUDA, fp32 on CPU) | no | bf16 | fp16
    seed: int = 0
    val_fraction: float = 0.05           # every n-th sample is held out
    max_val_samples: int = 64            # decoded (greedy) for the offline metrics
    eval_every: int = 500
    save_every: int = 500                # resumable checkpoint (out/resume)
    log_every: int = 10
    augment: bool = True
    depth_dropout: float = 0.1           # a training sample's depth is dropped with this probability (the model must not need depth)
    frame_stride: int = 1                # embodiment: every n-th recorded frame
    open_threshold: float = 0.8          # embodiment: gripper opening that counts as open
    max_samples: int = 0                 # 0 = all
    keep_resume_state: bool = False      # keep out/resume after a finished run
    model: dict = field(default_factory=dict)   # model config overrides when training from scratch / a base
    architecture: str = "small"          # small | paligemma (ignored with an init checkpoint: its config.json decides)
    base: str | None = None              # paligemma: local Hugging Face PaliGemma directory to start from
    head: str = "tokens"                 # tokens | flow (embodiment: train the flow-matching action expert, policies/flow)
    expert: dict = field(default_factory=dict)  # expert.ExpertConfig overrides (horizon, dt, frame, insulate, ...)
    cache_prefix: bool = False           # flow head on a frozen backbone: backbone prefix once per sample (no augment)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"TrainConfig.stage must be one of {STAGES}, not {self.stage!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("TrainConfig.steps and batch_size must be >= 1")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.mixed_precision must be auto|no|bf16|fp16, not {self.mixed_precision!r}")
        self.betas = tuple(self.betas)
        if self.head not in ("tokens", "flow"):
            raise ValueError(f"TrainConfig.head must be tokens | flow, not {self.head!r}")
        if self.head == "flow" and self.stage != "embodiment":
            raise ValueError("the flow head (action expert) trains in the embodiment stage only")
        if self.cache_prefix and (self.head != "flow" or self.augment):
            raise ValueError("TrainConfig.cache_prefix needs head 'flow' and augment false (a cached prefix "
                             "is the unaugmented image's)")

        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"TrainConfig.architecture must be one of {sorted(ARCHITECTURES)}, not {self.architecture!r}")

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> "TrainConfig":
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"training config {p} does not exist")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a mapping of TrainConfig fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{p}: unknown TrainConfig fields {unknown}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def stage_defaults(stage: str) -> TrainConfig:
    """Defaults per stage: post-training on ~100 demos uses a lower LR and shorter warmup."""
    if stage == "embodiment":
        return TrainConfig(stage=stage, steps=1000, lr=3e-4, warmup_steps=50, frame_stride=2)
    return TrainConfig(stage=stage)
