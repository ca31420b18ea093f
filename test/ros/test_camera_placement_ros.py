"""Users place the sim camera: the graphs pass camera_pose / camera_fov_deg / width / height to
sim_node (in-process runner and launch alike), the CLI refuses bad values in one line, and a real
sim_node over DDS publishes the pose it was given on /sim/camera_pose with K from the fov."""
import numpy as np
import pytest

from posevla_core.sim.camera import CameraPlacement, Orbit

POSE = CameraPlacement.format_pose(Orbit(azimuth_deg=-45, elevation_deg=50, roll_deg=10).matrix())


@pytest.mark.parametrize("graph, extra", [("sim_demo", {}), ("evaluate", {"sim": True}),
                                          ("collect", {"sim": True, "teleop": "scripted", "task": "pick"})])
def test_graph_gives_sim_node_the_camera(graph, extra):
    from posevla_ros.launching import graphs

    args = dict(extra, camera_pose=POSE, camera_fov_deg=70.0, width=320, height=240, scene_look="light=0.5")
    sim = next(s for s in graphs.build(graph, args) if s.name == "sim_node")
    params = sim.parameters()
    assert (params["camera_pose"], params["camera_fov_deg"], params["width"], params["height"],
            params["scene_look"]) == (POSE, 70.0, 320, 240, "light=0.5")
    launched = sim.launch_kwargs()["parameters"][-1]            # what ros2 launch hands the node
    assert launched["camera_pose"] == POSE and launched["camera_fov_deg"] == 70.0
    # launch arguments arrive as strings: the same values
    from_launch = next(s for s in graphs.build(graph, {k: str(v) for k, v in args.items()}) if s.name == "sim_node")
    assert from_launch.parameters() == params
    plain = next(s for s in graphs.build(graph, extra) if s.name == "sim_node").params
    assert not {"camera_pose", "camera_fov_deg", "width", "height", "scene_look"} & set(plain)   # the node's own defaults


@pytest.mark.parametrize("args, match", [
    ({"camera_pose": "1,2,3"}, "expected 7 numbers"),
    ({"camera_fov_deg": 200.0}, "field of view"),
    ({"simulator": "robosuite:Lift", "scene_look": "light=0.5"}, "mujoco scene only"),
    ({"scene_look": "fog=1"}, "keys light")])
def test_bad_camera_arguments_are_one_line(args, match):
    from posevla_ros.launching import graphs

    with pytest.raises(ValueError, match=match) as e:
        graphs.build("evaluate", dict(sim=True, **args))
    assert "\n" not in str(e.value)


def test_cli_refuses_bad_camera_flags(capsys, tmp_path):
    from posevla_ros.cli import main

    assert main(["evaluate", "--task", "pick", "--out", str(tmp_path), "--fov", "60"]) == 1
    assert "need --sim" in capsys.readouterr().err
    assert main(["evaluate", "--sim", "--task", "pick", "--out", str(tmp_path), "--camera-pose", "1,2,x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "expected 7 numbers" in err
    assert main(["demo", "--camera-pose=-1,0,0.5,0,0,0,0"]) == 1
    assert "zero length" in capsys.readouterr().err


pytest.importorskip("mujoco")
pytest.importorskip("rclpy")


def test_sim_node_publishes_the_placed_pose(ros_context, node_process, spin_until):
    """Over DDS: /sim/camera_pose is the given pose in every episode (no jitter), camera_info's K
    follows camera_fov_deg and the image size."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo

    from posevla_core.sim.mujoco.env import pinhole_K
    from posevla_ros.srv import ResetEpisode

    proc = node_process("posevla_ros.nodes.sim_node", "-p", "width:=96", "-p", "height:=72", "-p", f"camera_pose:={POSE}",
                        "-p", "camera_fov_deg:=70.0", "-p", "seed:=1000")
    node = Node("camera_placement_client", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    got: dict = {}
    node.create_subscription(PoseStamped, "/sim/camera_pose", lambda m: got.__setitem__("cam", m), 5)
    node.create_subscription(CameraInfo, "/camera/color/camera_info", lambda m: got.__setitem__("info", m), 5)
    reset = node.create_client(ResetEpisode, "/sim/reset")
    want = np.array([float(v) for v in POSE.split(",")])
    try:
        for seed in (1000, 1001):
            assert spin_until(ex, reset.service_is_ready, 60.0), proc.output()
            fut = reset.call_async(ResetEpisode.Request(seed=seed, task="pick"))
            assert spin_until(ex, fut.done, 30.0) and fut.result().success, proc.output()
            got.clear()
            assert spin_until(ex, lambda: "cam" in got and "info" in got, 30.0), proc.output()
            p = got["cam"].pose
            pose = np.array([p.position.x, p.position.y, p.position.z,
                             p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w])
            pose[3:] *= np.sign(pose[6])
            np.testing.assert_allclose(pose, want, atol=1e-5)
            info = got["info"]
            assert (info.width, info.height) == (96, 72)
            np.testing.assert_allclose(np.array(info.k).reshape(3, 3), pinhole_K(70.0, 96, 72), atol=1e-9)
        assert proc.alive()
    finally:
        node.destroy_node()


def test_sim_node_refuses_a_bad_pose_in_one_line(node_process):
    proc = node_process("posevla_ros.nodes.sim_node", "-p", "camera_pose:=1,2,3")
    assert proc.proc.wait(60) != 0
    assert "camera pose '1,2,3': expected 7 numbers" in proc.output()
