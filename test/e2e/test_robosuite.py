"""robosuite behind SimEnv's interface (posevla_core.sim.robosuite.env): the ``sim`` option,
headless RGB-D, camera conventions checked against MuJoCo's own segmentation, seeded resets,
the scripted expert judged by robosuite's ``_check_success()``, and sim_node serving it over DDS."""
import math
from importlib.util import find_spec
from test.helpers.sim import geom_mask

import numpy as np
import pytest

from posevla_core.geometry import se3
from posevla_core.sim.factory import SimChoice, parse_sim

W = H = 128
# not pytest.importorskip("robosuite"): a bare import sets MUJOCO_GL=egl (robosuite_compat handles that)
needs_robosuite = pytest.mark.skipif(find_spec("robosuite") is None, reason="robosuite not installed "
                                     "(pip install --no-deps -r requirements/robosuite.txt)")


def test_parse_sim_one_place():
    assert parse_sim("mujoco") == parse_sim("") == parse_sim("true") == SimChoice("mujoco")
    assert parse_sim("robosuite:Lift") == parse_sim(" robosuite:lift ") == SimChoice("robosuite", "Lift")
    assert str(parse_sim("robosuite:lift")) == "robosuite:Lift"
    for bad in ("robosuite:Door", "robosuite", "isaac", "false"):
        with pytest.raises(ValueError, match="robosuite:Lift"):
            parse_sim(bad)


@pytest.fixture(scope="module")
def env():
    if find_spec("robosuite") is None:
        pytest.skip("robosuite not installed (pip install --no-deps -r requirements/robosuite.txt)")
    from posevla_core.sim.robosuite.env import RobosuiteEnv

    e = RobosuiteEnv("Lift", width=W, height=H)
    yield e
    e.close()


@pytest.mark.slow
def test_reset_renders_rgbd_headless(env):
    spec = env.reset(3, "pick")
    assert spec.instruction == "lift the red cube" and spec.target == "red_cube" and spec.task == "pick"
    assert not env.success()
    rgb, depth, K = env.render()
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8 and rgb.std() > 5
    assert depth.shape == (H, W) and depth.dtype == np.float32
    assert np.isfinite(depth).mean() > 0.9 and 0.3 < np.nanmin(depth) and np.nanmax(depth) < 5.0
    assert K[0, 0] > 0 and np.isclose(K[0, 0], K[1, 1]) and np.allclose(K[:2, 2], (W - 1) / 2) and K[2, 2] == 1
    names, q, v = env.joint_state()
    assert names[:7] == [f"panda_joint{i}" for i in range(1, 8)] and len(q) == len(v) == 9
    assert np.all(q[7:] > 0.03)                  # our sign convention, opened while settling
    # the table top lies below the base (robosuite mounts the Panda on a pedestal) and the cube on it
    assert -0.2 < env.table_z < -0.05
    assert abs(env.object_pose("red_cube")[2, 3] - env.table_z - env.object_extent("red_cube")[0][2] / 2) < 3e-3
    for bad in ("put", "stack the red cube"):
        with pytest.raises(ValueError, match="lift the red cube"):
            env.reset(0, bad)


@pytest.mark.slow
def test_the_default_camera_sits_where_our_scene_has_it(env):
    """camera="posevla": agentview moved to our sim's nominal camera pose in base, shifted with the
    table, with our field of view, after every reset; camera="agentview": robosuite's own pose."""
    from posevla_core.sim.camera import nominal_camera_pose
    from posevla_core.sim.mujoco import scene
    from posevla_core.sim.robosuite.env import RobosuiteEnv

    want = nominal_camera_pose()
    want[2, 3] += env.table_z
    for seed in (0, 7):
        env.reset(seed)
        assert np.allclose(env.camera_pose_in_base(), want, atol=1e-9)
    assert np.isclose(env.model.cam_fovy[env._cam], scene.CAMERA_FOVY)
    p = se3.transform_points(se3.inv_T(want), env.object_pose("red_cube")[:3, 3])
    assert 0.66 < p[2] < 1.27           # inside the camera-frame depth range the shipped bins span
    own = RobosuiteEnv("Lift", width=W, height=H, camera="agentview")
    try:
        assert np.linalg.norm(own.camera_pose_in_base()[:3, 3] - want[:3, 3]) > 0.2
    finally:
        own.close()


@pytest.mark.slow
def test_camera_projection_lands_on_the_cube(env):
    """K and camera_pose_in_base against MuJoCo's own segmentation: the projected cube center
    is a cube pixel, the projected 3D box matches the mask's box, the depth there matches."""
    cube_geoms = {g for g in range(env.model.ngeom) if env.model.geom_bodyid[g] == env._body["red_cube"]}
    for seed in (0, 5, 11):
        env.reset(seed)
        T = env.camera_pose_in_base()
        assert np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(T[:3, :3]), 1)
        _, depth, K = env.render()
        mask = geom_mask(env, cube_geoms)
        assert mask.sum() > 20, seed
        p = se3.transform_points(se3.inv_T(T), env.object_pose("red_cube")[:3, 3])
        u, v = K[0, 0] * p[0] / p[2] + K[0, 2], K[1, 1] * p[1] / p[2] + K[1, 2]
        assert mask[int(round(v)), int(round(u))], (seed, u, v)
        ys, xs = np.nonzero(mask)
        assert abs(u - xs.mean()) < 1.5 and abs(v - ys.mean()) < 2.5, (seed, u, v, xs.mean(), ys.mean())
        half = env.object_extent("red_cube")[0][2] / 2
        assert p[2] - 2 * half < depth[int(round(v)), int(round(u))] < p[2], seed
        lab = env.object_labels()                 # SimEnvBase's labels, shared with SimEnv
        x0, y0, x1, y1 = lab["box_xyxy"] * [W, H, W, H]
        assert x0 - 1 <= xs.min() and xs.max() <= x1 + 1 and y0 - 1 <= ys.min() and ys.max() <= y1 + 1


@pytest.mark.slow
def test_seeded_resets(env):
    a = env.reset(7).objects["red_cube"]
    b = env.reset(8).objects["red_cube"]
    c = env.reset(7).objects["red_cube"]
    assert np.allclose(a, c) and not np.allclose(a, b)


@pytest.mark.slow
def test_ee_pose_matches_the_panda_urdf(env):
    """The executor plans with our Panda URDF (pinocchio) in robosuite's robot base frame."""
    from posevla_core.sim.demonstrator import default_kinematics

    kin = default_kinematics()
    env.reset(0)
    for q in (env.arm_q(), env.arm_q() + [0.3, -0.2, 0.2, 0.3, -0.4, 0.2, 0.5]):
        env.data.qpos[env._qadr[:7]] = q
        env._mj.mj_kinematics(env.model, env.data)
        d = se3.inv_T(kin.fk(q)) @ env.ee_pose()
        assert np.linalg.norm(d[:3, 3]) < 1e-3 and math.degrees(np.arccos((np.trace(d[:3, :3]) - 1) / 2)) < 0.1


@pytest.mark.slow
def test_scripted_expert_lifts(env):
    from posevla_core.sim.demonstrator import run_expert

    ok = 0
    for seed in range(4):
        env.reset(seed)
        ok += bool(run_expert(env))
        assert env.object_pose("red_cube")[2, 3] - env.table_z > 0.1 or not env.success()
    assert ok == 4
    env.reset(0)
    assert not env.success()                      # latched per episode only


@pytest.mark.slow
@needs_robosuite
def test_sim_node_serves_robosuite_over_dds(ros_context, node_process, spin_until):
    """The unchanged sim_node with ``sim:=robosuite:Lift``: reset service, RGB-D + CameraInfo,
    camera pose, /joint_states in our names, an arm trajectory followed, success service."""
    from builtin_interfaces.msg import Duration
    from geometry_msgs.msg import PoseStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image, JointState
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from posevla_ros.srv import ResetEpisode

    proc = node_process("posevla_ros.nodes.sim_node", "-p", "sim:=robosuite:Lift", "-p", "width:=96", "-p", "height:=96",
                        "-p", "seed:=1")
    node = Node("robosuite_test_client", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    topics = {"rgb": (Image, "/camera/color/image_raw"), "depth": (Image, "/camera/aligned_depth_to_color/image_raw"),
              "info": (CameraInfo, "/camera/color/camera_info"), "cam": (PoseStamped, "/sim/camera_pose"),
              "js": (JointState, "/joint_states")}
    got: dict = {k: [] for k in topics}
    for key, (msg_type, topic) in topics.items():
        node.create_subscription(msg_type, topic, lambda m, k=key: got[k].append(m), 20)
    arm_pub = node.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
    reset, success = node.create_client(ResetEpisode, "/sim/reset"), node.create_client(Trigger, "/sim/success")

    def call(client, request):
        fut = client.call_async(request)
        assert spin_until(ex, fut.done, 30.0), proc.output()
        return fut.result()
    try:
        assert spin_until(ex, lambda: reset.service_is_ready() and success.service_is_ready(), 90.0), proc.output()
        res = call(reset, ResetEpisode.Request(seed=4, task="pick"))
        assert res.success and res.instruction == "lift the red cube", res
        res = call(reset, ResetEpisode.Request(seed=4, task="put"))
        assert not res.success and "lift the red cube" in res.message
        for k in got:
            got[k].clear()
        assert spin_until(ex, lambda: all(got.values()) and len(got["js"]) > 5, 30.0), (got.keys(), proc.output())
        rgb, depth, info, cam = (got[k][-1] for k in ("rgb", "depth", "info", "cam"))
        assert (rgb.encoding, rgb.width, rgb.height) == ("rgb8", 96, 96)
        d = np.frombuffer(bytes(depth.data), dtype="<f4")
        assert depth.encoding == "32FC1" and 0.3 < np.nanmin(d) and np.nanmax(d) < 5.0
        assert np.isclose(info.k[2], 47.5) and info.k[0] > 0
        assert cam.header.frame_id == "base_link" and cam.pose.position.x > 0.8
        js = got["js"][-1]
        assert list(js.name) == [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1", "panda_finger_joint2"]
        assert call(success, Trigger.Request()).success is False

        goal = np.array(js.position[:7]) + 0.2
        msg = JointTrajectory(joint_names=[f"panda_joint{i}" for i in range(1, 8)])
        msg.points = [JointTrajectoryPoint(positions=[float(x) for x in goal], time_from_start=Duration(sec=1))]
        arm_pub.publish(msg)

        def reached():
            return np.max(np.abs(np.array(got["js"][-1].position[:7]) - goal)) < 0.02
        assert spin_until(ex, reached, 30.0), (got["js"][-1].position, goal)
        assert proc.alive()
    finally:
        ex.remove_node(node)
        node.destroy_node()
        ex.shutdown()


def test_graphs_take_the_simulator():
    """evaluate / collect / sim_demo: ``simulator`` reaches sim_node, robosuite's Panda config
    replaces the default panda, and what robosuite cannot stage is refused in one line."""
    from posevla_ros.launching import graphs

    for graph, args in (("evaluate", {"sim": True, "task": "pick"}), ("collect", {"sim": True, "teleop": "joy"}),
                        ("sim_demo", {"task": "lift the red cube"})):
        nodes = {s.name: s.parameters() for s in graphs.build(graph, dict(args, simulator="robosuite:lift"))}
        assert nodes["sim_node"]["sim"] == "robosuite:Lift" and nodes["sim_node"]["robot"] == "robosuite_panda"
        ee_node = next(n for n in ("executor_node", "teleop_node") if n in nodes)
        assert nodes[ee_node]["workspace.min"][2] < -0.1       # robosuite_panda.yaml: the table below base_link
        mujoco = {s.name: s.parameters() for s in graphs.build(graph, args)}
        assert mujoco["sim_node"]["sim"] == "mujoco" and mujoco["sim_node"]["robot"] == "sim_panda"
    for args, match in (({"sim": True, "task": "put", "simulator": "robosuite:Lift"}, "lift the red cube"),
                        ({"sim": True, "task": "pick", "simulator": "robosuite:Door"}, "robosuite:Lift"),
                        ({"sim": False, "task": "lift it", "simulator": "robosuite:Lift"}, "needs the sim"),
                        ({"sim": True, "task": "pick", "absent": 2, "simulator": "robosuite:Lift"}, "mujoco scene")):
        with pytest.raises(ValueError, match=match):
            graphs.build("evaluate", args)


@pytest.mark.slow
@needs_robosuite
def test_lift_episode_through_the_node_chain(tmp_path):
    """One Lift episode through the real nodes over DDS, from the CLI: ``posevla collect --sim
    robosuite:Lift --teleop scripted`` (sim_node on robosuite, teleop_node planning with our
    Panda URDF under config/robots/robosuite_panda.yaml's checks, recorder, evaluator):
    robosuite's own success, one LeRobot episode."""
    import json

    from posevla_core.data import LeRobotReader
    from posevla_ros.cli import main

    out = tmp_path / "demos"
    rc = main(["collect", "--sim", "robosuite:Lift", "--teleop", "scripted", "--task", "pick", "--episodes", "1",
               "--seed", "3", "--fps", "5", "--out", str(out)])
    c = json.loads((out / "collect_summary.json").read_text())
    assert rc == 0 and c["episodes_saved"] == 1, c
    assert c["successes"] == 1 and not c["expert_errors"] and c["simulator"] == "robosuite:Lift", c
    assert c["per_episode"][0]["instruction"] == "lift the red cube"
    ds = LeRobotReader(out)
    assert ds.num_episodes == 1 and ds.episode_length(0) > 10


@pytest.mark.slow
def test_make_data_writes_robosuite_shards(tmp_path, capsys):
    """`posevla make-data --sim robosuite:<Task>`: labeled robosuite scenes (what `posevla
    train-verifier`, `eval-offline` and, as motion shards, the fine-tune read)."""
    if find_spec("robosuite") is None:
        pytest.skip("robosuite not installed")
    from posevla_core.data.shards import iter_shard_samples
    from posevla_ros.cli import main

    out = tmp_path / "rs"
    assert main(["make-data", "--kind", "grounding", "--sim", "robosuite:Lift", "--scenes", "3", "--width", "96",
                 "--height", "96", "--out", str(out)]) == 0
    samples = list(iter_shard_samples(out))
    assert len(samples) == 3 and {s["category"] for s in samples} == {"red cube"}
    for s in samples:
        x0, y0, x1, y1 = s["box_xyxy"]
        assert 0 < x0 < x1 < 1 and 0 < y0 < y1 < 1 and s["scene_categories"] == ["red cube"]
        assert 0.66 < s["object_pose"][2] < 1.27          # camera-frame depth inside the shipped bins
    # PickPlaceCan motion shards: the can is labeled as the checkpoint's "red cylinder" (its bin is a
    # quadrant of bin2, no body, not labeled), with the expert's keyframes: grasp, carry, release
    assert main(["make-data", "--kind", "motion", "--sim", "robosuite:PickPlaceCan", "--scenes", "1", "--width",
                 "96", "--height", "96", "--out", str(tmp_path / "can")]) == 0
    (can,) = list(iter_shard_samples(tmp_path / "can"))
    assert (can["instruction"], can["category"], can["scene_categories"]) == \
        ("put the can in its bin", "red cylinder", ["red cylinder"])
    assert list(can["traj_gripper"]) == [1, 1, 1, 0, 0, 0, 1] and len(can["traj_t"]) == 7
    assert main(["make-data", "--kind", "grounding", "--sim", "isaac", "--out", str(tmp_path / "x")]) == 2
    assert "robosuite:Lift" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.slow
@needs_robosuite
def test_make_data_at_robosuite_camera_and_randomized(tmp_path, capsys):
    """`posevla make-data --camera agentview`: robosuite's own camera, unmoved (what
    `make bench-robosuite-agentview` fine-tunes on); `--randomize`: our scene with a camera drawn
    per scene; a camera that the sim cannot place, or both at once, is one line, exit 2."""
    from posevla_core.data.shards import iter_shard_samples
    from posevla_core.sim.factory import make_env
    from posevla_ros.cli import main

    args = ["make-data", "--kind", "motion", "--scenes", "1", "--first-seed", "500000", "--width", "96", "--height", "96"]
    assert main([*args, "--sim", "robosuite:Lift", "--camera", "agentview", "--out", str(tmp_path / "av")]) == 0
    assert main([*args, "--sim", "robosuite:Lift", "--out", str(tmp_path / "moved")]) == 0
    (av,), (moved,) = list(iter_shard_samples(tmp_path / "av")), list(iter_shard_samples(tmp_path / "moved"))
    with make_env("robosuite:Lift", width=96, height=96, camera="agentview") as env:
        env.reset(seed=500000, task="pick")
        T = env.camera_pose_in_base()
    np.testing.assert_allclose(av["camera_to_base"], se3.T_to_pose7(T), atol=1e-5)
    assert np.linalg.norm(np.asarray(av["camera_to_base"][:3]) - np.asarray(moved["camera_to_base"][:3])) > 0.1

    assert main([*args[:4], "3", *args[5:], "--randomize", "--out", str(tmp_path / "wide")]) == 0
    poses = np.array([s["camera_to_base"][:3] for s in iter_shard_samples(tmp_path / "wide")])
    assert len(poses) == 3 and np.ptp(poses, axis=0).max() > 0.05          # a camera drawn per scene
    capsys.readouterr()
    for bad in (["--sim", "robosuite:Lift", "--randomize"], ["--sim", "robosuite:Lift", "--camera", "nowhere"],
                ["--randomize", "--fov", "60"], ["--camera", "agentview"]):
        assert main([*args, *bad, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("posevla make-data: error:") and not (tmp_path / "bad").exists()


@pytest.mark.slow
@needs_robosuite
def test_expert_baseline_on_another_arm(tmp_path, capsys):
    """`posevla expert --sim robosuite:Lift:UR5e`: the scripted expert on the evaluation's seeds
    (make bench-robosuite's baseline rows), with robosuite's success and its sim time; a simulator
    or task it cannot stage is one line, exit 2."""
    import json

    from posevla_ros.cli import main

    out = tmp_path / "expert"
    assert main(["expert", "--sim", "robosuite:Lift:UR5e", "--episodes", "1", "--seed", "1000",
                 "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert (s["simulator"], s["episodes"], s["successes"]) == ("robosuite:Lift:UR5e", 1, 1)
    assert 1.0 < s["time_to_success_s"]["median"] < 15.0
    assert main(["expert", "--sim", "robosuite:Door", "--out", str(tmp_path / "x")]) == 2
    assert main(["expert", "--sim", "robosuite:Lift", "--task", "put", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "robosuite:Lift" in err and "stages one task" in err and not (tmp_path / "x").exists()


@pytest.mark.slow
@needs_robosuite
@pytest.mark.parametrize("sim", ["robosuite:Lift", "robosuite:Lift:UR5e"])
def test_shipped_robosuite_checkpoint_lifts_the_cube(sim, tmp_path):
    """CI's robosuite smoke test: one held-out Lift episode with the shipped robosuite
    checkpoint (trained on Panda demos only, `make bench-robosuite`) through the real nodes,
    on the Panda and, with zero demos on it, on the UR5e through its own config, TF and IK."""
    import json

    from posevla_ros.cli import main

    out = tmp_path / "eval"
    assert main(["evaluate", "--sim", sim, "--task", "pick", "--episodes", "1", "--seed", "1000",
                 "--checkpoint", "checkpoints/robosuite", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["episodes"] == 1 and s["successes"] == 1, s["per_episode"]
