"""The real LeRobot library (its own venv, in a subprocess) loads the datasets we write."""
from __future__ import annotations

import json
import os
import subprocess
import pytest
from test.helpers.paths import REPO
from test.helpers.lerobot import LEROBOT_PY, write, write_annotated


@pytest.mark.skipif(not LEROBOT_PY.is_file(), reason=".venv-lerobot (real lerobot package) not built")
def test_real_lerobot_loads_it(tmp_path):
    root = tmp_path / "ds"
    write(root).close()
    r = subprocess.run([str(LEROBOT_PY), str(REPO / "scripts" / "check_lerobot_load.py"), str(root)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["episodes"] == 2 and out["frames"] == 14 and out["task0"] == "pick up the red cube"
    assert out["shapes"]["observation.images.color"] == [3, 24, 32]


@pytest.mark.skipif(not LEROBOT_PY.is_file(), reason=".venv-lerobot (real lerobot package) not built")
def test_real_lerobot_loads_annotations(tmp_path):
    root = tmp_path / "ds"
    write_annotated(root)
    r = subprocess.run([str(LEROBOT_PY), str(REPO / "scripts" / "check_lerobot_load.py"), str(root)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    shapes = json.loads(r.stdout.strip().splitlines()[-1])["shapes"]
    assert shapes["annotation.box_xyxy"] == [4] and shapes["annotation.object_size"] == [3]
    assert shapes["annotation.object_pose_camera"] == [7]
