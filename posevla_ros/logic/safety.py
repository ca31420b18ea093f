"""Safety checks between a prediction and the robot. Plain functions on numpy arrays, each
returning ``None`` when the check passes or a one-line reason when it fails; ``SafetyLimits``
holds the limits and ``SafetyGate`` the stop / resume state.

The executor runs them in this order and sends NO motion at the first failure:
stopped -> object not found -> stale -> non-finite -> workspace -> (IK) -> joint limits -> joint jumps -> FK match.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from posevla_core.geometry import se3
from posevla_core.poses import Prediction, Waypoint


@dataclass
class SafetyLimits:
    workspace_min: np.ndarray          # [3] base frame, meters
    workspace_max: np.ndarray
    max_joint_jump: float = 0.6        # rad between consecutive points (current state included)
    max_prediction_age_s: float = 2.0  # 0 disables the staleness check
    fk_position_tolerance: float = 0.005
    fk_rotation_tolerance_rad: float = math.radians(3.0)

    def __post_init__(self) -> None:
        self.workspace_min = np.asarray(self.workspace_min, dtype=float).reshape(3)
        self.workspace_max = np.asarray(self.workspace_max, dtype=float).reshape(3)
        if not (np.all(np.isfinite(self.workspace_min)) and np.all(np.isfinite(self.workspace_max))):
            raise ValueError("workspace.min / workspace.max must be finite")
        if np.any(self.workspace_min >= self.workspace_max):
            raise ValueError(f"workspace.min {self.workspace_min} must be < workspace.max {self.workspace_max}")

    @classmethod
    def from_params(cls, p: dict) -> "SafetyLimits":
        return cls(workspace_min=p["workspace.min"], workspace_max=p["workspace.max"],
                   max_joint_jump=p["max_joint_jump"], max_prediction_age_s=p["max_prediction_age_s"],
                   fk_position_tolerance=p["fk_position_tolerance"],
                   fk_rotation_tolerance_rad=math.radians(p["fk_rotation_tolerance_deg"]))


def check_stale(age_s: float, limits: SafetyLimits) -> str | None:
    if limits.max_prediction_age_s > 0 and not (age_s <= limits.max_prediction_age_s):
        return f"stale prediction: {age_s:.3f} s old > max_prediction_age_s {limits.max_prediction_age_s}"
    return None


def check_object_found(pred: Prediction) -> str | None:
    """The ``<no_object>`` answer (``object_found: false``) never moves the arm, even when the
    message carries waypoints."""
    if not pred.found:
        what = f"'{pred.category}'" if pred.category else "the instructed object"
        return f"object_found is false: {what} is not in view"
    return None


def check_prediction_finite(pred: Prediction) -> str | None:
    """A valid prediction whose waypoints pass ``check_waypoints_finite``."""
    if not pred.valid:
        return "prediction marked invalid"
    return check_waypoints_finite(pred.waypoints, pred.waypoint_dt)


def check_waypoints_finite(waypoints: list[Waypoint], dt: float) -> str | None:
    """Every waypoint finite with a unit-ish quaternion, gripper and dt finite, >= 1 waypoint
    (any frame: the policy's camera-frame waypoints and teleop's base-frame targets alike)."""
    if not waypoints:
        return "prediction has no waypoints"
    for i, w in enumerate(waypoints):
        if not w.pose.is_finite():
            return f"waypoint {i} has a non-finite or zero pose"
        if not math.isfinite(w.gripper):
            return f"waypoint {i} has a non-finite gripper value"
    if not math.isfinite(dt) or dt < 0:
        return f"invalid waypoint_dt {dt}"
    return None


def check_workspace(positions: np.ndarray, limits: SafetyLimits) -> str | None:
    """positions: [N, 3] in the base frame."""
    P = np.asarray(positions, dtype=float).reshape(-1, 3)
    if not np.all(np.isfinite(P)):
        return "non-finite target position"
    bad = np.any((P < limits.workspace_min) | (P > limits.workspace_max), axis=1)
    if np.any(bad):
        i = int(np.argmax(bad))
        return (f"waypoint {i} at {np.round(P[i], 3).tolist()} is outside the workspace box "
                f"{limits.workspace_min.tolist()}..{limits.workspace_max.tolist()}")
    return None


def check_joint_limits(qs: np.ndarray, lower: np.ndarray, upper: np.ndarray, joint_names=None) -> str | None:
    Q = np.asarray(qs, dtype=float).reshape(-1, len(lower))
    if not np.all(np.isfinite(Q)):
        return "non-finite joint position"
    bad = (Q < lower - 1e-9) | (Q > upper + 1e-9)
    if np.any(bad):
        i, j = map(int, np.argwhere(bad)[0])
        name = joint_names[j] if joint_names else f"joint {j}"
        return f"point {i}: {name} = {Q[i, j]:.4f} outside [{lower[j]:.4f}, {upper[j]:.4f}]"
    return None


def check_joint_jumps(q_start: np.ndarray, qs: np.ndarray, limits: SafetyLimits, joint_names=None) -> str | None:
    """Max |dq| between the current state and the first point and between consecutive points."""
    Q = np.vstack([np.asarray(q_start, dtype=float).reshape(1, -1), np.asarray(qs, dtype=float)])
    dq = np.abs(np.diff(Q, axis=0))
    if np.any(dq > limits.max_joint_jump):
        i, j = map(int, np.argwhere(dq > limits.max_joint_jump)[0])
        name = joint_names[j] if joint_names else f"joint {j}"
        return (f"joint jump of {dq[i, j]:.3f} rad on {name} into point {i} > max_joint_jump "
                f"{limits.max_joint_jump}")
    return None


pose_error = se3.pose_error   # (position m, rotation rad); its one home is se3


def check_fk_match(fk, qs: np.ndarray, targets: list[np.ndarray], limits: SafetyLimits) -> str | None:
    """FK(q_i) must match target_i within the position / rotation tolerances."""
    for i, (q, T) in enumerate(zip(qs, targets)):
        dp, ang = pose_error(fk(np.asarray(q)), T)
        if not (dp <= limits.fk_position_tolerance and ang <= limits.fk_rotation_tolerance_rad):
            return (f"FK of point {i} misses its target by {dp * 1000:.1f} mm / "
                    f"{math.degrees(ang):.2f} deg (limits {limits.fk_position_tolerance * 1000:.1f} mm / "
                    f"{math.degrees(limits.fk_rotation_tolerance_rad):.1f} deg)")
    return None


def check_transform(T: np.ndarray | None) -> str | None:
    if T is None:
        return "no camera->base transform"
    T = np.asarray(T, dtype=float)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return "camera->base transform is not a finite 4x4"
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-5) or np.linalg.det(R) < 0:
        return "camera->base rotation is not a rotation matrix"
    return None


def static_transform(translation, rotation_xyzw) -> np.ndarray:
    """The camera_to_base.* params as a 4x4; rejects non-finite values or a zero quaternion."""
    t = np.asarray(translation, dtype=float).reshape(3)
    q = np.asarray(rotation_xyzw, dtype=float).reshape(4)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))) or np.linalg.norm(q) < 1e-6:
        raise ValueError(f"invalid camera_to_base: translation {t.tolist()} rotation_xyzw {q.tolist()}")
    return se3.make_T(t, q / np.linalg.norm(q))


class SafetyGate:
    """The /posevla/stop - /posevla/resume latch (thread safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    def resume(self) -> None:
        with self._lock:
            self._stopped = False

    @property
    def stopped(self) -> bool:
        with self._lock:
            return self._stopped

    def check(self) -> str | None:
        return "stopped (call /posevla/resume)" if self.stopped else None


class Deadman:
    """An operator's hold-to-run switch (thread safe): motion is allowed only while the
    last heartbeat said "go" and is younger than ``timeout_s`` (monotonic wall time: the
    operator's hand is real whatever clock the graph runs on). A "stop" heartbeat or none
    at all means do not move."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._last: float | None = None

    def beat(self, go: bool, now: float | None = None) -> None:
        with self._lock:
            self._last = (time.monotonic() if now is None else now) if go else None

    def check(self, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last
        if last is None:
            return "deadman released (no 'true' heartbeat)"
        if now - last > self.timeout_s:
            return f"deadman heartbeat stale: {now - last:.2f} s old > deadman_timeout_s {self.timeout_s}"
        return None
