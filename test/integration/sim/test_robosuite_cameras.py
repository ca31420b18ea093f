"""robosuite's own cameras and any pose: ``--camera NAME`` / ``sim_camera`` / make_env(camera=...)
render a camera of robosuite's model unmoved, a CameraPlacement puts one anywhere, and the env
reports that camera's true pose and K (checked against MuJoCo's own segmentation of the
gripper). The rules and the plumbing (CLI -> graph -> sim_node parameter) are fast tests; what
builds a RobosuiteEnv is slow, as in test_robosuite.py."""
from importlib.util import find_spec
from test.helpers.sim import geom_mask

import numpy as np
import pytest

from posevla_core.geometry import se3
from posevla_core.sim.camera import CameraPlacement
from posevla_core.sim.factory import camera_choice

W = H = 128
POSE = "1.3,-0.4,0.5,0.3,0.7,-0.6,-0.25"
needs_robosuite = pytest.mark.skipif(find_spec("robosuite") is None, reason="robosuite not installed "
                                     "(pip install --no-deps -r requirements/robosuite.txt)")


def test_camera_choice_rules():
    placed = CameraPlacement.parse(POSE, 60.0)
    assert camera_choice("robosuite:Lift", "frontview") == "frontview"
    assert camera_choice("robosuite:Lift", " ", placed) is placed
    assert camera_choice("robosuite:Lift", "") is None
    assert camera_choice("robosuite:Lift", "agentview", CameraPlacement(width=320)) == "agentview"
    assert camera_choice("mujoco", "", placed) is placed and camera_choice("mujoco", "rgbd") is None
    for sim, name, placement, match in (("mujoco", "frontview", None, "our mujoco scene has one camera"),
                                        ("robosuite:Lift", "frontview", placed, "not both"),
                                        ("robosuite:Lift", "agentview", CameraPlacement(fov_deg=60), "not both")):
        with pytest.raises(ValueError, match=match) as e:
            camera_choice(sim, name, placement)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("graph, extra", [("sim_demo", {}), ("evaluate", {"sim": True, "task": "pick"}),
                                          ("collect", {"sim": True, "teleop": "scripted", "task": "pick"})])
def test_graphs_give_sim_node_the_camera(graph, extra):
    """sim_camera and, on robosuite too, camera_pose / camera_fov_deg reach sim_node's parameters,
    in-process and as launch strings; none of them when not given."""
    from posevla_ros.launching import graphs as G

    def sim_params(args):
        return next(s for s in G.build(graph, args) if s.name == "sim_node").parameters()

    for camera in ({"sim_camera": "frontview"}, {"camera_pose": POSE, "camera_fov_deg": 60.0}):
        args = dict(extra, simulator="robosuite:Lift", **camera)
        params = sim_params(args)
        assert params["sim"] == "robosuite:Lift" and all(params[k] == v for k, v in camera.items())
        assert sim_params({k: str(v) for k, v in args.items()}) == params
    plain = next(s for s in G.build(graph, dict(extra, simulator="robosuite:Lift")) if s.name == "sim_node").params
    assert not {"sim_camera", "camera_pose", "camera_fov_deg"} & set(plain)
    for args, match in (({"sim_camera": "frontview"}, "our mujoco scene"),
                        ({"simulator": "robosuite:Lift", "sim_camera": "frontview", "camera_pose": POSE}, "not both"),
                        ({"simulator": "robosuite:Lift", "scene_look": "light=0.5"}, "mujoco scene only")):
        with pytest.raises(ValueError, match=match) as e:
            G.build(graph, dict(extra, **args))
        assert "\n" not in str(e.value)


def test_sim_node_and_launch_declare_sim_camera():
    from posevla_ros.launching.graphs import ARGS
    from posevla_ros.params import SIM_PARAMS

    assert ("sim_camera", "") in [(n, d) for n, d, _ in SIM_PARAMS]
    for graph in ("sim_demo", "evaluate", "collect"):
        assert ARGS[graph]["sim_camera"][0] == ""


def test_cli_camera_flag(capsys, tmp_path):
    """--camera on evaluate / collect / demo becomes the graph's sim_camera; our scene refuses a
    name in one line; without --sim it is refused like the other camera flags."""
    from posevla_ros import cli
    from posevla_ros.cli.options import camera_args

    for cmd in (["evaluate", "--task", "pick", "--out", str(tmp_path)],
                ["collect", "--teleop", "scripted", "--task", "pick", "--out", str(tmp_path)], ["demo"]):
        a = cli.build_parser().parse_args(cmd + (["--sim"] if cmd[0] != "demo" else []) + ["--camera", "rgbd"])
        assert camera_args(a) == {"sim_camera": "rgbd"}
    assert cli.main(["demo", "--camera", "frontview"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "our mujoco scene has one camera" in err
    assert cli.main(["evaluate", "--task", "pick", "--out", str(tmp_path), "--camera", "agentview"]) == 1
    assert "need --sim" in capsys.readouterr().err
    assert cli.main(["evaluate", "--sim", "robosuite:Lift", "--task", "pick", "--out", str(tmp_path),
                     "--camera", "agentview", "--fov", "60"]) == 1
    assert "not both" in capsys.readouterr().err


# ------------------------------------------------------------------ with robosuite (slow)
def _gripper_mask(env) -> np.ndarray:
    """Pixels MuJoCo's segmentation gives to the PandaGripper's geoms (its root body and below)."""
    from posevla_core.sim.robosuite.urdf import GRIPPER_BODY

    mj, m = env._mj, env.model
    root = mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, GRIPPER_BODY)

    def under(b):
        while b > 0 and b != root:
            b = m.body_parentid[b]
        return b == root
    return geom_mask(env, [g for g in range(m.ngeom) if under(m.geom_bodyid[g])])


@pytest.mark.slow
@needs_robosuite
@pytest.mark.parametrize("name", ["agentview", "frontview"])
def test_named_camera_projects_the_grip_site_where_it_is_rendered(name):
    """At robosuite's unmoved camera, the reported pose and K (pinhole_K of its own fovy) put
    robosuite's grip site (between the fingers) on the rendered gripper, in two arm poses, and
    move it across the image as the rendered gripper moves; the reported pose is the model's camera."""
    from posevla_core.sim.camera import OPTICAL_FROM_MJCAM
    from posevla_core.sim.mujoco.env import pinhole_K
    from posevla_core.sim.robosuite.env import RobosuiteEnv

    env = RobosuiteEnv("Lift", width=W, height=H, camera=name)
    try:
        mj, m = env._mj, env.model
        cam = mj.mj_name2id(m, mj.mjtObj.mjOBJ_CAMERA, name)
        assert env._cam == cam and m.cam_bodyid[cam] == 0
        site = mj.mj_name2id(m, mj.mjtObj.mjOBJ_SITE, "gripper0_right_grip_site")
        env.reset(0)
        R = np.empty(9)
        mj.mju_quat2Mat(R, m.cam_quat[cam])           # the model's own pose of the camera, in the world
        T_world = np.eye(4)
        T_world[:3, :3], T_world[:3, 3] = R.reshape(3, 3) @ OPTICAL_FROM_MJCAM, m.cam_pos[cam]
        T = env.camera_pose_in_base()
        assert np.allclose(T, se3.inv_T(env.base_pose_in_world()) @ T_world, atol=1e-9)
        K = env.intrinsics()
        assert np.allclose(K, pinhole_K(m.cam_fovy[cam], W, H)) and np.allclose(env.render()[2], K)
        centers, home = [], env.arm_q()
        for turn in (0.3, -0.3):          # the hand down over the table, left then right of the camera's axis
            env.data.qpos[env._qadr[:7]] = home + [turn, 0.5, 0.0, 0.6, 0.0, -0.2, 0.0]
            mj.mj_kinematics(m, env.data)
            p = se3.transform_points(se3.inv_T(T), env._world_to_base(env.data.site_xpos[site]))
            u, v = K[0, 0] * p[0] / p[2] + K[0, 2], K[1, 1] * p[1] / p[2] + K[1, 2]
            mask = _gripper_mask(env)
            ys, xs = np.nonzero(mask)
            assert mask.sum() > 30, (name, mask.sum())
            # the site lies between the fingertips: inside the gripper's box, at its lower end
            assert xs.min() - 2 <= u <= xs.max() + 2 and ys.min() - 2 <= v <= ys.max() + 2, (name, u, v)
            assert abs(u - xs.mean()) < 0.05 * W and v > ys.mean(), (name, u, v, xs.mean(), ys.mean())
            centers.append((u, xs.mean()))
        (u0, x0), (u1, x1) = centers
        assert abs(u1 - u0) > 10 and abs((u1 - u0) - (x1 - x0)) < 0.15 * abs(x1 - x0), centers
    finally:
        env.close()


@pytest.mark.slow
@needs_robosuite
def test_a_placement_renders_what_that_camera_sees():
    """agentview's reported pose and fov, given back as a CameraPlacement (``--camera-pose`` /
    ``--fov``), render agentview's image; the default stays ours; a bad name lists the model's."""
    from posevla_core.sim.factory import check_camera, make_env
    from posevla_core.sim.mujoco import scene
    from posevla_core.sim.robosuite.env import RobosuiteEnv

    own = make_env("robosuite:Lift", width=W, height=H, camera="agentview")
    placed = make_env("robosuite:Lift", width=W, height=H, camera=CameraPlacement.parse(
        CameraPlacement.format_pose(own.camera_pose_in_base()), float(own.model.cam_fovy[own._cam])))
    default = make_env("robosuite:Lift", width=W, height=H, camera=CameraPlacement(fov_deg=70.0))
    try:
        for e in (own, placed, default):
            e.reset(3)
        assert np.allclose(placed.camera_pose_in_base(), own.camera_pose_in_base(), atol=1e-5)
        assert np.allclose(placed.intrinsics(), own.intrinsics())
        (rgb_a, depth_a, _), (rgb_b, depth_b, _) = own.render(), placed.render()
        assert np.abs(rgb_a.astype(int) - rgb_b).mean() < 0.05 and np.nanmax(np.abs(depth_a - depth_b)) < 1e-3
        # a fov alone keeps our placement; the pose is the same as the default's (test_robosuite.py)
        from posevla_core.sim.camera import nominal_camera_pose

        want = nominal_camera_pose()
        want[2, 3] += default.table_z
        assert np.allclose(default.camera_pose_in_base(), want, atol=1e-9)
        assert np.isclose(default.model.cam_fovy[default._cam], 70.0) and 70.0 != scene.CAMERA_FOVY
    finally:
        for e in (own, placed, default):
            e.close()
    with pytest.raises(ValueError) as e:
        RobosuiteEnv("PickPlaceCan", width=W, height=H, camera="sideview")     # Lift has one; PickPlaceCan not
    msg = str(e.value)
    assert "\n" not in msg and "no camera 'sideview'" in msg and "agentview" in msg and "frontview" in msg
    assert check_camera("robosuite:Lift", "sideview") == "sideview"
    with pytest.raises(ValueError, match="its cameras: frontview, birdview, agentview"):
        check_camera("robosuite:Lift", "nosuch")


@pytest.mark.slow
@needs_robosuite
def test_cli_and_sim_node_refuse_a_name_robosuite_lacks(capsys, tmp_path, node_process):
    from posevla_ros.cli import main

    assert main(["evaluate", "--sim", "robosuite:Lift", "--task", "pick", "--out", str(tmp_path),
                 "--camera", "nosuch"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no camera 'nosuch'" in err and "sideview" in err, err
    proc = node_process("posevla_ros.nodes.sim_node", "-p", "sim:=robosuite:Lift", "-p", "sim_camera:=nosuch")
    assert proc.proc.wait(90) != 0
    assert "robosuite Lift has no camera 'nosuch'; its cameras: " in proc.output()
