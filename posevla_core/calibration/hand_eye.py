"""Hand-eye calibration with a ChArUco board (OpenCV), without ROS.

    det = detect_board(rgb, K, dist, CharucoBoardSpec())   # calibration.board
    views = [CalibrationView(T_base_gripper=kin.fk(q), detection=det), ...]
    result = solve_hand_eye(views, mode="eye-to-hand")  # HandEyeResult
    result.T                                             # camera OPTICAL frame in base (eye-to-hand)
                                                         # or in the gripper frame (eye-in-hand)
    print(result.report())

Two set-ups (the names the robotics literature uses):

- **eye-in-hand**: the camera rides on the wrist and the board lies fixed in the
  workspace. Unknown X = T_gripper_camera; constant T_base_board.
- **eye-to-hand**: the camera is fixed and the board rides on the gripper. Unknown
  X = T_base_camera; constant T_gripper_board.

``cv2.calibrateHandEye`` solves the eye-in-hand problem AX = XB from gripper->base and
target->camera pairs. Eye-to-hand is the same equation with the robot poses inverted
(the standard trick): feed base->gripper (= inv(T_base_gripper)) where it asks for
gripper->base, and what it returns as "camera->gripper" is camera->base.

The closed-form solvers (Tsai, Park, Horaud, Andreff, Daniilidis) are all tried; each
is scored by the *chain reprojection error*: the board corners pushed through
robot pose * X * constant board pose and projected with the camera intrinsics, against
the detected corners. The best one then seeds a joint least-squares refinement of X and
the constant board pose over that same pixel error (scipy), views whose chain error is
far above the rest are rejected once, and the report lists per-view reprojection errors,
the AX = XB consistency residual (degrees, millimetres) and the rejected views.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from posevla_core.calibration.board import BoardDetection, CalibrationError, _cv2, _rms, project
from posevla_core.geometry import se3

MODES = ("eye-to-hand", "eye-in-hand")
METHODS = ("TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS")
MIN_VIEWS = 3

@dataclass
class CalibrationView:
    """One arm pose: the gripper in base (FK of the measured joints) and what the camera saw."""

    T_base_gripper: np.ndarray
    detection: BoardDetection | None = None
    rejected: str = ""               # why this view is not used ("" = usable)
    joints: np.ndarray | None = None


@dataclass
class HandEyeResult:
    mode: str
    T: np.ndarray                    # eye-to-hand: T_base_camera; eye-in-hand: T_gripper_camera
    T_board: np.ndarray              # eye-to-hand: T_gripper_board; eye-in-hand: T_base_board
    method: str
    used: list[int]
    rejected: dict[int, str]
    per_view: list[dict]             # index, corners, pnp_px, chain_px, board_rot_deg, board_trans_mm
    axxb_rot_deg: np.ndarray         # AX = XB residual of consecutive used views
    axxb_trans_mm: np.ndarray
    method_scores: dict[str, float] = field(default_factory=dict)   # median chain px per solver

    @property
    def chain_px(self) -> np.ndarray:
        return np.array([v["chain_px"] for v in self.per_view])

    def summary(self) -> dict:
        """JSON-friendly numbers of the report."""
        pos, quat = se3.split_T(self.T)
        return {
            "mode": self.mode, "method": self.method, "translation": pos.tolist(),
            "rotation_xyzw": quat.tolist(), "views_used": len(self.used), "views_rejected": self.rejected,
            "chain_px_median": float(np.median(self.chain_px)), "chain_px_max": float(np.max(self.chain_px)),
            "axxb_rot_deg_median": float(np.median(self.axxb_rot_deg)) if len(self.axxb_rot_deg) else 0.0,
            "axxb_rot_deg_max": float(np.max(self.axxb_rot_deg)) if len(self.axxb_rot_deg) else 0.0,
            "axxb_trans_mm_median": float(np.median(self.axxb_trans_mm)) if len(self.axxb_trans_mm) else 0.0,
            "axxb_trans_mm_max": float(np.max(self.axxb_trans_mm)) if len(self.axxb_trans_mm) else 0.0,
            "method_scores_px": self.method_scores,
        }

    def report(self) -> str:
        """Human-readable residual report."""
        s = self.summary()
        lines = [f"hand-eye ({self.mode}): {s['views_used']} views used, {len(self.rejected)} rejected; "
                 f"solver {self.method}",
                 "  view  corners  pnp_px  chain_px  board_rot_deg  board_trans_mm"]
        for v in self.per_view:
            lines.append(f"  {v['index']:>4}  {v['corners']:>7}  {v['pnp_px']:6.2f}  {v['chain_px']:8.2f}"
                         f"  {v['board_rot_deg']:13.3f}  {v['board_trans_mm']:14.2f}")
        for i, why in sorted(self.rejected.items()):
            lines.append(f"  {i:>4}  rejected: {why}")
        lines.append(f"  AX=XB residual over {len(self.axxb_rot_deg)} motions: rotation median "
                     f"{s['axxb_rot_deg_median']:.3f} deg (max {s['axxb_rot_deg_max']:.3f}), translation median "
                     f"{s['axxb_trans_mm_median']:.2f} mm (max {s['axxb_trans_mm_max']:.2f})")
        lines.append("  closed-form solvers, median chain reprojection px: " +
                     ", ".join(f"{k} {v:.2f}" for k, v in self.method_scores.items()))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- solver
def _board_constant(mode: str, X: np.ndarray, G: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The transform that must be the same in every view, from one view:
    eye-in-hand T_base_board = G X C; eye-to-hand T_gripper_board = inv(G) X C."""
    return G @ X @ C if mode == "eye-in-hand" else se3.inv_T(G) @ X @ C


def _predict_cam_board(mode: str, X: np.ndarray, Tb: np.ndarray, G: np.ndarray) -> np.ndarray:
    """The board pose in the camera that X and the constant board pose predict for robot pose G."""
    if mode == "eye-in-hand":
        return se3.inv_T(X) @ se3.inv_T(G) @ Tb
    return se3.inv_T(X) @ G @ Tb


def _mean_T(Ts: list[np.ndarray]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_matrix(np.stack([t[:3, :3] for t in Ts])).mean().as_matrix()
    T[:3, 3] = np.mean([t[:3, 3] for t in Ts], axis=0)
    return T


def _rot_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.degrees(se3.rotation_angle(Ra, Rb)))


def _closed_form(mode: str, G: list[np.ndarray], C: list[np.ndarray], method: str) -> np.ndarray:
    cv2 = _cv2()
    # eye-to-hand: hand cv2 the inverse robot poses (base in gripper); see module docstring
    Gin = G if mode == "eye-in-hand" else [se3.inv_T(g) for g in G]
    R, t = cv2.calibrateHandEye([g[:3, :3] for g in Gin], [g[:3, 3].reshape(3, 1) for g in Gin],
                                [c[:3, :3] for c in C], [c[:3, 3].reshape(3, 1) for c in C],
                                method=getattr(cv2, f"CALIB_HAND_EYE_{method}"))
    X = np.eye(4)
    X[:3, :3] = R
    X[:3, 3] = np.asarray(t).ravel()
    return X


def _chain_errors(mode: str, X: np.ndarray, Tb: np.ndarray, G: list, dets: list[BoardDetection]) -> np.ndarray:
    return np.array([_rms(project(_predict_cam_board(mode, X, Tb, g), d.object_points, d.K, d.dist),
                          d.image_points) for g, d in zip(G, dets)])


def _refine(mode: str, X0: np.ndarray, Tb0: np.ndarray, G: list, dets: list[BoardDetection]):
    """Joint Levenberg-Marquardt refinement of X and the constant board pose over the
    chain reprojection error of every corner of every view (scipy least_squares)."""

    def unpack(p):
        X, Tb = np.eye(4), np.eye(4)
        X[:3, :3], X[:3, 3] = Rotation.from_rotvec(p[:3]).as_matrix(), p[3:6]
        Tb[:3, :3], Tb[:3, 3] = Rotation.from_rotvec(p[6:9]).as_matrix(), p[9:12]
        return X, Tb

    def residuals(p):
        X, Tb = unpack(p)
        return np.concatenate([(project(_predict_cam_board(mode, X, Tb, g), d.object_points, d.K, d.dist)
                                - d.image_points).ravel() for g, d in zip(G, dets)])

    p0 = np.concatenate([Rotation.from_matrix(X0[:3, :3]).as_rotvec(), X0[:3, 3],
                         Rotation.from_matrix(Tb0[:3, :3]).as_rotvec(), Tb0[:3, 3]])
    sol = least_squares(residuals, p0, method="lm", x_scale="jac")
    return unpack(sol.x)


def _axxb(mode: str, X: np.ndarray, G: list, C: list) -> tuple[np.ndarray, np.ndarray]:
    """Residual of A X = X B over consecutive view pairs (i, j): rotation (deg) and
    translation (mm) between A X and X B. Eye-in-hand: A = inv(G_j) G_i; eye-to-hand:
    A = G_j inv(G_i); both: B = C_j inv(C_i)."""
    rot, trans = [], []
    for i in range(len(G) - 1):
        j = i + 1
        A = se3.inv_T(G[j]) @ G[i] if mode == "eye-in-hand" else G[j] @ se3.inv_T(G[i])
        B = C[j] @ se3.inv_T(C[i])
        L, R = A @ X, X @ B
        rot.append(_rot_deg(L[:3, :3], R[:3, :3]))
        trans.append(1000.0 * float(np.linalg.norm(L[:3, 3] - R[:3, 3])))
    return np.array(rot), np.array(trans)


def _check_motion(G: list[np.ndarray], min_deg: float = 5.0) -> None:
    """AX = XB needs rotations about at least two different axes."""
    rots = Rotation.from_matrix(np.stack([g[:3, :3] for g in G]))
    rel = rots[1:] * rots[0].inv()
    ang = np.degrees(rel.magnitude())
    if ang.max() < min_deg:
        raise CalibrationError(f"the arm poses differ by at most {ang.max():.1f} deg of rotation; hand-eye needs "
                               f"views rotated about at least two axes (>= {min_deg:.0f} deg apart)")
    axes = rel.as_rotvec()[ang >= min_deg]
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    if len(axes) < 2 or np.max(np.linalg.norm(np.cross(axes[0], axes), axis=1)) < np.sin(np.radians(min_deg)):
        raise CalibrationError("all arm motions rotate about one axis; hand-eye needs rotations about at least "
                               "two different axes")


def solve_hand_eye(views: list[CalibrationView], mode: str, methods=METHODS, refine: bool = True,
                   reject_factor: float = 4.0, reject_floor_px: float = 2.0) -> HandEyeResult:
    """Solve the hand-eye transform from views (see module docstring for the two modes).

    Views already marked ``rejected`` (or without a detection) are left out and listed.
    After the first solve, views whose chain reprojection error exceeds
    ``max(reject_factor * median, reject_floor_px)`` are rejected once and the solve is
    repeated. Raises CalibrationError when fewer than 3 usable views remain or the arm
    motion is degenerate."""
    if mode not in MODES:
        raise CalibrationError(f"mode must be one of {MODES}, got {mode!r}")
    rejected = {i: (v.rejected or "board not detected") for i, v in enumerate(views)
                if v.rejected or v.detection is None}
    used = [i for i in range(len(views)) if i not in rejected]
    for attempt in range(2):
        if len(used) < MIN_VIEWS:
            why = "; ".join(f"view {i}: {r}" for i, r in sorted(rejected.items())[:6])
            raise CalibrationError(f"hand-eye needs at least {MIN_VIEWS} views with the board detected; got "
                                   f"{len(used)} of {len(views)}" + (f" ({why})" if why else ""))
        G = [np.asarray(views[i].T_base_gripper, float) for i in used]
        dets = [views[i].detection for i in used]
        C = [d.T_cam_board for d in dets]
        _check_motion(G)
        best, scores = None, {}
        for m in methods:
            X = _closed_form(mode, G, C, m)
            if not np.all(np.isfinite(X)):
                continue
            Tb = _mean_T([_board_constant(mode, X, g, c) for g, c in zip(G, C)])
            err = _chain_errors(mode, X, Tb, G, dets)
            scores[m] = float(np.median(err))
            if best is None or scores[m] < best[0]:
                best = (scores[m], m, X, Tb)
        if best is None:
            raise CalibrationError("every hand-eye solver failed (non-finite result): check the views")
        _, method, X, Tb = best
        if refine:
            X, Tb = _refine(mode, X, Tb, G, dets)
            method += "+LM"
        err = _chain_errors(mode, X, Tb, G, dets)
        limit = max(reject_factor * float(np.median(err)), reject_floor_px)
        bad = [i for i, e in zip(used, err) if e > limit]
        if attempt == 0 and bad and len(used) - len(bad) >= MIN_VIEWS:
            for i, e in zip(used, err):
                if e > limit:
                    rejected[i] = f"outlier: chain reprojection {e:.1f} px > {limit:.1f} px"
            used = [i for i in used if i not in rejected]
            continue
        break
    per_view = []
    for i, g, d, e in zip(used, G, dets, err):
        Tbi = _board_constant(mode, X, g, d.T_cam_board)
        per_view.append({"index": i, "corners": d.n_corners, "pnp_px": d.reprojection_px, "chain_px": float(e),
                         "board_rot_deg": _rot_deg(Tb[:3, :3], Tbi[:3, :3]),
                         "board_trans_mm": 1000.0 * float(np.linalg.norm(Tb[:3, 3] - Tbi[:3, 3]))})
    rot, trans = _axxb(mode, X, G, C)
    return HandEyeResult(mode, X, Tb, method, used, rejected, per_view, rot, trans, scores)
