"""Where to put the arm for a calibration run: diverse poses that aim the board (eye-to-hand)
or the wrist camera (eye-in-hand) at the other, reachable by IK.

    plan = eye_to_hand_plan(T_base_camera_guess, T_gripper_board)
    qs = plan_arm_poses(kin, plan, n=12, q_seed=q_now)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.calibration.board import CalibrationError
from posevla_core.geometry import se3


def aim_frame(position, look_at, tilt_deg: float = 0.0, tilt_dir_rad: float = 0.0, roll_rad: float = 0.0,
              up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """4x4 frame at ``position`` whose +z points at ``look_at``, tilted away from that line
    by ``tilt_deg`` (towards direction ``tilt_dir_rad`` about z) and rolled about its z by
    ``roll_rad``. Roll 0 puts +x horizontal (perpendicular to ``up``)."""
    p, c = np.asarray(position, float), np.asarray(look_at, float)
    z = c - p
    z /= np.linalg.norm(z)
    x = np.cross(np.asarray(up, float), z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross([1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z], axis=1)
    tilt_axis = np.array([np.cos(tilt_dir_rad), np.sin(tilt_dir_rad), 0.0])
    R = R @ Rotation.from_rotvec(np.radians(tilt_deg) * tilt_axis).as_matrix() \
        @ Rotation.from_rotvec([0.0, 0.0, roll_rad]).as_matrix()
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


@dataclass(frozen=True)
class PosePlan:
    """Where to put the arm: the frame F that must aim (F = the board plate for
    eye-to-hand, the camera for eye-in-hand) sits in a box around ``center`` and points
    its +z at ``look_at`` within ``max_tilt_deg``, rolled within ``max_roll_deg``."""

    center: tuple[float, float, float]
    half_extent: tuple[float, float, float]
    look_at: tuple[float, float, float]
    T_gripper_frame: np.ndarray          # F in the gripper (ee_link) frame, approximately
    max_tilt_deg: float = 25.0
    max_roll_deg: float = 35.0
    base_roll_rad: float = 0.0           # roll of F about its z that the arm reaches most easily


def eye_to_hand_plan(T_base_camera_guess: np.ndarray, T_gripper_board: np.ndarray, distance: float = 0.6,
                     spread: tuple[float, float, float] = (0.07, 0.08, 0.06), **kw) -> PosePlan:
    """Poses that hold the board (its printed face's normal = +z of ``T_gripper_board``)
    ``distance`` m in front of a roughly known fixed camera, facing it."""
    T = np.asarray(T_base_camera_guess, float)
    center = T[:3, 3] + distance * T[:3, 2]
    return PosePlan(tuple(center), spread, tuple(T[:3, 3]), np.asarray(T_gripper_board, float), **kw)


def eye_in_hand_plan(board_center_in_base, T_gripper_camera_guess: np.ndarray, distance: float = 0.45,
                     spread: tuple[float, float, float] = (0.15, 0.15, 0.06), max_tilt_deg: float = 6.0,
                     **kw) -> PosePlan:
    """Poses that put a roughly known wrist camera ``distance`` m above a board lying
    face up at ``board_center_in_base``, looking at it from a spread of positions (the
    viewing directions differ by the spread, so the tilt off the board stays small)."""
    c = np.asarray(board_center_in_base, float)
    return PosePlan(tuple(c + [0.0, 0.0, distance]), spread, tuple(c), np.asarray(T_gripper_camera_guess, float),
                    max_tilt_deg=max_tilt_deg, **kw)


def plan_arm_poses(kin, plan: PosePlan, n: int, q_seed, seed: int = 0, max_tries: int = 40,
                   min_joint_margin: float = 0.05, progress=None) -> list[np.ndarray]:
    """``n`` joint configurations that put the aiming frame at random diverse poses of
    ``plan`` (IK from ``q_seed``; the previous solution seeds the next, so the arm moves
    little between views). Raises CalibrationError when IK finds too few."""
    rng = np.random.default_rng(seed)
    T_fg = se3.inv_T(np.asarray(plan.T_gripper_frame, float))
    out: list[np.ndarray] = []
    q_prev = np.asarray(q_seed, float)
    tries = 0
    while len(out) < n and tries < n * max_tries:
        tries += 1
        p = np.asarray(plan.center) + rng.uniform(-1, 1, 3) * np.asarray(plan.half_extent)
        F = aim_frame(p, plan.look_at, tilt_deg=rng.uniform(0.3, 1.0) * plan.max_tilt_deg,
                      tilt_dir_rad=rng.uniform(0, 2 * np.pi),
                      roll_rad=plan.base_roll_rad + np.radians(rng.uniform(-1, 1) * plan.max_roll_deg))
        q, ok, _ = kin.ik(F @ T_fg, q_prev, seed=int(rng.integers(1 << 30)), restarts=2)
        if not ok or np.any(q < kin.lower + min_joint_margin) or np.any(q > kin.upper - min_joint_margin):
            continue
        out.append(q)
        q_prev = q
        if progress is not None:
            progress(len(out))
    if len(out) < n:
        raise CalibrationError(f"IK reached only {len(out)} of {n} calibration poses in {tries} tries: "
                               f"move the board/camera region (plan center {plan.center}) within reach")
    return out
