"""Rigid transforms. Quaternions are (x, y, z, w) everywhere, as in ROS and scipy.

Kept tiny on purpose: scipy's Rotation does the rotation math; this module only fixes
conventions (4x4 homogeneous matrices, T_a_b maps points in frame b into frame a).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


def make_T(position, quat_xyzw) -> np.ndarray:
    """4x4 transform from a translation and an (x, y, z, w) quaternion."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(np.asarray(quat_xyzw, dtype=float)).as_matrix()
    T[:3, 3] = np.asarray(position, dtype=float)
    return T


def split_T(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position, quat_xyzw) of a 4x4 transform; the quaternion has w >= 0."""
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    if q[3] < 0:
        q = -q
    return T[:3, 3].copy(), q


def inv_T(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform without a general matrix inverse."""
    Ti = np.eye(4)
    R = T[:3, :3]
    Ti[:3, :3] = R.T
    Ti[:3, 3] = -R.T @ T[:3, 3]
    return Ti


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply T to an (..., 3) array of points."""
    points = np.asarray(points, dtype=float)
    return points @ T[:3, :3].T + T[:3, 3]


def rotation_angle(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Geodesic angle (radians, 0..pi) between two 3x3 rotation matrices: the one rotation
    error of the package (safety's FK check, calibration residuals, metrics). scipy's
    ``magnitude`` stays accurate near 0, where ``arccos((tr - 1) / 2)`` loses half the digits."""
    return float(Rotation.from_matrix(np.asarray(R_a, dtype=float).T @ np.asarray(R_b, dtype=float)).magnitude())


def rotation_angle_between(q_a, q_b) -> float:
    """Geodesic angle (radians) between two rotations given as (x, y, z, w) quaternions."""
    ra = Rotation.from_quat(np.asarray(q_a, dtype=float))
    rb = Rotation.from_quat(np.asarray(q_b, dtype=float))
    return float((ra.inv() * rb).magnitude())


def pose_error(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(position error m, rotation error rad) between two 4x4 poses."""
    return float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3])), rotation_angle(T_a[:3, :3], T_b[:3, :3])


def pose7_to_T(p7) -> np.ndarray:
    """(..., 7) position xyz + quaternion xyzw -> (..., 4, 4): the packed pose of datasets
    and shards (LeRobot ``observation.*_pose*``, npz ``traj_ee_base`` / ``camera_to_base``)."""
    p7 = np.asarray(p7, dtype=np.float64)
    T = np.zeros(p7.shape[:-1] + (4, 4))
    T[..., :3, :3] = Rotation.from_quat(p7[..., 3:7].reshape(-1, 4)).as_matrix().reshape(p7.shape[:-1] + (3, 3))
    T[..., :3, 3] = p7[..., :3]
    T[..., 3, 3] = 1.0
    return T


def T_to_pose7(T: np.ndarray) -> np.ndarray:
    """(..., 4, 4) -> (..., 7) position + quaternion xyzw with w >= 0 (as ``split_T``)."""
    T = np.asarray(T, dtype=np.float64)
    q = Rotation.from_matrix(T[..., :3, :3].reshape(-1, 3, 3)).as_quat().reshape(T.shape[:-2] + (4,))
    q = np.where(q[..., 3:4] < 0, -q, q)
    return np.concatenate([T[..., :3, 3], q], axis=-1)


def interpolate_poses(times, T_seq, query) -> np.ndarray:
    """Interpolate 4x4 poses ``T_seq`` (L, 4, 4) at strictly increasing ``times`` (L,) to
    ``query`` (Q,) -> (Q, 4, 4): positions linearly, rotations by slerp (scipy); queries
    outside the range are clamped to the ends (a finished trajectory holds its last pose)."""

    times = np.asarray(times, dtype=np.float64)
    T_seq = np.asarray(T_seq, dtype=np.float64)
    if times.ndim != 1 or len(times) != len(T_seq) or len(times) == 0:
        raise ValueError(f"times {times.shape} and poses {T_seq.shape} do not match")
    if np.any(np.diff(times) <= 0):
        raise ValueError("trajectory times must be strictly increasing")
    q = np.clip(np.asarray(query, dtype=np.float64).reshape(-1), times[0], times[-1])
    out = np.repeat(np.eye(4)[None], len(q), axis=0)
    if len(times) == 1:
        out[:] = T_seq[0]
        return out
    for a in range(3):
        out[:, a, 3] = np.interp(q, times, T_seq[:, a, 3])
    out[:, :3, :3] = Slerp(times, Rotation.from_matrix(T_seq[:, :3, :3]))(q).as_matrix()
    return out
