"""The generated messages import, round-trip core types, and cross a real DDS topic
between two processes."""
import subprocess
import sys
import textwrap

import numpy as np

from posevla_core.types import Pose, Prediction, Waypoint
from posevla_ros import conversions as conv

PUBLISHER = textwrap.dedent("""
    import time, rclpy
    from rclpy.qos import QoSProfile
    from posevla_ros.msg import PosePrediction, PoseWaypoint
    rclpy.init()
    node = rclpy.create_node("msg_test_publisher")
    pub = node.create_publisher(PosePrediction, "/posevla/test_prediction", QoSProfile(depth=10))
    msg = PosePrediction(instruction="pick up the red cube", category="cube", box_u=0.25, box_v=0.75,
                         waypoint_dt=0.5, token_ids=[1, 2, 3], inference_ms=12.5)
    msg.header.frame_id = "camera_color_optical_frame"
    msg.header.stamp.sec, msg.header.stamp.nanosec = 42, 7
    for i in range(3):
        w = PoseWaypoint(gripper=0.5 * i)
        w.pose.position.x, w.pose.position.z, w.pose.orientation.w = 0.1 * i, 0.6, 1.0
        msg.waypoints.append(w)
    end = time.monotonic() + 60
    while time.monotonic() < end and rclpy.ok():
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)
""")


def test_fields():
    from posevla_ros.msg import PosePrediction, PoseWaypoint

    fields = PosePrediction.get_fields_and_field_types()
    assert fields == {"header": "std_msgs/Header", "instruction": "string", "category": "string",
                      "box_u": "float", "box_v": "float", "object_pose": "geometry_msgs/Pose",
                      "waypoints": "sequence<posevla_ros/PoseWaypoint>", "waypoint_dt": "float",
                      "token_ids": "sequence<int32>", "inference_ms": "float"}
    assert PoseWaypoint.get_fields_and_field_types() == {"pose": "geometry_msgs/Pose", "gripper": "float"}


def test_prediction_round_trip():
    from std_msgs.msg import Header

    q = np.array([0.1, -0.2, 0.3, 0.9]) / np.linalg.norm([0.1, -0.2, 0.3, 0.9])
    pred = Prediction("mug", (0.3, 0.6), Pose([0.1, 0.2, 0.7], q),
                      [Waypoint(Pose([0.0, 0.1, 0.5], q), 1.0), Waypoint(Pose([0.0, 0.1, 0.6], q), 0.0)],
                      waypoint_dt=0.4, token_ids=[5, 6, 7])
    header = Header(frame_id="cam")
    header.stamp.sec = 3
    msg = conv.prediction_to_msg(pred, header, "grab the mug", 33.0)
    assert msg.header.frame_id == "cam" and msg.header.stamp.sec == 3 and msg.inference_ms == 33.0
    back = conv.msg_to_prediction(msg)
    assert back.valid and back.category == "mug" and back.token_ids == [5, 6, 7]
    assert np.allclose(back.box_uv, (0.3, 0.6), atol=1e-6)
    assert np.allclose(back.object_pose.position, pred.object_pose.position)
    for a, b in zip(back.waypoints, pred.waypoints):
        assert np.allclose(a.pose.position, b.pose.position) and np.allclose(a.pose.quat_xyzw, b.pose.quat_xyzw)
        assert a.gripper == b.gripper
    assert abs(back.waypoint_dt - 0.4) < 1e-6
    msg.waypoints[1].pose.orientation.w = float("nan")
    assert not conv.msg_to_prediction(msg).valid


def test_cross_process(ros_context, spin_until, tmp_path):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

    from posevla_ros.msg import PosePrediction

    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        node = Node("msg_test_subscriber", context=ros_context)
        got = []
        node.create_subscription(PosePrediction, "/posevla/test_prediction", got.append, QoSProfile(depth=10))
        ex = SingleThreadedExecutor(context=ros_context)
        ex.add_node(node)
        assert spin_until(ex, lambda: got or proc.poll() is not None, timeout=60), "no message"
        assert got, proc.communicate()[0]
        m = got[0]
        assert m.instruction == "pick up the red cube" and m.category == "cube"
        assert m.header.frame_id == "camera_color_optical_frame"
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == (42, 7)
        assert [w.gripper for w in m.waypoints] == [0.0, 0.5, 1.0]
        assert abs(m.waypoints[2].pose.position.x - 0.2) < 1e-9
        assert list(m.token_ids) == [1, 2, 3] and m.inference_ms == 12.5
        node.destroy_node()
    finally:
        proc.kill()
        proc.wait()
