"""Small LeRobot v3.0 datasets for the data tests: demo ``frame``s (with ``K`` and the camera
pose ``T_BASE_CAM``), a two-episode dataset (``write``), one with the sim demos' object
annotations (``write_annotated``), and ``LEROBOT_PY``, the interpreter of the venv with the
real ``lerobot`` package.

Used by test/unit/posevla_core/data/test_lerobot_format.py and
test/integration/test_lerobot_load.py."""
from __future__ import annotations

from pathlib import Path
from test.helpers.paths import REPO

import numpy as np

from posevla_core.data import LeRobotWriter
from posevla_core.data.lerobot import demo_frame
from posevla_core.geometry import se3

LEROBOT_PY = REPO / ".venv-lerobot" / "bin" / "python"
T_BASE_CAM = se3.make_T([1.0, 0.0, 0.8], [0.0, 0.7071068, 0.0, 0.7071068])
K = np.array([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]])


def frame(k: int, task: str) -> dict:
    T_ee = se3.make_T([0.4 + 0.01 * k, 0.0, 0.3], [1.0, 0, 0, 0])
    f = demo_frame(np.full((24, 32, 3), k, np.uint8), np.full((24, 32), 0.5 + 0.001 * k, np.float32), K,
                   np.full(7, 0.1 * k), 1.0 if k < 5 else 0.55, T_ee, T_BASE_CAM, task)
    f["action"] = np.zeros(8, np.float32)
    return f


def write(root: Path, lengths=(8, 6), tasks=("pick up the red cube", "put it away")) -> LeRobotWriter:
    w = LeRobotWriter(root, 10, repo_id="test/demo")
    for n, task in zip(lengths, tasks):
        w.start_episode(task)
        for k in range(n):
            w.add_frame(frame(k, task))
        w.save_episode()
    return w


def write_annotated(root: Path) -> None:
    """Frames with the object annotations the sim demos carry (pipeline.generate_demos)."""
    w = LeRobotWriter(root, 10, repo_id="test/annotated", extra_info={"annotation_categories": ["red cube", "object"]})
    w.start_episode("pick up the red cube")
    for k in range(6):
        f = frame(k, "pick up the red cube")
        f["annotation.object_pose_camera"] = np.r_[0.01 * k, 0.0, 0.7, 0, 0, 0, 1].astype(np.float32)
        f["annotation.box_uv"] = np.array([0.5, 0.5], np.float32)
        f["annotation.box_xyxy"] = np.array([0.45, 0.4, 0.55, 0.6], np.float32)
        f["annotation.object_size"] = np.array([0.045, 0.045, 0.045], np.float32)
        f["annotation.category_index"] = np.array([0], np.int64)
        w.add_frame(f)
    w.save_episode()
    w.close()
