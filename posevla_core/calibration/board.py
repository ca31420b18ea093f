"""The ChArUco calibration board: its spec, and finding it in an image (OpenCV).

    board = CharucoBoardSpec()                          # squares, sizes (m), ArUco dictionary
    det = detect_board(rgb, K, dist, board)             # BoardDetection: T_cam_board + corners

OpenCV is imported on first use (``_cv2``), so that the rest of posevla_core and the ROS
nodes that only read a calibration result never load it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class CalibrationError(ValueError):
    """Bad calibration input (too few usable views, no board, degenerate motion): one
    message that says what to change."""


def _cv2():
    import cv2  # OpenCV: optional, only calibration needs it

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
