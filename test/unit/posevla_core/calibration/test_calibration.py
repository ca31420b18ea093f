"""Hand-eye calibration (posevla_core.calibration.hand_eye): the solver on synthetic exact and noisy
views against the ground truth, bad input, and board detection on a warped print (the MuJoCo
sim end to end: test/integration/sim/test_calibration_sim.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.spatial.transform import Rotation
from test.helpers.calibration import BOARD, K, err_mm_deg

from posevla_core.calibration.board import BoardDetection, CalibrationError, CharucoBoardSpec, detect_board, project
from posevla_core.calibration.hand_eye import CalibrationView, solve_hand_eye
from posevla_core.calibration.pose_plan import aim_frame
from posevla_core.geometry import se3


def _rand_T(rng, t_scale=0.1) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.normal(0, t_scale, 3)
    return T


def _board_corners() -> np.ndarray:
    return np.asarray(BOARD.board().getChessboardCorners(), float).reshape(-1, 3)


def synthetic_views(mode: str, n: int, seed: int, px_noise: float = 0.0):
    """Exact (or pixel-noisy) views: board poses in the camera chosen in view (0.45..0.7 m,
    facing the camera within 30 deg), robot poses derived from the ground truth."""
    rng = np.random.default_rng(seed)
    X = _rand_T(rng, 0.5)                       # camera in base (eye-to-hand) / in gripper (eye-in-hand)
    Tb = _rand_T(rng, 0.1)                      # board in gripper / in base
    obj = _board_corners()
    center = BOARD.board_to_image_center()
    views = []
    for _ in range(n):
        p = np.array([rng.uniform(-0.08, 0.08), rng.uniform(-0.06, 0.06), rng.uniform(0.45, 0.7)])
        # board centre frame: +z away from the camera (OpenCV board z points into the board)
        F = aim_frame(p, p * 2.0, tilt_deg=rng.uniform(5, 30), tilt_dir_rad=rng.uniform(0, 6.3),
                      roll_rad=rng.uniform(-0.6, 0.6), up=(0.0, -1.0, 0.0))   # camera y is down
        C = F @ se3.inv_T(center)              # T_cam_board
        G = X @ C @ se3.inv_T(Tb) if mode == "eye-to-hand" else Tb @ se3.inv_T(C) @ se3.inv_T(X)
        img = project(C, obj, K, None) + rng.normal(0, px_noise, (len(obj), 2))
        det = BoardDetection(C.copy(), obj, img, K, np.zeros(5), 0.0)
        if px_noise > 0:   # the PnP pose of the noisy corners, as a real detection would give
            ok, rvec, tvec = cv2.solvePnP(obj, img, K, np.zeros(5), flags=cv2.SOLVEPNP_IPPE)
            det.T_cam_board = np.eye(4)
            det.T_cam_board[:3, :3], det.T_cam_board[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
        views.append(CalibrationView(T_base_gripper=G, detection=det))
    return X, Tb, views


@pytest.mark.parametrize("mode", ["eye-to-hand", "eye-in-hand"])
def test_exact_views_recover_ground_truth(mode):
    X, Tb, views = synthetic_views(mode, 8, seed=1)
    res = solve_hand_eye(views, mode)
    mm, deg = err_mm_deg(res.T, X)
    assert mm < 1e-3 and deg < 1e-4
    mm, deg = err_mm_deg(res.T_board, Tb)
    assert mm < 1e-3 and deg < 1e-4
    assert res.rejected == {} and len(res.used) == 8
    assert np.max(res.axxb_rot_deg) < 1e-4 and np.max(res.axxb_trans_mm) < 1e-3
    assert set(res.method_scores) == {"TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS"}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(4, 12),
       mode=st.sampled_from(["eye-to-hand", "eye-in-hand"]))
def test_exact_views_property(seed, n, mode):
    X, _, views = synthetic_views(mode, n, seed=seed)
    mm, deg = err_mm_deg(solve_hand_eye(views, mode, refine=False).T, X)
    assert mm < 0.01 and deg < 1e-3


@pytest.mark.parametrize("mode", ["eye-to-hand", "eye-in-hand"])
def test_noisy_views_within_tolerance_and_outlier_rejected(mode):
    X, _, views = synthetic_views(mode, 15, seed=3, px_noise=0.3)
    # one view with a wrong robot pose (joint states from another instant)
    views[4].T_base_gripper = views[4].T_base_gripper @ se3.make_T([0.03, 0, 0], Rotation.from_euler("z", 8, degrees=True).as_quat())
    res = solve_hand_eye(views, mode)
    mm, deg = err_mm_deg(res.T, X)
    assert mm < 5.0 and deg < 0.5, res.report()
    assert 4 in res.rejected and "outlier" in res.rejected[4]
    assert len(res.used) == 14
    text = res.report()
    assert "AX=XB" in text and "rejected" in text


def test_too_few_views_is_one_clear_error():
    _, _, views = synthetic_views("eye-to-hand", 5, seed=2)
    for v in views[2:]:
        v.detection, v.rejected = None, "board not detected: 0 ChArUco corners (0 markers), need 6"
    with pytest.raises(CalibrationError, match=r"at least 3 views .* got 2 of 5 .*board not detected"):
        solve_hand_eye(views, "eye-to-hand")


def test_degenerate_motion_is_refused():
    X, Tb, views = synthetic_views("eye-to-hand", 4, seed=5)
    for v in views:   # pure translations: no rotation between the views
        v.T_base_gripper[:3, :3] = views[0].T_base_gripper[:3, :3]
    with pytest.raises(CalibrationError, match="rotat"):
        solve_hand_eye(views, "eye-to-hand")


def test_bad_mode_and_board_spec():
    with pytest.raises(CalibrationError, match="mode"):
        solve_hand_eye([], "eye-on-base")
    with pytest.raises(CalibrationError, match="marker_length"):
        CharucoBoardSpec(square_length=0.02, marker_length=0.03)
    with pytest.raises(CalibrationError, match="dictionary"):
        CharucoBoardSpec(dictionary="DICT_NOPE")


def test_detect_board_on_a_warped_print_and_not_on_blank():
    """The generated board image, warped into a camera view with a known pose, gives back
    that pose; a blank image is one clear error."""
    img = BOARD.image(px_per_square=100, margin_squares=0.5)
    margin_m = 0.5 * BOARD.square_length
    px = BOARD.square_length / 100.0
    # board pose in the camera: 0.5 m away, tilted 20 deg
    C = se3.make_T([-0.05, -0.04, 0.5], Rotation.from_euler("xy", [20, -10], degrees=True).as_quat())
    # homography from print pixels to camera pixels (board z = 0 plane; print origin at -margin)
    H = K @ np.column_stack([C[:3, 0] * px, C[:3, 1] * px, C[:3, :3] @ [-margin_m, -margin_m, 0] + C[:3, 3]])
    view = cv2.warpPerspective(img, H / H[2, 2], (640, 480), flags=cv2.INTER_AREA, borderValue=128)
    det = detect_board(np.repeat(view[..., None], 3, axis=2), K, None, BOARD)
    mm, deg = err_mm_deg(det.T_cam_board, C)
    assert det.n_corners == 16 and mm < 3.0 and deg < 0.5 and det.reprojection_px < 0.5
    with pytest.raises(CalibrationError, match="board not detected"):
        detect_board(np.full((480, 640, 3), 200, np.uint8), K, None, BOARD)
