"""Recorder: frame assembly and episode control (plain Python), the node over real DDS with
the project's LeRobotWriter, MCAP output, and crash safety under SIGKILL (real subprocess)."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from posevla_core.geometry import se3
from posevla_ros import params as P
from posevla_ros.ros_io.mcap import _msgdef
from posevla_ros.nodes.recorder_node import RECORDER_PARAMS
from posevla_ros.logic.recording import EpisodeRecorder, Observation, SerialWorker
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION

REPO = Path(__file__).resolve().parent.parent


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


def fk(q):
    """A planar toy arm: ee x = sum(q), enough to check the frame bookkeeping."""
    return se3.make_T([float(np.sum(q)), 0.0, 0.5], [0, 0, 0, 1])


def obs(t, q0=0.0, g=1.0, T_cam=None):
    T_cam = se3.make_T([1.0, 0.0, 1.0], [0, 0, 0, 1]) if T_cam is None else T_cam
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    return Observation(t, np.full((48, 64, 3), int(t * 10) % 255, np.uint8), np.full((48, 64), 0.8, np.float32),
                       K, np.full(7, q0), g, T_cam)


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
    import threading

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

    from posevla_ros.ros_io.mcap import McapEpisodeWriter
    from posevla_ros.msg import PosePrediction, PoseWaypoint
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
    from posevla_ros.nodes.evaluator_node import EVALUATOR_PARAMS
    from posevla_ros.nodes.teleop_node import TELEOP_PARAMS

    assert set(P.load_params_file(REPO / "config" / "evaluator.yaml", "evaluator_node")) <= \
        {s.name for s in EVALUATOR_PARAMS}
    teleop = P.load_params_file(REPO / "config" / "teleop.yaml", "teleop_node")
    assert set(teleop) <= {s.name for s in TELEOP_PARAMS}
    assert P.typed_overrides(TELEOP_PARAMS, teleop, strict=True)["joy.axes"] == [0, 1, 2, 3, 4, 5]


# ------------------------------------------------------------ with ROS and the real writer
class FakeCamera:
    """Publishes synthetic RGB-D + CameraInfo + joint states + camera pose with shared stamps."""

    def __init__(self, node, stamp_fn):
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from rclpy.qos import qos_profile_sensor_data

        self.node, self.k = node, 0
        self.pub_rgb = node.create_publisher(Image, "/camera/color/image_raw", qos_profile_sensor_data)
        self.pub_d = node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", qos_profile_sensor_data)
        self.pub_i = node.create_publisher(CameraInfo, "/camera/color/camera_info", qos_profile_sensor_data)
        self.pub_j = node.create_publisher(JointState, "/joint_states", 50)
        self.pub_c = node.create_publisher(PoseStamped, "/sim/camera_pose", 10)
        from posevla_ros.msg import PosePrediction

        self.pub_p = node.create_publisher(PosePrediction, "/posevla/prediction", 10)   # a policy's answer
        self.JointState, self.PoseStamped, self.PosePrediction = JointState, PoseStamped, PosePrediction

    def publish(self, t: float):
        from posevla_ros.ros_io import conversions as conv

        st = conv.sec_to_stamp(t)
        self.k += 1
        rgb = np.zeros((48, 64, 3), np.uint8)
        rgb[..., 0] = self.k % 255
        depth = np.full((48, 64), 0.7, np.float32)
        K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
        js = self.JointState(name=P.PANDA_ARM_JOINTS + P.PANDA_FINGER_JOINTS,
                             position=[0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785 + 0.001 * self.k, 0.04, 0.04])
        js.header.stamp = st
        self.pub_j.publish(js)
        cam = self.PoseStamped()
        cam.header.stamp, cam.header.frame_id = st, "base_link"
        cam.pose.position.x, cam.pose.position.z, cam.pose.orientation.x = 1.2, 0.8, 1.0
        self.pub_c.publish(cam)
        self.pub_i.publish(conv.K_to_camera_info(K, 64, 48, st, "camera_color_optical_frame"))
        self.pub_d.publish(conv.depth_to_image(depth, st, "camera_color_optical_frame"))
        self.pub_rgb.publish(conv.rgb_to_image(rgb, st, "camera_color_optical_frame"))
        pred = self.PosePrediction(object_found=False, category="cylinder", box=[0.1, 0.2, 0.3, 0.4])
        pred.header.stamp, pred.object_size.z = st, 0.12
        self.pub_p.publish(pred)


def _read_dataset(root: Path):
    from posevla_core.data import LeRobotReader  # the training engineer's reader

    return LeRobotReader(root)


def _panda_fk():
    from posevla_ros.logic.planning import load_kinematics

    return load_kinematics(dict(P.defaults(P.EXECUTOR_PARAMS), **P.robot_executor_params("sim_panda"))).fk


def test_recorder_node_over_dds(ros_context, tmp_path, spin_until):
    """Real DDS: synced topics in, Trigger services, status topic, MCAP out, with the project's
    LeRobotWriter and the Panda kinematics."""
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from posevla_ros.nodes.recorder_node import RecorderNode

    root = tmp_path / "ds"
    rec = RecorderNode(context=ros_context, fk=_panda_fk(), parameter_overrides=[
        Parameter("root", value=str(root)), Parameter("fps", value=10.0), Parameter("mcap", value=True),
        Parameter("status_period_s", value=0.2)])
    src = Node("fake_camera", context=ros_context)
    cam = FakeCamera(src, None)
    pub_instr = src.create_publisher(String, TOPIC_INSTRUCTION, INSTRUCTION_QOS)
    statuses = []
    src.create_subscription(String, "/recorder/status", lambda m: statuses.append(json.loads(m.data)), 10)
    clients = {k: src.create_client(Trigger, f"/recorder/{k}") for k in ("start", "stop", "discard")}
    ex = MultiThreadedExecutor(num_threads=4, context=ros_context)
    ex.add_node(rec)
    ex.add_node(src)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()

    def wait(pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not pred():
            time.sleep(0.02)
        return pred()

    def call(name):
        done = threading.Event()
        fut = clients[name].call_async(Trigger.Request())
        fut.add_done_callback(lambda _f: done.set())
        assert done.wait(60.0)
        return fut.result()

    t = [100.0]

    def feed(n):
        for _ in range(n):
            t[0] += 0.05
            cam.publish(t[0])
            time.sleep(0.02)

    def settled():
        return wait(lambda: rec.worker._posted == 0, 30) and time.sleep(0.3) is None and \
            wait(lambda: rec.worker._posted == 0, 30)

    try:
        assert wait(lambda: all(c.service_is_ready() for c in clients.values()), 20.0)
        pub_instr.publish(String(data="pick up the red cube"))
        assert wait(lambda: statuses and statuses[-1]["last_instruction"] == "pick up the red cube", 20)
        assert call("start").success
        assert not call("start").success                      # already recording
        feed(40)                                              # 2 s of stamps at 20 Hz -> ~20 frames at 10 fps
        assert settled()
        r = call("stop")
        assert r.success and "saved episode 0" in r.message, r.message
        assert call("start").success
        feed(10)
        assert call("discard").success
        assert not call("stop").success                       # nothing to stop
        pub_instr.publish(String(data="put the cube in the bin"))
        assert wait(lambda: statuses and statuses[-1]["last_instruction"].startswith("put"), 20)
        assert call("start").success
        feed(20)
        assert settled()
        assert "saved episode 1" in call("stop").message
        assert wait(lambda: statuses and statuses[-1]["episodes_saved"] == 2, 20)
    finally:
        ex.shutdown()
        spinner.join(10)
        rec.destroy_node()
        src.destroy_node()
    ds = _read_dataset(root)
    lengths = [ds.episode_length(i) for i in range(ds.num_episodes)]
    assert [ds.episode_task(i) for i in range(ds.num_episodes)] == ["pick up the red cube", "put the cube in the bin"]
    ep = ds.read_episode(0)
    assert ep["observation.camera_to_base"][3][:3] == pytest.approx([1.2, 0.0, 0.8])
    assert np.ravel(ep["observation.gripper"])[3] == pytest.approx(1.0)
    assert ep["observation.images.color"].shape[1:] == (48, 64, 3)
    assert len(lengths) == 2
    assert 15 <= lengths[0] <= 21 and 7 <= lengths[1] <= 11, lengths
    # MCAP: one file per kept episode, discarded episode removed, readable with the mcap reader
    from mcap.reader import make_reader

    files = sorted((root / "mcap").glob("*.mcap"))
    assert len(files) == 2
    with open(files[0], "rb") as f:
        topics = {ch.topic for _, ch, _ in make_reader(f).iter_messages()}
    assert {"/camera/color/image_raw", "/joint_states"} <= topics
    # ... and every message decodes with the ROS 2 decoder from the schemas we wrote
    from mcap_ros2.decoder import DecoderFactory

    with open(files[0], "rb") as f:
        decoded = list(make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages())
    assert len(decoded) > 20
    by_topic = {ch.topic: m for _, ch, _, m in decoded}
    img = by_topic["/camera/color/image_raw"]
    assert (img.width, img.height, img.encoding) == (64, 48, "rgb8") and len(img.data) == 64 * 48 * 3
    js = by_topic["/joint_states"]
    assert list(js.name) == P.PANDA_ARM_JOINTS + P.PANDA_FINGER_JOINTS and len(js.position) == 9
    assert by_topic["/camera/color/camera_info"].k[0] == pytest.approx(60.0)
    pred = by_topic["/posevla/prediction"]      # the new PosePrediction fields survive the MCAP
    assert not pred.object_found and pred.category == "cylinder" and pred.object_size.z == pytest.approx(0.12)
    assert list(pred.box) == pytest.approx([0.1, 0.2, 0.3, 0.4])


RECORDER_SCRIPT = r"""
import sys, time
import numpy as np
from posevla_ros.logic.recording import EpisodeRecorder, Observation, make_writer
from posevla_core.geometry import se3
root, n_done = sys.argv[1], int(sys.argv[2])
fk = lambda q: se3.make_T([float(np.sum(q)), 0.0, 0.5], [0, 0, 0, 1])
w = make_writer(root, 10.0, "test/crash", True)
r = EpisodeRecorder(w, fk, 10.0)
K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
T = se3.make_T([1.0, 0.0, 1.0], [0, 0, 0, 1])
t = 0.0
for ep in range(n_done + 1):
    r.start(f"episode {ep}")
    for k in range(12 if ep < n_done else 10**9):
        t += 0.1
        r.add(Observation(t, np.full((48, 64, 3), k % 255, np.uint8), np.full((48, 64), 0.7, np.float32), K,
                          np.full(7, 0.01 * k), 1.0, T))
        if ep == n_done and k == 5:
            print("RECORDING", flush=True)
    if ep < n_done:
        r.stop()
        print(f"SAVED {ep}", flush=True)
"""


def test_sigkill_keeps_earlier_episodes(tmp_path):
    """A real recorder process is SIGKILLed in the middle of episode 2: episodes 0 and 1 are
    intact, episode 2 is cleanly absent (or complete), and the dataset accepts new episodes."""
    root = tmp_path / "ds"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", RECORDER_SCRIPT, str(root), "2"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("RECORDING"):
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    assert "SAVED 1\n" in lines
    ds = _read_dataset(root)
    assert ds.num_episodes in (2, 3)
    for ep in range(2):
        assert ds.episode_length(ep) == 12
    # the dataset keeps working after the crash
    from posevla_ros.logic.recording import make_writer

    w = make_writer(str(root), 10.0, "test/crash", True)
    r = EpisodeRecorder(w, fk, 10.0)
    r.start("after crash")
    for k in range(3):
        r.add(obs(0.1 * k + 0.05))
    r.stop()
    w.close()
    assert _read_dataset(root).num_episodes == ds.num_episodes + 1
