"""Where the sim's fixed RGB-D camera stands, and what it sees: ``CameraPlacement``.

Training jitters the camera only a few cm around one nominal pose (env.CAMERA_NOMINAL_POS
looking at env.CAMERA_NOMINAL_TARGET), so a policy that works there may not work a metre to
the side. A placement puts the camera anywhere, so that users can stage their own camera and
the generalization suite (benchmarks/bench_generalization.py) can sweep viewpoints:
    CameraPlacement(pose=(x, y, z, qx, qy, qz, qw))              # optical frame in the robot base
    CameraPlacement(orbit=Orbit(azimuth_deg=45))                 # 45 deg around the table target
    CameraPlacement(fov_deg=80, width=640, height=480)           # nominal pose, other intrinsics
    CameraPlacement.parse("1.2,0.45,0.55,-0.417,-0.764,0.432,0.236", fov_deg=60)

Poses are of the OPTICAL frame (x right, y down, z forward) in the base frame: the convention of
the executor's ``camera_to_base`` and of ``/sim/camera_pose``, so a pose read off one can be given
to the other. The orbit is about the vertical axis through the table target; azimuth 0 is the
nominal camera's azimuth, so ``Orbit()`` (nominal elevation, distance, no roll) is the nominal
pose. No mujoco import here: a bad value fails in one line before anything heavy loads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from posevla_core.sim.mujoco.scene import look_at_quat

# the nominal camera (config/robots/sim_panda.yaml camera_to_base; env.py imports these)
CAMERA_NOMINAL_POS = np.array([1.2, 0.45, 0.55])
CAMERA_NOMINAL_TARGET = np.array([0.5, 0.0, 0.05])
OPTICAL_FROM_MJCAM = np.diag([1.0, -1.0, -1.0])   # MuJoCo camera (x right, y up, looks along -z) -> optical


def _nominal_spherical() -> tuple[float, float, float]:
    d = CAMERA_NOMINAL_POS - CAMERA_NOMINAL_TARGET
    return (math.degrees(math.atan2(d[1], d[0])), math.degrees(math.atan2(d[2], math.hypot(d[0], d[1]))),
            float(np.linalg.norm(d)))


NOMINAL_AZIMUTH_DEG, NOMINAL_ELEVATION_DEG, NOMINAL_DISTANCE_M = _nominal_spherical()


def look_at_optical(pos, target, roll_deg: float = 0.0) -> np.ndarray:
    """4x4 optical-frame pose at ``pos`` looking at ``target`` with the image's up as close to
    +z as it gets, then turned by ``roll_deg`` about the optical axis (right-handed about z
    forward: positive turns image right toward image down, the camera clockwise as seen from
    behind it, so the scene appears turned counter-clockwise in the image)."""
    pos, target = np.asarray(pos, float), np.asarray(target, float)
    z = target - pos
    n = np.linalg.norm(z)
    if n < 1e-9:
        raise ValueError("camera position equals its target")
    z /= n
    x = np.cross(z, [0.0, 0.0, 1.0])   # right = forward x up
    if np.linalg.norm(x) < 1e-6:
        raise ValueError("camera looks straight up or down: the image's up is undefined")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)                 # down
    r = math.radians(roll_deg)
    c, s = math.cos(r), math.sin(r)
    R = np.stack([x, y, z], axis=1) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, pos
    return T


@dataclass(frozen=True)
class Orbit:
    """A camera on a sphere about the table target (``CAMERA_NOMINAL_TARGET``), looking at it.

    azimuth_deg:   around the vertical axis, from the nominal camera's azimuth (+ = counter-clockwise seen from above)
    elevation_deg: above the horizontal plane through the target (the table plane, 5 cm up)
    distance_m:    from the target
    roll_deg:      about the optical axis
    """

    azimuth_deg: float = 0.0
    elevation_deg: float = NOMINAL_ELEVATION_DEG
    distance_m: float = NOMINAL_DISTANCE_M
    roll_deg: float = 0.0

    def __post_init__(self) -> None:
        for k in ("azimuth_deg", "elevation_deg", "distance_m", "roll_deg"):
            if not math.isfinite(float(getattr(self, k))):
                raise ValueError(f"orbit {k} must be finite, got {getattr(self, k)!r}")
        if not -89.0 <= self.elevation_deg <= 89.0:
            raise ValueError(f"orbit elevation_deg must be in [-89, 89], got {self.elevation_deg}")
        if not self.distance_m > 0.05:
            raise ValueError(f"orbit distance_m must be > 0.05 m, got {self.distance_m}")

    def matrix(self) -> np.ndarray:
        """4x4 optical-frame pose in base."""
        az = math.radians(NOMINAL_AZIMUTH_DEG + self.azimuth_deg)
        el = math.radians(self.elevation_deg)
        offset = self.distance_m * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        return look_at_optical(CAMERA_NOMINAL_TARGET + offset, CAMERA_NOMINAL_TARGET, self.roll_deg)


def pose7_to_matrix(pose) -> np.ndarray:
    """(x, y, z, qx, qy, qz, qw) -> 4x4; the quaternion is normalized."""
    # scipy: loaded on use, so the launch graphs and the CLI that import this module do not pay for it
    from scipy.spatial.transform import Rotation

    p = np.asarray(pose, float)
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(p[3:7] / np.linalg.norm(p[3:7])).as_matrix()
    T[:3, 3] = p[:3]
    return T


def matrix_to_pose7(T) -> tuple[float, ...]:
    """4x4 -> (x, y, z, qx, qy, qz, qw), qw >= 0."""
    # scipy: loaded on use, so the launch graphs and the CLI that import this module do not pay for it
    from scipy.spatial.transform import Rotation

    T = np.asarray(T, float)
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    q = -q if q[3] < 0 else q
    return tuple(float(v) for v in np.r_[T[:3, 3], q])


@dataclass(frozen=True)
class CameraPlacement:
    """The sim camera's pose and intrinsics; every field left None keeps the scene's own (the
    nominal pose with its per-episode jitter, fov ``scene.CAMERA_FOVY``, the env's width/height).

    pose:   (x, y, z, qx, qy, qz, qw) of the OPTICAL frame in the base frame, or
    orbit:  an Orbit about the table target (not both);
    fov_deg: vertical field of view; K follows it and the resolution (env.pinhole_K);
    width, height: image size in pixels.
    A placed camera (pose or orbit) stands still across episodes: no jitter.
    """

    pose: tuple[float, ...] | None = None
    orbit: Orbit | None = None
    fov_deg: float | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if self.pose is not None and self.orbit is not None:
            raise ValueError("camera placement: give a pose or an orbit, not both")
        if self.pose is not None:
            p = tuple(float(v) for v in self.pose)
            if len(p) != 7 or not all(math.isfinite(v) for v in p):
                raise ValueError(f"camera pose: expected 7 finite numbers x,y,z,qx,qy,qz,qw, got {list(self.pose)}")
            if np.linalg.norm(p[3:]) < 1e-6:
                raise ValueError(f"camera pose: the quaternion {list(p[3:])} has zero length")
            object.__setattr__(self, "pose", p)
        if self.fov_deg is not None and not 1.0 <= float(self.fov_deg) <= 170.0:
            raise ValueError(f"camera fov: vertical field of view in degrees must be in [1, 170], got {self.fov_deg}")
        for k in ("width", "height"):
            v = getattr(self, k)
            if v is not None and not (int(v) == v and 16 <= int(v) <= 4096):
                raise ValueError(f"camera {k}: pixels in [16, 4096], got {v}")

    @property
    def placed(self) -> bool:
        """True when the pose is set (pose or orbit): the camera does not jitter."""
        return self.pose is not None or self.orbit is not None

    def matrix(self) -> np.ndarray | None:
        """4x4 optical-frame pose in base, or None (the scene's nominal pose + jitter)."""
        if self.pose is not None:
            return pose7_to_matrix(self.pose)
        return self.orbit.matrix() if self.orbit is not None else None

    def describe(self) -> str:
        """A short label, e.g. for logs and tables."""
        parts = []
        if self.orbit is not None:
            o = self.orbit
            parts.append(f"orbit az {o.azimuth_deg:g} el {o.elevation_deg:.1f} d {o.distance_m:.2f} roll {o.roll_deg:g}")
        elif self.pose is not None:
            parts.append("pose " + ",".join(f"{v:.4g}" for v in self.pose))
        if self.fov_deg is not None:
            parts.append(f"fov {self.fov_deg:g}")
        if self.width is not None or self.height is not None:
            parts.append(f"{self.width}x{self.height}")
        return ", ".join(parts) or "nominal"

    @classmethod
    def parse(cls, pose: str | None = "", fov_deg: float | None = None, width: int | None = None,
              height: int | None = None) -> "CameraPlacement | None":
        """From the command line / node parameters: ``pose`` "x,y,z,qx,qy,qz,qw" (empty = none);
        ``fov_deg`` / ``width`` / ``height`` 0 or None = the scene's. None when nothing is set.
        ValueError in one line on a bad value."""
        text = (pose or "").strip()
        values = None
        if text:
            try:
                values = tuple(float(v) for v in text.strip("[]()").replace(" ", "").split(","))
            except ValueError:
                raise ValueError(f"camera pose {text!r}: expected 7 numbers x,y,z,qx,qy,qz,qw") from None
            if len(values) != 7:
                raise ValueError(f"camera pose {text!r}: expected 7 numbers x,y,z,qx,qy,qz,qw, got {len(values)}")
        placement = cls(pose=values, fov_deg=float(fov_deg) if fov_deg else None,
                        width=int(width) if width else None, height=int(height) if height else None)
        return placement if placement != cls() else None

    @staticmethod
    def format_pose(T) -> str:
        """A 4x4 pose as the "x,y,z,qx,qy,qz,qw" text ``parse`` reads (``--camera-pose``)."""
        return ",".join(f"{v:.6f}" for v in matrix_to_pose7(T))

def nominal_camera_pose() -> np.ndarray:
    """Optical-frame pose in base of the un-randomized camera (config/robots/sim_panda.yaml)."""
    # scipy: loaded on use, so the launch graphs and the CLI that import this module do not pay for it
    from scipy.spatial.transform import Rotation

    qw, qx, qy, qz = look_at_quat(CAMERA_NOMINAL_POS, CAMERA_NOMINAL_TARGET)
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat([qx, qy, qz, qw]).as_matrix() @ OPTICAL_FROM_MJCAM
    T[:3, 3] = CAMERA_NOMINAL_POS
    return T
