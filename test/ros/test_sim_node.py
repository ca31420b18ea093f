"""sim_node over real DDS: a subprocess (python -m posevla_ros.nodes.sim_node --ros-args ...),
a client node here: reset service, camera topics, joint states, trajectory following."""
import time

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("rclpy")


def test_sim_node_over_dds(ros_context, node_process, spin_until):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from geometry_msgs.msg import PoseStamped
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
    from builtin_interfaces.msg import Duration

    from posevla_ros.srv import ResetEpisode

    proc = node_process("posevla_ros.nodes.sim_node", "-p", "width:=96", "-p", "height:=96",
                        "-p", "task:=pick", "-p", "seed:=1")
    node = Node("sim_test_client", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    got: dict = {"js": []}
    node.create_subscription(Image, "/camera/color/image_raw", lambda m: got.__setitem__("rgb", m), 5)
    node.create_subscription(Image, "/camera/aligned_depth_to_color/image_raw", lambda m: got.__setitem__("depth", m), 5)
    node.create_subscription(CameraInfo, "/camera/color/camera_info", lambda m: got.__setitem__("info", m), 5)
    node.create_subscription(PoseStamped, "/sim/camera_pose", lambda m: got.__setitem__("cam", m), 5)
    node.create_subscription(Clock, "/clock", lambda m: got.__setitem__("clock", m), 5)
    node.create_subscription(JointState, "/joint_states", lambda m: got["js"].append(m), 50)
    arm_pub = node.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
    reset = node.create_client(ResetEpisode, "/sim/reset")
    success = node.create_client(Trigger, "/sim/success")
    try:
        assert spin_until(ex, lambda: reset.service_is_ready() and success.service_is_ready(), 60.0), proc.output()
        fut = reset.call_async(ResetEpisode.Request(seed=7, task="put"))
        assert spin_until(ex, fut.done, 30.0)
        res = fut.result()
        assert res.success and "bin" in res.instruction and "put" in res.message, res
        got.pop("rgb", None)
        assert spin_until(ex, lambda: all(k in got for k in ("rgb", "depth", "info", "cam", "clock"))
                          and len(got["js"]) > 5, 30.0), (sorted(got), proc.output())
        rgb, depth, info = got["rgb"], got["depth"], got["info"]
        assert (rgb.encoding, rgb.width, rgb.height, rgb.step) == ("rgb8", 96, 96, 96 * 3)
        assert rgb.header.frame_id == "camera_color_optical_frame"
        assert (depth.encoding, depth.step) == ("32FC1", 96 * 4)
        d = np.frombuffer(bytes(depth.data), dtype="<f4")
        assert np.nanmin(d) > 0.3 and np.nanmax(d) < 10.0
        assert info.width == 96 and info.k[0] > 0 and np.isclose(info.k[2], 47.5) and info.k[8] == 1.0
        assert got["cam"].header.frame_id == "base_link" and got["cam"].pose.position.x > 0.8
        js = got["js"][-1]
        assert list(js.name)[:7] == [f"panda_joint{i}" for i in range(1, 8)] and len(js.position) == 9
        q0 = np.array(js.position[:7])

        fut = success.call_async(Trigger.Request())
        assert spin_until(ex, fut.done, 10.0) and fut.result().success is False

        goal = q0 + 0.3
        msg = JointTrajectory(joint_names=[f"panda_joint{i}" for i in range(1, 8)])
        msg.points = [JointTrajectoryPoint(positions=[float(x) for x in goal],
                                           time_from_start=Duration(sec=1, nanosec=0))]
        arm_pub.publish(msg)

        def reached():
            return bool(got["js"]) and np.max(np.abs(np.array(got["js"][-1].position[:7]) - goal)) < 0.02
        t0 = time.monotonic()
        assert spin_until(ex, reached, 30.0), (got["js"][-1].position, goal)
        assert time.monotonic() - t0 > 0.5          # real-time: a 1 s trajectory takes ~1 s
        assert proc.alive()

        # a second simulator on this domain (its /clock): resets are refused, saying why
        node.create_publisher(Clock, "/clock", 10)
        answers = []

        def refused() -> bool:
            f = reset.call_async(ResetEpisode.Request(seed=8, task="pick"))
            spin_until(ex, f.done, 10.0)
            answers.append(f.result())
            return not answers[-1].success
        assert spin_until(ex, refused, 20.0), answers[-1]
        assert "2 simulators publish /clock" in answers[-1].message and "ROS_DOMAIN_ID" in answers[-1].message
    finally:
        ex.remove_node(node)
        node.destroy_node()
        ex.shutdown()
