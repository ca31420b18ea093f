"""Rigid transforms. Quaternions are (x, y, z, w) everywhere, as in ROS and scipy.

Kept tiny on purpose: scipy's Rotation does the rotation math; this module only fixes
conventions (4x4 homogeneous matrices, T_a_b maps points in frame b into frame a).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


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


def rotation_angle_between(q_a, q_b) -> float:
    """Geodesic angle (radians) between two rotations given as (x, y, z, w) quaternions."""
    ra = Rotation.from_quat(np.asarray(q_a, dtype=float))
    rb = Rotation.from_quat(np.asarray(q_b, dtype=float))
    return float((ra.inv() * rb).magnitude())
