"""The small model's configuration: its Llama decoder (``BackboneConfig``) and everything else
it is built from (``PoseVLAConfig``, config.json's "posevla" of a ``small`` checkpoint). The
pose tokens and the geometry prior it shares with the other architectures are in
posevla_core.config."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from posevla_core.config import FORMAT_VERSION, GeometryConfig, TokenizerConfig, check_format


@dataclass
class BackboneConfig:
    """The language model: a real transformers Llama decoder, tiny enough for CPU training."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    dropout: float = 0.0
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError("BackboneConfig.hidden_size must be divisible by num_heads")


@dataclass
class PoseVLAConfig:
    tokens: TokenizerConfig = field(default_factory=TokenizerConfig)
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    image_size: int = 96                    # square model input; K is updated on resize
    patch_size: int = 8                     # (image_size / patch_size)^2 vision tokens
    text_encoder: str = "minilm"            # "minilm": frozen pretrained all-MiniLM-L6-v2
    max_text_tokens: int = 16               # instruction tokens kept (padded/truncated)
    heatmap_loss_weight: float = 0.5        # auxiliary "which patch holds the object" loss; 0 = off
    label_smoothing_bins: float = 1.0       # sigma (in bins) of soft targets for ordinal tokens; 0 = hard
    no_object_threshold: float = 1.0       # an instruction is answered <no_object> when its first-step probability reaches this (1 = argmax only; detect prompts: always argmax)
    glimpse_size: int = 0                   # side of the high-res image the object glimpse is cut from; 0 = no glimpse
    glimpse_extent: float = 0.18            # the glimpse's side as a fraction of the image side
    glimpse_yaw_order: int = 1              # the glimpse regresses k * yaw (k-fold symmetric objects, e.g. 4 for cubes)
    presence_loss_weight: float = 0.0       # auxiliary "is the instructed object in view" loss on the heatmap; 0 = off
    verifier: bool = False                  # a second look: is what the pointer points at the instructed object? (needs a glimpse)
    verify_threshold: float = 0.5           # an instruction is refused when the verifier's P(match) is below this
    verify_proposals: int = 3               # heatmap peaks the verifier may try, best first, before refusing
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        for name, typ in (("tokens", TokenizerConfig), ("geometry", GeometryConfig), ("backbone", BackboneConfig)):
            if isinstance(getattr(self, name), dict):
                setattr(self, name, typ(**getattr(self, name)))
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if self.patch_size % 4:
            raise ValueError("patch_size must be a multiple of 4 (two stride-2 convolutions in the stem)")
        if not 0.0 < self.no_object_threshold <= 1.0:
            raise ValueError("no_object_threshold must be in (0, 1]")
        if self.glimpse_size < 0 or not 0.0 < self.glimpse_extent <= 1.0 or self.glimpse_yaw_order < 1:
            raise ValueError("glimpse_size must be >= 0, glimpse_extent in (0, 1] and glimpse_yaw_order >= 1")
        if self.verifier and not self.glimpse_size:
            raise ValueError("verifier needs the object glimpse (glimpse_size > 0): it looks at the same crop")
        if not 0.0 <= self.verify_threshold < 1.0 or self.verify_proposals < 1:
            raise ValueError("verify_threshold must be in [0, 1) and verify_proposals >= 1")
        if self.text_encoder not in ("minilm",):
            raise ValueError(f"unknown text_encoder {self.text_encoder!r}; supported: 'minilm'")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @classmethod
    def tiny(cls) -> "PoseVLAConfig":
        """A very small config for tests: fast to build and run, same code paths."""
        return cls(tokens=TokenizerConfig(num_waypoints=2, position_bins=64, rotation_bins=64, box_bins=32, size_bins=16),
                   backbone=BackboneConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128),
                   geometry=GeometryConfig(num_frequencies=4, hidden=64), image_size=64, patch_size=8,
                   glimpse_size=96, presence_loss_weight=0.5)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PoseVLAConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PoseVLAConfig keys {sorted(unknown)} (config from a newer version?)")
        check_format(d, cls.__name__)
        return cls(**d)
