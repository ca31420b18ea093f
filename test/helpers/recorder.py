"""Recorder test inputs: a toy forward kinematics (``fk``: ee x = sum(q)) and a synthetic
``Observation`` at time ``t`` (``obs``).

Used by test/unit/posevla_ros/logic/test_recorder.py and
test/integration/test_recorder_sigkill.py."""
from __future__ import annotations

import numpy as np

from posevla_core.geometry import se3
from posevla_ros.logic.recording import Observation


def fk(q):
    """A planar toy arm: ee x = sum(q), enough to check the frame bookkeeping."""
    return se3.make_T([float(np.sum(q)), 0.0, 0.5], [0, 0, 0, 1])


def obs(t, q0=0.0, g=1.0, T_cam=None):
    T_cam = se3.make_T([1.0, 0.0, 1.0], [0, 0, 0, 1]) if T_cam is None else T_cam
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    return Observation(t, np.full((48, 64, 3), int(t * 10) % 255, np.uint8), np.full((48, 64), 0.8, np.float32),
                       K, np.full(7, q0), g, T_cam)
