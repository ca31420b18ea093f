"""LeRobot v3.0 writer/reader: layout, append after reopen, crash leftovers, errors that name
the file, the embodiment conversion and the annotations (loading with the real ``lerobot``
package: test/integration/test_lerobot_load.py)."""
from __future__ import annotations

import json
from test.helpers.lerobot import K, T_BASE_CAM, frame, write, write_annotated

import numpy as np
import pytest

from posevla_core.config import TokenizerConfig
from posevla_core.data import DataFormatError, LeRobotReader, LeRobotWriter, load_samples
from posevla_core.geometry import se3


def test_layout_and_round_trip(tmp_path):
    root = tmp_path / "ds"
    write(root).close()
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 2 and info["total_frames"] == 14
    assert info["features"]["observation.images.color"]["dtype"] == "image"
    assert info["features"]["observation.state"] == {"dtype": "float32", "shape": [7], "names": None}
    assert (root / "data" / "chunk-000" / "file-001.parquet").is_file()
    assert (root / "meta" / "episodes" / "chunk-000" / "file-001.parquet").is_file()
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert stats["observation.state"]["count"] == [14]
    r = LeRobotReader(root)
    assert r.num_episodes == 2 and [r.episode_length(i) for i in range(2)] == [8, 6]
    assert r.episode_task(1) == "put it away"
    ep = r.read_episode(1)
    assert ep["observation.images.color"].shape == (6, 24, 32, 3) and ep["observation.images.color"][3, 0, 0, 0] == 3
    np.testing.assert_allclose(ep["observation.depth"][2], 0.502, atol=1e-3)
    np.testing.assert_array_equal(ep["index"], np.arange(8, 14))           # global index continues
    np.testing.assert_allclose(ep["timestamp"], np.arange(6) / 10, atol=1e-6)


def test_reopen_appends_and_discard_leaves_nothing(tmp_path):
    root = tmp_path / "ds"
    write(root).close()
    w = LeRobotWriter(root, 10)
    w.start_episode("pick up the red cube")
    w.add_frame(frame(0, "x"))
    w.discard_episode()
    w.start_episode("new task")
    for k in range(3):
        w.add_frame(frame(k, "x"))
    assert w.save_episode() == 2
    w.close()
    r = LeRobotReader(root)
    assert r.num_episodes == 3 and r.episode_length(2) == 3 and r.tasks == {0: "pick up the red cube",
                                                                          1: "put it away", 2: "new task"}
    with pytest.raises(ValueError, match="fps"):
        LeRobotWriter(root, 30)


def test_crash_leftovers_are_cleaned(tmp_path):
    """A data file without episode metadata (killed between the two renames) is invisible to
    readers and removed by the next writer; info.json is rewritten from committed episodes."""
    root = tmp_path / "ds"
    write(root).close()
    orphan = root / "data" / "chunk-000" / "file-002.parquet"
    orphan.write_bytes((root / "data" / "chunk-000" / "file-001.parquet").read_bytes())
    (root / ".staging").mkdir()
    (root / ".staging" / "data-2.parquet").write_bytes(b"partial")
    assert LeRobotReader(root).num_episodes == 2
    LeRobotWriter(root, 10).close()
    assert not orphan.exists() and not (root / ".staging").exists()
    assert json.loads((root / "meta" / "info.json").read_text())["total_episodes"] == 2


def test_bad_frames_and_files(tmp_path):
    root = tmp_path / "ds"
    w = write(root, lengths=(3,), tasks=("a",))
    w.start_episode("b")
    bad = frame(0, "b")
    bad["observation.state"] = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="observation.state"):
        w.add_frame(bad)
    w.close()
    data = root / "data" / "chunk-000" / "file-000.parquet"
    data.write_bytes(b"PAR1 not really")
    with pytest.raises(DataFormatError, match="file-000.parquet"):
        LeRobotReader(root).read_episode(0)
    data.unlink()
    with pytest.raises(DataFormatError, match="file-000.parquet.*missing"):
        LeRobotReader(root).read_episode(0)
    (root / "meta" / "info.json").unlink()
    with pytest.raises(DataFormatError, match="info.json"):
        LeRobotReader(root)


def test_embodiment_samples(tmp_path):
    root = tmp_path / "ds"
    write(root, lengths=(10,), tasks=("pick up the red cube",)).close()
    tok = TokenizerConfig(num_waypoints=2, waypoint_dt=0.2)
    samples = load_samples(root, "embodiment", tok, progress=False)
    assert len(samples) == 10 and not samples[0].supervise_grounding       # no annotation.* columns
    s = samples[0]
    np.testing.assert_allclose(s.K, K)
    # waypoint 1 of frame 0 is frame 2 (t = 0.2 s at 10 fps), in the camera frame
    T_ee2 = se3.make_T([0.42, 0.0, 0.3], [1.0, 0, 0, 0])
    np.testing.assert_allclose(s.target.waypoints[0].pose.matrix(), se3.inv_T(T_BASE_CAM) @ T_ee2, atol=1e-5)
    # gripper: open (1.0) before frame 5, 0.55 (< open_threshold 0.8) from frame 5 on
    assert [w.gripper for w in samples[2].target.waypoints] == [1.0, 0.0]      # frames 4, 6
    assert [w.gripper for w in samples[3].target.waypoints] == [0.0, 0.0]      # frames 5, 7


def test_annotations_are_declared_and_supervise_grounding(tmp_path):
    root = tmp_path / "ds"
    write_annotated(root)
    feats = json.loads((root / "meta" / "info.json").read_text())["features"]
    assert feats["annotation.box_xyxy"] == {"dtype": "float32", "shape": [4], "names": None}
    assert feats["annotation.object_size"] == {"dtype": "float32", "shape": [3], "names": None}
    assert feats["annotation.category_index"] == {"dtype": "int64", "shape": [1], "names": None}
    stats = json.loads((root / "meta" / "stats.json").read_text())
    assert np.allclose(stats["annotation.object_size"]["mean"], 0.045)
    tok = TokenizerConfig(categories=["red cube", "object"], num_waypoints=2, waypoint_dt=0.2)
    s = load_samples(root, "embodiment", tok, progress=False)[0]
    assert s.supervise_grounding and s.target.category == "red cube"
    np.testing.assert_allclose(s.target.box_xyxy, [0.45, 0.4, 0.55, 0.6], atol=1e-6)
    np.testing.assert_allclose(s.target.size, 0.045, atol=1e-6)
