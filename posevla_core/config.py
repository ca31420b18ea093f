"""Every knob of Pose-VLA in one place: typed dataclasses with defaults, a comment per field,
validation in ``__post_init__`` and a JSON round trip (the checkpoint's config.json).

Choices the paper leaves open are made here, deliberately:
- Rotation as Euler angles of the rotation RELATIVE to a reference fitted to the data
  (objects: after canonicalization under the category's symmetry), 360 circular bins per
  angle (docs/pose_tokens.md has the numbers behind this choice). Relative to the reference
  the labels sit near zero: far from the +-pi wrap and from gimbal lock; circular bins and
  soft labels make the wrap harmless where it still occurs.
- Positions in the camera optical frame, per-axis bins spaced by data percentiles.
- A fixed-length grammar (T waypoints), so constrained decoding is a per-step token range.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_CATEGORIES = ["cube", "cylinder", "bin", "object"]

# The paper's three training stages, in order; what each supervises is in data/sources.py,
# its training defaults in train/config.py (both import this one tuple).
STAGES = ("grounding", "motion", "embodiment")
FORMAT_VERSION = 2        # of the pose tokens a checkpoint was trained with (see check_format)


@dataclass
class TokenizerConfig:
    """The pose-token vocabulary and its bins. Everything here is JSON (config.json of a
    checkpoint); ``posevla fit-bins`` fills the ``*_edges`` and ``*_rotation_ref`` fields
    from data (tokens.fit_bins), None / identity means "uniform over the range" / "no reference"."""

    categories: list[str] = field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    symmetries: dict[str, str] = field(default_factory=dict)   # category -> symmetry.KINDS (default none)
    box_bins: int = 128                     # 2D box x1, y1, x2, y2, normalized image coords in [0, 1]
    position_bins: int = 256                # per axis, shared tokens
    position_min: tuple[float, float, float] = (-0.6, -0.6, 0.2)   # camera frame, meters (uniform bins)
    position_max: tuple[float, float, float] = (0.6, 0.6, 1.8)
    position_edges: list[list[float]] | None = None   # 3 x (position_bins + 1) fitted edges (x, y, z apart)
    rotation_bins: int = 360                # circular bins per Euler angle over [-pi, pi)
    rotation_order: str = "xyz"             # scipy Euler sequence of the rotation relative to its reference
    object_rotation_ref: tuple[float, ...] = (0.0, 0.0, 0.0, 1.0)   # xyzw; labels are R_ref^T R
    hand_rotation_ref: tuple[float, ...] = (0.0, 0.0, 0.0, 1.0)
    size_bins: int = 64                     # object extent along its own axes
    size_max: float = 0.5                   # meters (uniform bins over [0, size_max])
    size_edges: list[float] | None = None   # size_bins + 1 fitted edges, shared by the 3 axes
    gripper_bins: int = 2                   # 0 = closed .. bins-1 = open
    num_waypoints: int = 6                  # T future end-effector poses per prediction
    waypoint_dt: float = 1.0                # nominal seconds between waypoints

    def __post_init__(self) -> None:
        from posevla_core.geometry.symmetry import KINDS

        self.position_min = tuple(float(x) for x in self.position_min)
        self.position_max = tuple(float(x) for x in self.position_max)
        self.object_rotation_ref = tuple(float(x) for x in self.object_rotation_ref)
        self.hand_rotation_ref = tuple(float(x) for x in self.hand_rotation_ref)
        if len(self.categories) == 0 or len(set(self.categories)) != len(self.categories):
            raise ValueError("TokenizerConfig.categories must be a non-empty list of unique names")
        bad = {c: k for c, k in self.symmetries.items() if c not in self.categories or k not in KINDS}
        if bad:
            raise ValueError(f"TokenizerConfig.symmetries: unknown categories or kinds {bad} (kinds: {KINDS})")
        for name in ("box_bins", "position_bins", "rotation_bins", "size_bins"):
            if getattr(self, name) < 2:
                raise ValueError(f"TokenizerConfig.{name} must be >= 2")
        if self.gripper_bins < 2:
            raise ValueError("TokenizerConfig.gripper_bins must be >= 2 (closed and open)")
        if len(self.position_min) != 3 or any(lo >= hi for lo, hi in zip(self.position_min, self.position_max)):
            raise ValueError("TokenizerConfig.position_min must be 3 values, each < position_max")
        for name, edges, n in (("position_edges", self.position_edges, self.position_bins),):
            if edges is not None and (len(edges) != 3 or any(not _increasing(e, n + 1) for e in edges)):
                raise ValueError(f"TokenizerConfig.{name} must be 3 strictly increasing lists of {n + 1} edges")
        if self.size_edges is not None and not _increasing(self.size_edges, self.size_bins + 1):
            raise ValueError(f"TokenizerConfig.size_edges must be {self.size_bins + 1} strictly increasing edges")
        if not self.size_max > 0:
            raise ValueError("TokenizerConfig.size_max must be > 0")
        if len(self.rotation_order) != 3 or set(self.rotation_order.lower()) - set("xyz"):
            raise ValueError("TokenizerConfig.rotation_order must be a scipy Euler sequence like 'xyz'")
        if len(self.object_rotation_ref) != 4 or len(self.hand_rotation_ref) != 4:
            raise ValueError("TokenizerConfig.*_rotation_ref must be (x, y, z, w) quaternions")
        if self.num_waypoints < 1:
            raise ValueError("TokenizerConfig.num_waypoints must be >= 1")
        if not self.waypoint_dt > 0:
            raise ValueError("TokenizerConfig.waypoint_dt must be > 0 seconds")


def _increasing(edges, n: int) -> bool:
    return len(edges) == n and all(b > a for a, b in zip(edges, edges[1:]))


@dataclass
class GeometryConfig:
    use_depth: bool = True                  # False: always the learned no-depth embedding
    num_frequencies: int = 8                # Fourier features per axis
    max_frequency: float = 32.0             # cycles per meter of the highest band (~3 cm period)
    hidden: int = 128                       # MLP width
    min_valid_fraction: float = 0.05        # a patch with fewer valid depth pixels counts as empty
    use_rays: bool = False                  # the paper's per-pixel ray prior K^-1 [u, v, 1] (off in old configs)

    def __post_init__(self) -> None:
        if self.num_frequencies < 1 or self.max_frequency <= 0:
            raise ValueError("GeometryConfig: num_frequencies >= 1 and max_frequency > 0 required")
        if not 0.0 <= self.min_valid_fraction <= 1.0:
            raise ValueError("GeometryConfig.min_valid_fraction must be in [0, 1]")


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


def check_format(d: dict[str, Any], what: str) -> None:
    """Checkpoints of pose-token format 1 (rotation-vector tokens, no box / size / <no_object>)
    cannot be decoded by this code: say so instead of producing wrong poses."""
    v = int(d.get("format_version", 1))
    if v != FORMAT_VERSION:
        raise ValueError(f"{what}: checkpoint pose-token format {v}, this code reads format {FORMAT_VERSION} "
                         f"(Euler rotation tokens, 2D box, size, <no_object>); retrain it with this version")


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PALIGEMMA_LOC_TOKENS = 1024                 # <loc0000> .. <loc1023>: PaliGemma's own 2D location tokens


@dataclass
class VLMConfig:
    """Pose-VLA on a pretrained PaliGemma (paligemma.py). The backbone's own Hugging Face config
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
