"""The configuration every architecture shares: the pose-token vocabulary (``TokenizerConfig``),
the depth + K geometry prior (``GeometryConfig``) and the pose-token format check. Typed
dataclasses with defaults, a comment per field, validation in ``__post_init__``; each
architecture's own config (policies/<name>/configuration.py) holds these and round-trips
through a checkpoint's config.json.

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

from dataclasses import dataclass, field
from typing import Any

from posevla_core.geometry.symmetry import KINDS

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


def check_format(d: dict[str, Any], what: str) -> None:
    """Checkpoints of pose-token format 1 (rotation-vector tokens, no box / size / <no_object>)
    cannot be decoded by this code: say so instead of producing wrong poses."""
    v = int(d.get("format_version", 1))
    if v != FORMAT_VERSION:
        raise ValueError(f"{what}: checkpoint pose-token format {v}, this code reads format {FORMAT_VERSION} "
                         f"(Euler rotation tokens, 2D box, size, <no_object>); retrain it with this version")
