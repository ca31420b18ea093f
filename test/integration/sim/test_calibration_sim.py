"""Hand-eye calibration on views rendered by the simulator lands within 5 mm and half a degree."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from posevla_core.geometry import se3
from posevla_core.calibration.board import CalibrationError, detect_board
from posevla_core.calibration.hand_eye import CalibrationView, solve_hand_eye
from test.helpers.calibration import BOARD, err_mm_deg


# ----------------------------------------------------------------------------- MuJoCo sim
def _sim_calibration(mode: str, n: int, seed: int, noise: float = 0.0):
    """The sim end to end without ROS: a ChArUco plate on the hand (eye-to-hand) or on the
    table with a wrist camera (eye-in-hand), the arm driven to ``n`` planned poses, board
    detected in 640x480 renders, gripper poses from pinocchio FK of the measured joints.
    ``noise`` > 0: each render gets a 0.8 px Gaussian blur and pixel noise of that sigma
    (gray levels), a less perfect camera than the renderer's."""
    rng = np.random.default_rng(seed)
    from posevla_core.calibration.pose_plan import plan_arm_poses
    from posevla_core.sim.mujoco.calibration_rig import sim_pose_plan
    from posevla_core.geometry.kinematics import RobotKinematics
    from posevla_core.sim.mujoco import scene
    from posevla_core.sim.mujoco.env import SimEnv

    kin = RobotKinematics("posevla://panda", "panda_grasptarget", scene.ARM_JOINTS)
    with SimEnv(640, 480, calibration=mode, board=BOARD) as env:
        env.reset(seed)
        q = env.arm_q()
        # truth: the camera in base (jittered per seed; the plan knows only the nominal pose)
        # or the wrist camera in the gripper frame
        truth = env.camera_pose_in_base() if mode == "eye-to-hand" else \
            se3.inv_T(env.ee_pose()) @ env.camera_pose_in_base()
        plan = sim_pose_plan(mode, kin, q)
        views = []
        for q_target in plan_arm_poses(kin, plan, n, q, seed=seed):
            env.send_arm_trajectory(scene.ARM_JOINTS, [2.0], [q_target])
            env.step(2.6)
            rgb, _, K = env.render()
            if noise > 0:
                blurred = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 0.8)
                rgb = np.clip(blurred + rng.normal(0, noise, rgb.shape), 0, 255).astype(np.uint8)
            G = kin.fk(env.arm_q())
            try:
                views.append(CalibrationView(G, detect_board(rgb, K, None, BOARD)))
            except CalibrationError as e:
                views.append(CalibrationView(G, None, str(e)))
    return truth, solve_hand_eye(views, mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode, noise", [("eye-to-hand", 0.0), ("eye-in-hand", 0.0), ("eye-to-hand", 6.0)])
def test_sim_calibration_within_5mm_half_degree(mode, noise):
    truth, res = _sim_calibration(mode, n=10, seed=3, noise=noise)
    mm, deg = err_mm_deg(res.T, truth)
    print(res.report(), f"\nerror vs the sim's true camera pose: {mm:.2f} mm, {deg:.3f} deg")
    assert mm < 5.0 and deg < 0.5, res.report()
    assert len(res.used) >= 8
