"""The generated messages import, round-trip core types, and cross a real DDS topic
between two processes."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from posevla_core.poses import Pose, Prediction, Waypoint
from posevla_ros.ros_io import conversions as conv

PUBLISHER = textwrap.dedent("""
    import time, rclpy
    from rclpy.qos import QoSProfile
    from posevla_ros.msg import PosePrediction, PoseWaypoint
    rclpy.init()
    node = rclpy.create_node("msg_test_publisher")
    pub = node.create_publisher(PosePrediction, "/posevla/test_prediction", QoSProfile(depth=10))
    msg = PosePrediction(instruction="pick up the red cube", object_found=True, category="cube", box_u=0.25,
                         box_v=0.75, box=[0.2, 0.7, 0.3, 0.8], waypoint_dt=0.5, token_ids=[1, 2, 3],
                         inference_ms=12.5)
    msg.object_size.x, msg.object_size.y, msg.object_size.z = 0.05, 0.06, 0.07
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
    assert fields == {"header": "std_msgs/Header", "instruction": "string", "object_found": "boolean",
                      "category": "string", "box_u": "float", "box_v": "float", "box": "float[4]",
                      "object_pose": "geometry_msgs/Pose", "object_size": "geometry_msgs/Vector3",
                      "waypoints": "sequence<posevla_ros/PoseWaypoint>", "waypoint_dt": "float",
                      "token_ids": "sequence<int32>", "inference_ms": "float"}
    assert list(fields) == ["header", "instruction", "object_found", "category", "box_u", "box_v", "box",
                            "object_pose", "object_size", "waypoints", "waypoint_dt", "token_ids",
                            "inference_ms"]    # the order of design.md
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


def test_found_box_and_size_round_trip():
    from std_msgs.msg import Header

    q = np.array([0.0, 0.0, 0.38268343, 0.92387953])
    pred = Prediction("cylinder", (0.4, 0.5), Pose([0.1, 0.0, 0.7], q),
                      [Waypoint(Pose([0.0, 0.1, 0.5], q), 1.0)], waypoint_dt=0.4,
                      box_xyxy=(0.3, 0.35, 0.5, 0.65), size=np.array([0.04, 0.04, 0.12]))
    msg = conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick up the cylinder", 5.0)
    assert msg.object_found and np.allclose(msg.box, [0.3, 0.35, 0.5, 0.65])
    assert (msg.object_size.x, msg.object_size.y, msg.object_size.z) == pytest.approx((0.04, 0.04, 0.12))
    back = conv.msg_to_prediction(msg)
    assert back.valid and back.found and len(back.waypoints) == 1
    assert np.allclose(back.box_xyxy, pred.box_xyxy, atol=1e-6) and np.allclose(back.size, pred.size, atol=1e-6)
    assert np.allclose(back.box_uv, (0.4, 0.5), atol=1e-6)
    # unknown box and size: zeros on the wire (box_u / box_v kept), None again on the way back
    pred.box_xyxy, pred.size = None, None
    msg = conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick", 5.0)
    assert list(msg.box) == [0.0] * 4 and (msg.object_size.x, msg.object_size.y, msg.object_size.z) == (0, 0, 0)
    assert (msg.box_u, msg.box_v) == pytest.approx((0.4, 0.5))
    back = conv.msg_to_prediction(msg)
    assert back.box_xyxy is None and back.size is None and back.valid
    # a non-finite size or box is an unusable prediction
    msg.object_size.z = float("nan")
    assert not conv.msg_to_prediction(msg).valid
    msg.object_size.z, msg.box[2] = 0.1, float("inf")
    assert not conv.msg_to_prediction(msg).valid


def test_absent_object_goes_out_with_no_waypoints():
    """<no_object>: object_found false and NO waypoints, even if the model decoded some."""
    from std_msgs.msg import Header

    pred = Prediction.absent("cylinder")
    pred.waypoints = [Waypoint(Pose([0.0, 0.1, 0.5], [0, 0, 0, 1]), 1.0)]
    pred.token_ids = [3, 4]
    msg = conv.prediction_to_msg(pred, Header(frame_id="cam"), "pick up the yellow cylinder", 5.0)
    assert not msg.object_found and list(msg.waypoints) == [] and msg.category == "cylinder"
    assert list(msg.token_ids) == [3, 4] and msg.instruction == "pick up the yellow cylinder"
    back = conv.msg_to_prediction(msg)
    assert not back.found and back.waypoints == [] and back.valid
    # a message that says object_found false but carries waypoints keeps them (the executor refuses it)
    msg.waypoints = conv.prediction_to_msg(Prediction("cube", (0.5, 0.5), pred.object_pose, pred.waypoints),
                                           Header(), "", 0.0).waypoints
    back = conv.msg_to_prediction(msg)
    assert not back.found and len(back.waypoints) == 1


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
        assert m.object_found and np.allclose(m.box, [0.2, 0.7, 0.3, 0.8])
        assert (m.object_size.x, m.object_size.y, m.object_size.z) == pytest.approx((0.05, 0.06, 0.07))
        node.destroy_node()
    finally:
        proc.kill()
        proc.wait()
