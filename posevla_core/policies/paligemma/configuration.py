"""PaliGemma's Pose-VLA configuration (config.json's "posevla" of a ``paligemma`` checkpoint)
and the PaliGemma facts it depends on."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from posevla_core.config import FORMAT_VERSION, TokenizerConfig, check_format

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PALIGEMMA_LOC_TOKENS = 1024                 # <loc0000> .. <loc1023>: PaliGemma's own 2D location tokens


@dataclass
class VLMConfig:
    """Pose-VLA on a pretrained PaliGemma (paligemma/modeling.py). The backbone's own Hugging Face config
    is saved beside this one in the checkpoint; these are the Pose-VLA choices on top of it."""

    tokens: TokenizerConfig = field(default_factory=lambda: TokenizerConfig(box_bins=PALIGEMMA_LOC_TOKENS))
    prompt: str = "{instruction}"           # PaliGemma prompt text: "<image>*N <bos>{prompt}\n" -> pose tokens <eos>
    max_prompt_tokens: int = 48             # instruction tokens kept
    use_prior: bool = True                  # the ray + depth pixel prior added to the vision tower's output
    prior_hidden_mult: int = 4              # prior MLP hidden width = mult * vision width (paper: 4 * 1152)
    prior_dropout: float = 0.5              # per sample and per prior (rays, depth), in training
    max_cameras: int = 2                    # first camera + views per prediction (each: its image tokens + prior)
    freeze_vision: bool = False             # do not train the vision tower
    lora_rank: int = 0                      # 0 = full fine-tuning of the language model; > 0 = LoRA (peft)
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = LORA_TARGETS
    gradient_checkpointing: bool = False
    no_object_threshold: float = 1.0       # an instruction is answered <no_object> when its first-step probability reaches this (1 = argmax only; detect prompts: always argmax)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.tokens, dict):
            self.tokens = TokenizerConfig(**self.tokens)
        self.lora_targets = tuple(self.lora_targets)
        if self.tokens.box_bins != PALIGEMMA_LOC_TOKENS:
            raise ValueError(f"VLMConfig.tokens.box_bins must be {PALIGEMMA_LOC_TOKENS}: 2D locations are "
                             f"PaliGemma's own <loc> tokens")
        if "{instruction}" not in self.prompt:
            raise ValueError("VLMConfig.prompt must contain '{instruction}'")
        if not 0.0 < self.no_object_threshold <= 1.0:
            raise ValueError("no_object_threshold must be in (0, 1]")
        if not 0.0 <= self.prior_dropout < 1.0 or self.lora_rank < 0 or self.prior_hidden_mult < 1 \
                or self.max_cameras < 1:
            raise ValueError("VLMConfig: prior_dropout in [0, 1), lora_rank >= 0, prior_hidden_mult >= 1, "
                             "max_cameras >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VLMConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown VLMConfig keys {sorted(unknown)} (config from a newer version?)")
        check_format(d, cls.__name__)
        return cls(**d)
