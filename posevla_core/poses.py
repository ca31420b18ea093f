"""Typed results and targets of Pose-VLA. Everything here is in the camera OPTICAL frame
(x right, y down, z forward, meters) unless a name says otherwise."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from posevla_core.geometry import se3


@dataclass
class Pose:
    """A 6-DoF pose: position in meters and an (x, y, z, w) unit quaternion."""

    position: np.ndarray
    quat_xyzw: np.ndarray

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=np.float64).reshape(3)
        q = np.asarray(self.quat_xyzw, dtype=np.float64).reshape(4)
        n = np.linalg.norm(q)
        self.quat_xyzw = q / n if n > 0 else q

    def matrix(self) -> np.ndarray:
        return se3.make_T(self.position, self.quat_xyzw)

    @classmethod
    def from_matrix(cls, T: np.ndarray) -> "Pose":
        p, q = se3.split_T(T)
        return cls(p, q)

    def is_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.position)) and np.all(np.isfinite(self.quat_xyzw))
                    and np.linalg.norm(self.quat_xyzw) > 0.5)


@dataclass
class Waypoint:
    """A future end-effector pose with the gripper opening (0.0 closed .. 1.0 open)."""

    pose: Pose
    gripper: float


@dataclass
class PoseTarget:
    """What the model predicts for one observation: the grounded object, then waypoints.

    ``found`` False is the ``<no_object>`` answer (the instruction names an object that is not
    in view): then category, box, pose and size mean nothing and there are no waypoints.
    ``box_xyxy``: the object's 2D box (x1, y1, x2, y2), normalized image coordinates; None where
    a source has only the center ``box_uv``. ``size``: the object's extent along its own x, y, z
    axes in meters (its 3D box is centered on ``object_pose``); None where unknown.
    ``instances``: None for an instruction's answer (one object, then waypoints); for a
    "detect the {category}" prompt, every instance in view, near to far (this target's own
    fields are then the nearest one's).
    """

    category: str
    box_uv: tuple[float, float]
    object_pose: Pose
    waypoints: list[Waypoint] = field(default_factory=list)
    box_xyxy: tuple[float, float, float, float] | None = None
    size: np.ndarray | None = None
    found: bool = True
    instances: list["PoseTarget"] | None = None   # a "detect the ..." answer: every instance, near to far

    def map_image(self, f) -> "PoseTarget":
        """A copy whose 2D box center and corners went through ``f((u, v)) -> (u', v')`` (a
        crop / letterbox / resize of the image; normalized coordinates in and out)."""

        box = None
        if self.box_xyxy is not None:
            (x1, y1), (x2, y2) = f(self.box_xyxy[:2]), f(self.box_xyxy[2:])
            box = (float(x1), float(y1), float(x2), float(y2))
        u, v = f(self.box_uv)
        inst = None if self.instances is None else [t.map_image(f) for t in self.instances]
        return replace(self, box_uv=(float(u), float(v)), box_xyxy=box, instances=inst)

    @classmethod
    def absent(cls, category: str = "") -> "PoseTarget":
        """The ``<no_object>`` answer (``category``: what was asked for, for logs only)."""
        return cls(category, (0.5, 0.5), Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0])), found=False)


@dataclass
class Prediction(PoseTarget):
    """A decoded model output. `valid` is False when decoding could not produce a usable
    prediction (never raised at a robot: the caller must then not move)."""

    waypoint_dt: float = 0.0
    token_ids: list[int] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    valid: bool = True
    clipped: list[str] = field(default_factory=list)
    frame_id: str = ""            # "" = the image's optical frame; else the frame of the waypoints (a base-frame chunk)
    score: float = 1.0            # confidence that the named object is in view: 1 - p(<no_object>) at the first
                                  # decoded step (the detection score of the AP); 1.0 where a head has none
