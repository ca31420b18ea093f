"""The flow head's action <-> pose codec, in numpy (the data code and the robot-state readers
use it without torch).

An action is one future end-effector pose plus the gripper, at the chunk's control period
``dt``: position (meters) + the 6D rotation representation (first two columns of R; continuous,
unlike Euler angles or quaternions with their sign ambiguity) + gripper (0 closed .. 1 open),
in the camera optical frame (default: the path to the robot stays TF -> IK -> controller) or
in the robot base frame. Action k of a chunk is the pose at t_image + k * dt (k = 1..H).
The robot's state at the image (``robot_state``) is laid out the same way (``state_vector``).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.geometry.se3 import inv_T
from posevla_core.policies.flow.configuration import ACTION_DIM
from posevla_core.poses import Pose, Waypoint


def rot6d_from_matrix(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two columns (Zhou et al. 2019)."""
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def matrix_from_rot6d(r: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt (any non-degenerate 6-vector gives a rotation)."""
    a, b = r[..., :3], r[..., 3:6]
    x = a / np.linalg.norm(a, axis=-1, keepdims=True).clip(1e-9)
    b = b - (x * b).sum(-1, keepdims=True) * x
    y = b / np.linalg.norm(b, axis=-1, keepdims=True).clip(1e-9)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def waypoints_to_actions(waypoints: list[Waypoint]) -> np.ndarray:
    """Waypoints -> (H, 10) float32 actions."""
    T = np.stack([w.pose.matrix() for w in waypoints])
    g = np.array([[w.gripper] for w in waypoints])
    return np.concatenate([T[:, :3, 3], rot6d_from_matrix(T[:, :3, :3]), g], axis=1).astype(np.float32)


def actions_to_waypoints(a: np.ndarray, binary_gripper: bool = False) -> list[Waypoint]:
    """(H, 10) actions -> waypoints (rotation re-orthonormalized, gripper clipped to [0, 1], or
    thresholded at 0.5 with ``binary_gripper``: the demos' gripper targets are open/closed)."""
    a = np.asarray(a, dtype=np.float64)
    quats = Rotation.from_matrix(matrix_from_rot6d(a[:, 3:9])).as_quat()    # one call for the chunk
    quats[quats[:, 3] < 0] *= -1                                              # w >= 0, as se3.split_T
    grip = (a[:, 9] >= 0.5).astype(float) if binary_gripper else np.clip(a[:, 9], 0.0, 1.0)
    return [Waypoint(Pose(a[k, :3], quats[k]), float(grip[k])) for k in range(len(a))]


def robot_state(T_base_ee: np.ndarray, gripper: float, T_base_cam: np.ndarray) -> dict:
    """The robot at one image, as a model's ``state`` input: end-effector pose in the base frame
    (FK of the measured joints), gripper opening (0 closed .. 1 open) and the camera optical
    frame's pose in the base frame. What the recorder writes as ``observation.*``."""
    return {"T_base_ee": np.asarray(T_base_ee, float), "gripper": float(gripper),
            "T_base_cam": np.asarray(T_base_cam, float)}


def state_vector(state: dict, frame: str) -> np.ndarray:
    """``robot_state`` -> (10,) float32 laid out as an action (xyz, 6D rotation, gripper), the hand
    in ``frame`` (camera: through the camera's extrinsics; base: as is)."""
    T = np.asarray(state["T_base_ee"], float)
    if frame == "camera":
        T = inv_T(np.asarray(state["T_base_cam"], float)) @ T
    v = np.concatenate([T[:3, 3], rot6d_from_matrix(T[:3, :3]), [float(state["gripper"])]]).astype(np.float32)
    if not np.all(np.isfinite(v)):
        raise ValueError("robot state is not finite")
    return v


def action_stats(chunks: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-dimension mean / std over every action of every chunk (the normalization)."""
    a = np.concatenate([np.asarray(c).reshape(-1, ACTION_DIM) for c in chunks])
    return a.mean(0).tolist(), np.maximum(a.std(0), 1e-3).tolist()
