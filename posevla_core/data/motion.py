"""Trajectories -> camera-frame waypoint targets.

Pose-VLA predicts future end-effector poses in the CAMERA frame, so that what it learns about
motion does not depend on where a robot's base is. Any trajectory source (sim expert, another
robot's logs, our own LeRobot demos) is reduced to the same thing here: the end-effector pose
and gripper at ``t0 + k * dt`` (k = 1..T), expressed in the camera optical frame of the
observation taken at ``t0``.

Interpolation (``se3.interpolate_poses``): positions linearly, rotations by slerp (scipy), both clamped to the ends of
the trajectory (a finished demo "holds" its last pose). The gripper is zero-order held from
the last sample at or before the query time, then thresholded to closed (0) / open (1): a
closing gripper is "closed" the moment it was commanded, not halfway.
"""
from __future__ import annotations

import numpy as np

from posevla_core.geometry import se3
from posevla_core.policies.flow.codec import waypoints_to_actions
from posevla_core.policies.flow.configuration import ExpertConfig
from posevla_core.poses import Pose, Waypoint


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
    T_q = se3.interpolate_poses(times, T_base_ee, query)
    g = hold_values(times, np.asarray(gripper, dtype=np.float64), query)
    T_cam_base = se3.inv_T(np.asarray(T_base_cam, dtype=np.float64))
    return [Waypoint(Pose.from_matrix(T_cam_base @ T_q[k]), 1.0 if g[k] >= open_threshold else 0.0)
            for k in range(num)]

def chunk_from_trajectory(times: np.ndarray, T_base_ee: np.ndarray, gripper: np.ndarray, T_base_cam: np.ndarray,
                          t0: float, cfg: ExpertConfig, open_threshold: float = 0.5) -> np.ndarray:
    """The (H, 10) action chunk of a recorded trajectory at ``t0`` (``waypoints_from_trajectory``, as actions)."""
    T_ref = T_base_cam if cfg.frame == "camera" else np.eye(4)
    return waypoints_to_actions(waypoints_from_trajectory(times, T_base_ee, gripper, T_ref, t0, cfg.horizon,
                                                          cfg.dt, open_threshold))
