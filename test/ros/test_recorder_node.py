"""The recorder node over DDS: camera and robot topics in, LeRobot episodes out, driven by its start/stop/discard services."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from test.helpers.waiting import poll

import numpy as np
import pytest

from posevla_ros import params
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION


# ------------------------------------------------------------ with ROS and the real writer
class FakeCamera:
    """Publishes synthetic RGB-D + CameraInfo + joint states + camera pose with shared stamps."""

    def __init__(self, node, stamp_fn):
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image, JointState

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
        js = self.JointState(name=params.PANDA_ARM_JOINTS + params.PANDA_FINGER_JOINTS,
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

    return load_kinematics(dict(params.defaults(params.EXECUTOR_PARAMS), **params.robot_executor_params("sim_panda"))).fk


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
        return poll(pred, timeout, 0.02)

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
    assert list(js.name) == params.PANDA_ARM_JOINTS + params.PANDA_FINGER_JOINTS and len(js.position) == 9
    assert by_topic["/camera/color/camera_info"].k[0] == pytest.approx(60.0)
    pred = by_topic["/posevla/prediction"]      # the new PosePrediction fields survive the MCAP
    assert not pred.object_found and pred.category == "cylinder" and pred.object_size.z == pytest.approx(0.12)
    assert list(pred.box) == pytest.approx([0.1, 0.2, 0.3, 0.4])
