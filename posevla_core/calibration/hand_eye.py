"""Hand-eye calibration with a ChArUco board (OpenCV), without ROS.

    board = CharucoBoardSpec()                          # squares, sizes (m), ArUco dictionary
    det = detect_board(rgb, K, dist, board)             # BoardDetection: T_cam_board + corners
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
from scipy.spatial.transform import Rotation

from posevla_core.geometry import se3

MODES = ("eye-to-hand", "eye-in-hand")
METHODS = ("TSAI", "PARK", "HORAUD", "ANDREFF", "DANIILIDIS")
MIN_VIEWS = 3


class CalibrationError(ValueError):
    """Bad calibration input (too few usable views, no board, degenerate motion): one
    message that says what to change."""


def _cv2():
    import cv2

    return cv2


@dataclass(frozen=True)
class CharucoBoardSpec:
    """A ChArUco board: ``squares_x`` x ``squares_y`` chessboard squares of
    ``square_length`` metres with ArUco markers of ``marker_length`` metres in the white
    squares. Measure a printed board: the sizes set the scale of every translation."""

    squares_x: int = 5
    squares_y: int = 5
    square_length: float = 0.04          # m
    marker_length: float = 0.03          # m
    dictionary: str = "DICT_5X5_100"     # cv2.aruco predefined dictionary name
    min_corners: int = 6                 # fewer detected chessboard corners = view rejected

    def __post_init__(self) -> None:
        if self.squares_x < 3 or self.squares_y < 3:
            raise CalibrationError(f"board needs at least 3x3 squares, got {self.squares_x}x{self.squares_y}")
        if not 0 < self.marker_length < self.square_length:
            raise CalibrationError(f"marker_length {self.marker_length} must lie in (0, square_length "
                                   f"{self.square_length})")
        if not hasattr(_cv2().aruco, self.dictionary):
            raise CalibrationError(f"unknown ArUco dictionary {self.dictionary!r} (e.g. DICT_5X5_100, DICT_4X4_50)")
        if self.min_corners < 4:
            raise CalibrationError(f"min_corners must be >= 4 (a pose needs 4 points), got {self.min_corners}")

    def board(self):
        cv2 = _cv2()
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_length,
                                      self.marker_length, d)

    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) of the chessboard area in metres (no margin)."""
        return self.squares_x * self.square_length, self.squares_y * self.square_length

    def image(self, px_per_square: int = 120, margin_squares: float = 0.5) -> np.ndarray:
        """Printable grayscale image of the board with a white margin of
        ``margin_squares`` squares on every side (cv2 ``generateImage``)."""
        m = int(round(margin_squares * px_per_square))
        size = (self.squares_x * px_per_square + 2 * m, self.squares_y * px_per_square + 2 * m)
        return self.board().generateImage(size, marginSize=m, borderBits=1)

    def board_to_image_center(self) -> np.ndarray:
        """4x4 pose of the board's centre frame (x along the image's columns, y along its
        rows, z into the board) in the OpenCV board frame, whose origin is the chessboard's
        top-left outer corner. Used to put a rendered board where it is wanted."""
        w, h = self.size_m
        T = np.eye(4)
        T[:3, 3] = [w / 2, h / 2, 0.0]
        return T


def board_texture(spec: CharucoBoardSpec, px_per_square: int = 160, margin_squares: float = 0.5):
    """Write the board image (RGB PNG, generated now) for the sim's textured plate.
    Returns (png path, (half width, half height) of the printed area in m, margin included)."""
    from posevla_core.sim.mujoco.assets import cache_dir

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


@dataclass
class BoardDetection:
    """One image's board pose and the corners it came from."""

    T_cam_board: np.ndarray          # 4x4: board frame in the camera optical frame
    object_points: np.ndarray        # (n, 3) board frame, m
    image_points: np.ndarray         # (n, 2) pixels
    K: np.ndarray                    # 3x3
    dist: np.ndarray                 # distortion coefficients (may be empty)
    reprojection_px: float           # RMS of the PnP fit

    @property
    def n_corners(self) -> int:
        return int(len(self.object_points))


def project(T_cam_board: np.ndarray, object_points: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Pixel coordinates (n, 2) of board points seen from ``T_cam_board``."""
    cv2 = _cv2()
    rvec, _ = cv2.Rodrigues(np.ascontiguousarray(T_cam_board[:3, :3]))
    pts, _ = cv2.projectPoints(np.asarray(object_points, np.float64).reshape(-1, 1, 3), rvec,
                               T_cam_board[:3, 3].astype(np.float64), np.asarray(K, np.float64),
                               _dist(dist))
    return pts.reshape(-1, 2)


def _dist(dist) -> np.ndarray:
    d = np.asarray(dist if dist is not None else [], np.float64).ravel()
    return d if d.size else np.zeros(5)


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((np.asarray(a) - np.asarray(b)) ** 2, axis=1))))


def detect_board(rgb: np.ndarray, K: np.ndarray, dist, spec: CharucoBoardSpec) -> BoardDetection:
    """Find the ChArUco corners in an RGB (or gray) image and fit the board pose with
    PnP (IPPE for planar targets, then Levenberg-Marquardt). Raises CalibrationError
    with the reason when the board is not usable in this image."""
    cv2 = _cv2()
    img = np.asarray(rgb)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    board = spec.board()
    corners, ids, _, marker_ids = cv2.aruco.CharucoDetector(board).detectBoard(gray)
    n_markers = 0 if marker_ids is None else len(marker_ids)
    n = 0 if ids is None else len(ids)
    if n < spec.min_corners:
        raise CalibrationError(f"board not detected: {n} ChArUco corners ({n_markers} markers), "
                               f"need {spec.min_corners}")
    if board.checkCharucoCornersCollinear(ids):
        raise CalibrationError(f"board corners collinear ({n} corners on one line): pose undefined")
    obj, imgp = board.matchImagePoints(corners, ids)
    obj, imgp = obj.reshape(-1, 3).astype(np.float64), imgp.reshape(-1, 2).astype(np.float64)
    K = np.asarray(K, np.float64)
    d = _dist(dist)
    ok, rvec, tvec = cv2.solvePnP(obj, imgp, K, d, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError(f"board pose not solvable from {n} corners")
    rvec, tvec = cv2.solvePnPRefineLM(obj, imgp, K, d, rvec, tvec)
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.ravel()
    if T[2, 3] <= 0:
        raise CalibrationError("board pose behind the camera")
    return BoardDetection(T, obj, imgp, K, d, _rms(project(T, obj, K, d), imgp))


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
    from scipy.optimize import least_squares

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


# ----------------------------------------------------------------------------- arm poses
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


def sim_pose_plan(mode: str, kin, q) -> PosePlan:
    """The calibration pose plan of the MuJoCo scene (posevla_core.sim.mujoco.scene): the board
    mount and the camera guess come from the scene's nominal layout (the camera's pose
    per episode is jittered, so the plan knows it only roughly, as on a real robot).
    ``kin`` is the Panda's RobotKinematics; its ee_link is the gripper frame."""
    from posevla_core.sim.mujoco import scene
    from posevla_core.sim.mujoco.env import OPTICAL_FROM_MJCAM, nominal_camera_pose

    T_ee_hand = se3.inv_T(kin.fk(q)) @ kin.fk_link(q, "panda_hand")
    if mode == "eye-to-hand":
        pos, _ = scene.BOARD_ON_HAND     # plate frame = hand axes: its printed face looks along hand +z
        return eye_to_hand_plan(nominal_camera_pose(), T_ee_hand @ se3.make_T(pos, [0, 0, 0, 1]))
    pos, (w, x, y, z) = scene.WRIST_CAMERA
    T_hand_cam = se3.make_T(pos, [x, y, z, w])
    T_hand_cam[:3, :3] = T_hand_cam[:3, :3] @ OPTICAL_FROM_MJCAM
    return eye_in_hand_plan(scene.BOARD_ON_TABLE[0], T_ee_hand @ T_hand_cam)
