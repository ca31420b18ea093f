"""Trajectories -> camera-frame waypoint targets.

Pose-VLA predicts future end-effector poses in the CAMERA frame, so that what it learns about
motion does not depend on where a robot's base is. Any trajectory source (sim expert, another
robot's logs, our own LeRobot demos) is reduced to the same thing here: the end-effector pose
and gripper at ``t0 + k * dt`` (k = 1..T), expressed in the camera optical frame of the
observation taken at ``t0``.

Interpolation: positions linearly, rotations by slerp (scipy), both clamped to the ends of
the trajectory (a finished demo "holds" its last pose). The gripper is zero-order held from
the last sample at or before the query time, then thresholded to closed (0) / open (1): a
closing gripper is "closed" the moment it was commanded, not halfway.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from posevla_core import se3
from posevla_core.types import Pose, Waypoint


def pose7_to_T(p7: np.ndarray) -> np.ndarray:
    """(..., 7) xyz + quaternion xyzw -> (..., 4, 4)."""
    p7 = np.asarray(p7, dtype=np.float64)
    T = np.zeros(p7.shape[:-1] + (4, 4))
    T[..., :3, :3] = Rotation.from_quat(p7[..., 3:7].reshape(-1, 4)).as_matrix().reshape(p7.shape[:-1] + (3, 3))
    T[..., :3, 3] = p7[..., :3]
    T[..., 3, 3] = 1.0
    return T


def T_to_pose7(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    q = Rotation.from_matrix(T[..., :3, :3].reshape(-1, 3, 3)).as_quat().reshape(T.shape[:-2] + (4,))
    return np.concatenate([T[..., :3, 3], q], axis=-1)


def sample_poses(times: np.ndarray, T_seq: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Interpolate 4x4 poses ``T_seq`` (L, 4, 4) at strictly increasing ``times`` (L,) to
    ``query`` (Q,) -> (Q, 4, 4); queries outside the range are clamped to the ends."""
    times = np.asarray(times, dtype=np.float64)
    T_seq = np.asarray(T_seq, dtype=np.float64)
    if times.ndim != 1 or len(times) != len(T_seq) or len(times) == 0:
        raise ValueError(f"times {times.shape} and poses {T_seq.shape} do not match")
    if np.any(np.diff(times) <= 0):
        raise ValueError("trajectory times must be strictly increasing")
    q = np.clip(np.asarray(query, dtype=np.float64), times[0], times[-1])
    out = np.repeat(np.eye(4)[None], len(q), axis=0)
    if len(times) == 1:
        out[:] = T_seq[0]
        return out
    for a in range(3):
        out[:, a, 3] = np.interp(q, times, T_seq[:, a, 3])
    out[:, :3, :3] = Slerp(times, Rotation.from_matrix(T_seq[:, :3, :3]))(q).as_matrix()
    return out


def hold_values(times: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Zero-order hold: the last value at or before each query (the first one before start)."""
    idx = np.searchsorted(np.asarray(times, dtype=np.float64), np.asarray(query, dtype=np.float64), side="right") - 1
    return np.asarray(values)[np.clip(idx, 0, len(values) - 1)]


def waypoints_from_trajectory(times: np.ndarray, T_base_ee: np.ndarray, gripper: np.ndarray,
                              T_base_cam: np.ndarray, t0: float, num: int, dt: float,
                              open_threshold: float = 0.5) -> list[Waypoint]:
    """The ``num`` future waypoints of a base-frame trajectory, in the camera optical frame.

    ``T_base_ee`` (L, 4, 4): end-effector poses in the robot base frame at ``times`` (L,).
    ``gripper`` (L,): opening, 0 closed .. 1 open. ``T_base_cam``: the camera optical frame
    in the base frame for the observation at ``t0``. Waypoint k (1-based) is at t0 + k*dt.
    """
    if not (dt > 0 and num > 0):
        raise ValueError(f"need dt > 0 and num > 0, got dt={dt} num={num}")
    query = t0 + dt * np.arange(1, num + 1)
    T_q = sample_poses(times, T_base_ee, query)
    g = hold_values(times, np.asarray(gripper, dtype=np.float64), query)
    T_cam_base = se3.inv_T(np.asarray(T_base_cam, dtype=np.float64))
    return [Waypoint(Pose.from_matrix(T_cam_base @ T_q[k]), 1.0 if g[k] >= open_threshold else 0.0)
            for k in range(num)]
