"""Recorder logic (plain Python): frame assembly, episode control, the serial worker, the MCAP
message definitions and the recorder's parameters. The node over DDS is in
test/ros/test_recorder_node.py; crash safety under SIGKILL in test/integration/test_recorder_sigkill.py."""
from __future__ import annotations

import math
import sys
import threading
from pathlib import Path
from test.helpers.paths import REPO
from test.helpers.recorder import fk, obs

import numpy as np
import pytest

from posevla_core.geometry import se3
from posevla_ros import params as P
from posevla_ros.logic.recording import EpisodeRecorder, SerialWorker
from posevla_ros.params import RECORDER_PARAMS
from posevla_ros.ros_io.mcap import _msgdef


class ListWriter:
    """Records the writer calls (the LeRobot format itself is tested with the real writer)."""

    def __init__(self):
        self.episodes, self.current, self.tasks, self.discards = [], None, [], 0

    def start_episode(self, task):
        self.current, _ = [], self.tasks.append(task)

    def add_frame(self, frame):
        self.current.append(frame)

    def save_episode(self):
        self.episodes.append(self.current)
        self.current = None
        return len(self.episodes) - 1

    def discard_episode(self):
        self.current, self.discards = None, self.discards + 1


def test_episode_frames_actions_and_features():
    w = ListWriter()
    r = EpisodeRecorder(w, fk, fps=10.0)
    assert not r.add(obs(0.0))                          # not recording
    with pytest.raises(ValueError):
        r.start("  ")
    r.start("pick up the red cube")
    with pytest.raises(RuntimeError):
        r.start("again")
    taken = [r.add(obs(0.01 * k, q0=0.01 * k, g=1.0 - 0.01 * k)) for k in range(0, 31)]  # 100 Hz input
    assert sum(taken) == 4 and r.skipped == 27           # 0.0, 0.1, 0.2, 0.3 s
    idx = r.stop()
    assert idx == 0 and len(w.episodes[0]) == 4 and w.tasks == ["pick up the red cube"]
    f0, f1, f3 = w.episodes[0][0], w.episodes[0][1], w.episodes[0][3]
    # action = next recorded frame's [q, gripper]; the last frame gets its own state
    np.testing.assert_allclose(f0["action"], np.r_[np.full(7, 0.1), 0.9], atol=1e-6)
    np.testing.assert_allclose(f3["action"], np.r_[np.full(7, 0.3), 0.7], atol=1e-6)
    np.testing.assert_allclose(f1["observation.state"], np.full(7, 0.1), atol=1e-6)
    assert f1["observation.gripper"].shape == (1,) and f1["observation.camera_intrinsics"].shape == (9,)
    # ee pose in base, and in the camera frame (camera at x=1, z=1, identity rotation)
    np.testing.assert_allclose(f1["observation.ee_pose_base"], [0.7, 0, 0.5, 0, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(f1["observation.ee_pose_camera"], [-0.3, 0, -0.5, 0, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(f1["observation.camera_to_base"], [1, 0, 1, 0, 0, 0, 1], atol=1e-6)
    assert f1["observation.images.color"].dtype == np.uint8 and f1["observation.depth"].dtype == np.float32
    assert f1["task"] == "pick up the red cube"
    assert "_self_action" not in f1
    assert r.status()["episodes_saved"] == 1 and r.status()["state"] == "idle"


def test_camera_frame_pose_with_rotated_camera():
    w = ListWriter()
    # camera looking down from 1 m: optical z = -base z
    T_cam = se3.make_T([0.5, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0])
    r = EpisodeRecorder(w, fk, fps=10.0)
    r.start("x")
    r.add(obs(0.0, q0=0.5 / 7, T_cam=T_cam))
    r.stop()
    f = w.episodes[0][0]
    T_cam_ee = se3.make_T(f["observation.ee_pose_camera"][:3], f["observation.ee_pose_camera"][3:])
    np.testing.assert_allclose(T_cam @ T_cam_ee, fk(np.full(7, 0.5 / 7)), atol=1e-5)
    np.testing.assert_allclose(f["observation.ee_pose_camera"][:3], [0.0, 0.0, 0.5], atol=1e-5)


def test_discard_reject_empty_and_autostop():
    w = ListWriter()
    r = EpisodeRecorder(w, fk, fps=5.0, max_episode_s=0.5)
    with pytest.raises(RuntimeError):
        r.stop()
    r.start("a")
    r.add(obs(0.0))
    r.discard()
    assert w.discards == 1 and not w.episodes
    r.start("b")
    bad = obs(0.0)
    bad.q[2] = math.nan
    assert not r.add(bad) and r.rejected["non-finite joint state"] == 1
    nodepth = obs(0.0)
    nodepth.depth = None
    assert not r.add(nodepth)
    with pytest.raises(RuntimeError, match="no frames"):
        r.stop()                                       # empty episode: discarded, not saved
    assert w.discards == 2 and not w.episodes and not r.recording
    r.start("c")
    for k in range(4):
        r.add(obs(0.2 * k))
        if r.should_autostop():
            break
    assert r.should_autostop() and r.elapsed() == pytest.approx(0.6)
    r.stop()
    assert len(w.episodes[0]) == 4


def test_serial_worker_order_errors_and_drops():

    out, gate = [], threading.Event()
    errs = []
    sw = SerialWorker(max_pending=3, on_error=errs.append)
    sw.post(lambda: gate.wait(5))
    posted = [sw.post(lambda i=i: out.append(i)) for i in range(5)]
    assert posted == [True, True, False, False, False] and sw.dropped == 3
    gate.set()
    assert sw.call(lambda: "x") == "x"
    assert out == [0, 1]
    with pytest.raises(ZeroDivisionError):
        sw.call(lambda: 1 / 0)
    sw.post(lambda: [][1])
    sw.call(lambda: None)
    assert isinstance(errs[0], IndexError)
    sw.stop()


def test_msgdef_is_complete():
    share = [Path(sys.prefix) / "share"]
    d = _msgdef("sensor_msgs/msg/Image", share)
    assert d.startswith("# This message contains") or "uint32 height" in d
    assert "MSG: std_msgs/msg/Header" in d and "MSG: builtin_interfaces/msg/Time" in d
    d2 = _msgdef("sensor_msgs/msg/JointState", share)
    assert d2.count("MSG: std_msgs/msg/Header") == 1


def test_mcap_carries_every_pose_prediction_field(tmp_path):
    """A PosePrediction written by the recorder's MCAP writer (schema from the installed .msg)
    decodes with the mcap ROS 2 decoder, object_found / box / object_size included."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.serialization import serialize_message

    from posevla_ros.msg import PosePrediction, PoseWaypoint
    from posevla_ros.ros_io.mcap import McapEpisodeWriter
    from posevla_ros.ros_io.topics import TOPIC_PREDICTION

    schema = _msgdef("posevla_ros/msg/PosePrediction", McapEpisodeWriter._share_dirs())
    assert "bool object_found" in schema and "float32[4] box" in schema
    assert "geometry_msgs/Vector3 object_size" in schema and "MSG: posevla_ros/msg/PoseWaypoint" in schema
    found = PosePrediction(instruction="pick up the mug", object_found=True, category="mug",
                           box=[0.1, 0.2, 0.3, 0.4], waypoints=[PoseWaypoint(gripper=1.0)])
    found.object_size.x, found.object_size.y, found.object_size.z = 0.08, 0.06, 0.1
    absent = PosePrediction(instruction="pick up the yellow cylinder", object_found=False, category="cylinder")
    writer = McapEpisodeWriter(tmp_path)
    path = writer.open(0)
    for i, m in enumerate([found, absent]):
        writer.write(TOPIC_PREDICTION, "posevla_ros/msg/PosePrediction", serialize_message(m), i + 1)
    writer.close()
    with open(path, "rb") as f:
        got = [m for _, _, _, m in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages()]
    assert [m.object_found for m in got] == [True, False] and [m.category for m in got] == ["mug", "cylinder"]
    assert list(got[0].box) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert (got[0].object_size.x, got[0].object_size.y, got[0].object_size.z) == pytest.approx((0.08, 0.06, 0.1))
    assert len(got[0].waypoints) == 1 and got[1].waypoints == []


def test_config_file_matches_params():
    names = {s.name for s in RECORDER_PARAMS}
    assert set(P.load_params_file(REPO / "config" / "recorder.yaml", "recorder_node")) <= names
    from posevla_ros.params import EVALUATOR_PARAMS, TELEOP_PARAMS

    assert set(P.load_params_file(REPO / "config" / "evaluator.yaml", "evaluator_node")) <= \
        {s.name for s in EVALUATOR_PARAMS}
    teleop = P.load_params_file(REPO / "config" / "teleop.yaml", "teleop_node")
    assert set(teleop) <= {s.name for s in TELEOP_PARAMS}
    assert P.typed_overrides(TELEOP_PARAMS, teleop, strict=True)["joy.axes"] == [0, 1, 2, 3, 4, 5]
