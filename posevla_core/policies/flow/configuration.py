"""The flow-matching action expert's configuration: config.json's "expert" of a flow-head
checkpoint. An action is xyz + the 6D rotation representation + the gripper (``ACTION_DIM``), in
the camera optical frame or the robot base frame (``FRAMES``)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

ACTION_DIM = 10                       # xyz + 6D rotation + gripper
FRAMES = ("camera", "base")


@dataclass
class ExpertConfig:
    horizon: int = 16                 # H actions per chunk
    dt: float = 0.1                   # control period of the chunk (s); PosePrediction.waypoint_dt
    frame: str = "camera"             # camera | base: the frame of the predicted poses
    base_frame: str = "base_link"     # frame_id of a base-frame chunk
    width: int = 128                  # expert transformer width
    layers: int = 1                   # 1: measured as accurate as 3 offline, and a chunk within 2x a backbone forward
    heads: int = 4
    ffn_mult: int = 4
    num_steps: int = 10               # Euler integration steps at inference
    noise_scale: float = 1.0          # inference: std of the starting noise (0: deterministic, the flow from x0 = 0)
    token_loss_weight: float = 0.0    # > 0: keep the pose-token loss beside the flow loss
    insulate: bool = True             # knowledge insulation: no expert gradient into the backbone
    anchor: bool = True               # positions relative to the backbone's grounded 3D point (camera frame only)
    anchor_default: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # where a frame has none
    state: bool = True                # proprioception: the hand's pose + gripper opening at the image
    action_mean: list[float] = field(default_factory=lambda: [0.0] * ACTION_DIM)   # normalization (data stats)
    action_std: list[float] = field(default_factory=lambda: [1.0] * ACTION_DIM)

    def __post_init__(self) -> None:
        if self.horizon < 1 or not self.dt > 0 or self.num_steps < 1 or not self.noise_scale >= 0:
            raise ValueError("ExpertConfig: horizon >= 1, dt > 0, num_steps >= 1 and noise_scale >= 0 required")
        if self.frame not in FRAMES:
            raise ValueError(f"ExpertConfig.frame must be one of {FRAMES}, not {self.frame!r}")
        if self.width % self.heads:
            raise ValueError("ExpertConfig.width must be divisible by heads")
        if len(self.action_mean) != ACTION_DIM or len(self.action_std) != ACTION_DIM:
            raise ValueError(f"ExpertConfig.action_mean/std need {ACTION_DIM} values")
        self.action_mean = [float(x) for x in self.action_mean]
        self.action_std = [max(float(x), 1e-3) for x in self.action_std]
        self.anchor_default = [float(x) for x in self.anchor_default]
        if len(self.anchor_default) != 3:
            raise ValueError("ExpertConfig.anchor_default needs 3 values (x, y, z in meters)")
        # the anchor is a camera-frame point: a base-frame chunk has no transform to use it
        self.anchor = bool(self.anchor) and self.frame == "camera"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExpertConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ExpertConfig keys {sorted(unknown)}")
        return cls(**d)
