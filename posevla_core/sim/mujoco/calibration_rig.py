"""The calibration rig of our MuJoCo scene: the printed board's texture for the sim's plate, and
the pose plan that matches the scene's board mounts and nominal camera (what ``posevla
calibrate --sim`` and the calibration tests run)."""
from __future__ import annotations

import numpy as np

from posevla_core.calibration.board import CharucoBoardSpec, _cv2
from posevla_core.calibration.pose_plan import PosePlan, eye_in_hand_plan, eye_to_hand_plan
from posevla_core.geometry import se3
from posevla_core.sim.camera import OPTICAL_FROM_MJCAM, nominal_camera_pose
from posevla_core.sim.mujoco import scene
from posevla_core.sim.mujoco.assets import cache_dir


def board_texture(spec: CharucoBoardSpec, px_per_square: int = 160, margin_squares: float = 0.5):
    """Write the board image (RGB PNG, generated now) for the sim's textured plate.
    Returns (png path, (half width, half height) of the printed area in m, margin included)."""
    cv2 = _cv2()
    img = spec.image(px_per_square, margin_squares)
    key = f"{spec.squares_x}x{spec.squares_y}_{spec.square_length:g}_{spec.marker_length:g}_{spec.dictionary}"
    path = cache_dir() / f"charuco_{key}_{px_per_square}_{margin_squares:g}.png"
    if not path.is_file():
        tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.png")   # atomic: parallel tests share the cache
        cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        tmp.replace(path)
    w, h = spec.size_m
    m = margin_squares * spec.square_length
    return path, (w / 2 + m, h / 2 + m)



def sim_pose_plan(mode: str, kin, q) -> PosePlan:
    """The calibration pose plan of the MuJoCo scene (posevla_core.sim.mujoco.scene): the board
    mount and the camera guess come from the scene's nominal layout (the camera's pose
    per episode is jittered, so the plan knows it only roughly, as on a real robot).
    ``kin`` is the Panda's RobotKinematics; its ee_link is the gripper frame."""
    T_ee_hand = se3.inv_T(kin.fk(q)) @ kin.fk_link(q, "panda_hand")
    if mode == "eye-to-hand":
        pos, _ = scene.BOARD_ON_HAND     # plate frame = hand axes: its printed face looks along hand +z
        return eye_to_hand_plan(nominal_camera_pose(), T_ee_hand @ se3.make_T(pos, [0, 0, 0, 1]))
    pos, (w, x, y, z) = scene.WRIST_CAMERA
    T_hand_cam = se3.make_T(pos, [x, y, z, w])
    T_hand_cam[:3, :3] = T_hand_cam[:3, :3] @ OPTICAL_FROM_MJCAM
    return eye_in_hand_plan(scene.BOARD_ON_TABLE[0], T_ee_hand @ T_hand_cam)
