"""Hand-eye calibration test constants and error measure: the default ChArUco ``BOARD``, a
640x480 camera matrix ``K``, and ``err_mm_deg`` (translation error in mm, rotation error in
degrees between two transforms).

Used by test/unit/posevla_core/calibration/test_calibration.py and
test/integration/sim/test_calibration_sim.py."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.calibration.board import CharucoBoardSpec

BOARD = CharucoBoardSpec()
K = np.array([[515.0, 0, 319.5], [0, 515.0, 239.5], [0, 0, 1.0]])


def err_mm_deg(T_est, T_true) -> tuple[float, float]:
    return (1000.0 * float(np.linalg.norm(T_est[:3, 3] - T_true[:3, 3])),
            float(np.degrees(Rotation.from_matrix(T_est[:3, :3].T @ T_true[:3, :3]).magnitude())))
