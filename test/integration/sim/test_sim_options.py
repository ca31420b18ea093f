"""The sim options the generalization suite sweeps beyond camera and look (posevla_core/sim/mujoco/options.py):
depth-sensor faults, the number of objects on the table, their size. Each left unset keeps every
seed's episode as it was; each set reaches the scene, the labels and the expert; the CLI flags
become launch arguments and sim_node parameters. Fast: no subprocess, no ROS graph."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from posevla_core.sim import tasks
from posevla_core.sim.mujoco import scene
from posevla_core.sim.mujoco.options import DEPTH_NOISE_LEVELS, parse_depth_noise, scene_options
from posevla_core.sim.mujoco.randomize import DepthNoise

# sha256 of the episodes below as sample_episode drew them before the objects option existed
EPISODES_DIGEST = "f74369e881401a984ca057f6ed4f59fc62a3c856ee8e405dfb8c2499a8e18fbb"


def _digest(**kw) -> str:
    h = hashlib.sha256()
    for seed in list(range(40)) + [1000, 1001, 100000]:
        for task in (None, "pick", "put", "absent", "pick up the red cube", "put the blue cylinder in the white bin"):
            s = tasks.sample_episode(seed, task, **kw)
            h.update(repr((s.instruction, s.task, s.target, s.container, s.seed, s.objects, s.bins, s.absent)).encode())
    return h.hexdigest()


def test_unset_objects_leaves_every_episode_as_it_was():
    assert _digest() == _digest(objects=None) == _digest(objects=0) == EPISODES_DIGEST


@pytest.mark.parametrize("task", ["pick", "put"])
def test_more_objects_keep_the_episode_and_add_distractors_without_overlap(task):
    for seed in range(1000, 1030):
        base = tasks.sample_episode(seed, task)
        for n in (5, 7) if task == "put" else (5, 7, 8):
            try:
                spec = tasks.sample_episode(seed, task, objects=n)
            except ValueError as e:          # put: the strip between the bins may hold no more
                assert task == "put" and "no free place" in str(e)
                continue
            assert len(spec.objects) == n and len(set(spec.objects)) == n
            assert (spec.target, spec.instruction, spec.bins) == (base.target, base.instruction, base.bins)
            assert all(spec.objects[k] == v for k, v in base.objects.items())     # the drawn ones stay put
            color, shape = spec.target.split("_")
            assert f"{color}_{'cylinder' if shape == 'cube' else 'cube'}" in spec.objects   # the hardest one first
            xy = np.array([v[:2] for v in spec.objects.values()])
            gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(n)
            assert gaps.min() > 2 * tasks.OBJECT_CLEARANCE
            for bx, by in spec.bins.values():
                assert np.linalg.norm(xy - [bx, by], axis=1).min() > tasks.BIN_CLEARANCE + tasks.OBJECT_CLEARANCE
    fewer = tasks.sample_episode(1000, "pick", objects=1)
    assert list(fewer.objects) == [fewer.target]
    absent = tasks.sample_episode(1000, "absent", objects=7)
    assert len(absent.objects) == 7 and absent.absent not in absent.objects
    with pytest.raises(ValueError, match="every object is on the table"):
        tasks.sample_episode(1000, "absent", objects=8)
    for bad in (9, -1, 2.5):
        with pytest.raises(ValueError, match="objects"):
            tasks.check_objects(bad)


def test_parse_depth_noise_and_scene_options():
    assert parse_depth_noise("") is None and parse_depth_noise("none") is None
    assert parse_depth_noise("realsense") == DepthNoise() == DEPTH_NOISE_LEVELS["realsense"]
    heavy = parse_depth_noise("heavy")
    assert heavy.edge_drop > DepthNoise().edge_drop and heavy.holes > DepthNoise().holes
    assert parse_depth_noise("heavy,holes=2").holes == 2
    assert parse_depth_noise("holes=5").edge_drop == DepthNoise().edge_drop      # fields alone change "realsense"
    for bad, match in (("foggy", "unknown level"), ("holes=x", "not a number"), ("edge_drop=1.5", r"in \[0, 1\]"),
                       ("speckle=1", "unknown field"), ("realsense,heavy", "one level")):
        with pytest.raises(ValueError, match=match):
            parse_depth_noise(bad)
    assert scene_options() == {} and scene_options("", 0, 1.0) == {}
    assert scene_options("heavy", 8, 1.3) == {"depth_noise": heavy, "objects": 8, "object_scale": 1.3}
    with pytest.raises(ValueError, match="object scale"):
        scene_options(object_scale=2.0)


# ------------------------------------------------------------------ SimEnv (MuJoCo)
mujoco = pytest.importorskip("mujoco")


def _env(**kw):
    from posevla_core.sim.mujoco.env import SimEnv

    return SimEnv(width=128, height=128, **kw)


def test_depth_noise_is_per_seed_and_leaves_the_clean_path_as_it_was():
    with _env() as env:
        env.reset(1000, "pick")
        rgb0, d0, _ = env.render()
        assert env._sensor_rng is None
        env.depth_noise = DepthNoise()
        frames = []
        for seed in (1000, 1000):
            env.reset(seed, "pick")
            frames.append([env.render()[:2] for _ in range(2)])
        (a1, a2), (b1, b2) = frames
        for (ra, da), (rb, db) in ((a1, b1), (a2, b2)):                 # the same seed: the same faults, frame by frame
            np.testing.assert_array_equal(ra, rb)
            np.testing.assert_array_equal(da, db)
        assert not np.array_equal(a1[1], a2[1], equal_nan=True)         # every frame its own faults
        np.testing.assert_array_equal(a1[0], rgb0)                      # the image is untouched
        lost = np.isnan(a1[1]) & ~np.isnan(d0)
        assert 0.01 < lost.mean() < 0.3 and not (np.isnan(d0) & ~np.isnan(a1[1])).any()
        ok = ~np.isnan(a1[1])
        assert np.all(np.abs(a1[1][ok] - d0[ok]) < 6 * 0.0025 * d0[ok] ** 2 + 1e-4)   # axial noise ~ z^2
        env.depth_noise = None
        env.reset(1000, "pick")                                         # unset again: the clean depth, bit for bit
        rgb, d, _ = env.render()
        np.testing.assert_array_equal(rgb, rgb0)
        np.testing.assert_array_equal(d, d0)


def test_n_objects_stand_on_the_table_apart():
    with _env(objects=8) as env:
        spec = env.reset(1002, "pick")
        assert spec.target == tasks.sample_episode(1002, "pick").target and len(env.object_names()) == 8
        xyz = np.array([env.object_pose(n)[:3, 3] for n in env.object_names()])
        np.testing.assert_allclose(xyz[:, 2], scene.OBJECT_HALF, atol=2e-3)         # resting, none knocked over
        gaps = np.linalg.norm(xyz[:, None, :2] - xyz[None, :, :2], axis=-1) + np.eye(8)
        assert gaps.min() > 0.085
        for name in env.object_names():                                           # every one in view
            u, v = env.object_labels(name)["box_uv"]
            assert 0 < u < 1 and 0 < v < 1


@pytest.mark.parametrize("scale", [0.7, 1.3])
def test_object_scale_reaches_geoms_labels_and_the_expert(scale):
    from posevla_core.sim.demonstrator import run_expert

    with _env() as plain, _env(object_scale=scale) as env:
        g = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_GEOM, "red_cube_geom")
        np.testing.assert_allclose(plain.model.geom_size[g], [scene.OBJECT_HALF] * 3)        # as trained
        np.testing.assert_allclose(env.model.geom_size[g], [scene.OBJECT_HALF * scale] * 3)
        plain.reset(1003, "pick up the red cube")
        env.reset(1003, "pick up the red cube")
        a, b = plain.object_labels(), env.object_labels()
        np.testing.assert_allclose(b["object_size"], [2 * scene.OBJECT_HALF * scale] * 3)
        np.testing.assert_allclose(a["object_size"], [2 * scene.OBJECT_HALF] * 3)
        np.testing.assert_allclose(b["box_uv"], a["box_uv"], atol=0.02)                   # the same place ...
        width = lambda lab: lab["box_xyxy"][2] - lab["box_xyxy"][0]                          # noqa: E731
        assert (width(b) > width(a)) == (scale > 1)                                       # ... a larger / smaller box
        assert abs(env.object_pose("red_cube")[2, 3] - scene.OBJECT_HALF * scale) < 2e-3   # resting on the table
        assert run_expert(env)                                                             # the gripper takes it
    with pytest.raises(ValueError, match="object scale"):
        _env(object_scale=1.6)


# ------------------------------------------------------------------ flags -> launch arguments -> sim_node
def test_flags_reach_the_graph_and_sim_node_parameters():
    from posevla_ros import cli
    from posevla_ros.cli.options import camera_args
    from posevla_ros.launching import graphs
    from posevla_ros.params import SIM_PARAMS

    declared = {n: d for n, d, _ in SIM_PARAMS}
    for k, d in (("depth_noise", ""), ("objects", 0), ("object_scale", 1.0)):
        assert declared[k] == d and all(graphs.ARGS[g][k][0] == d for g in ("sim_demo", "evaluate", "collect"))
    a = cli.build_parser().parse_args(["evaluate", "--sim", "--task", "pick", "--out", "x", "--depth-noise", "heavy",
                                       "--objects", "8", "--object-scale", "1.3"])
    given = camera_args(a)
    assert given == {"depth_noise": "heavy", "objects": 8, "object_scale": 1.3}
    sim = {s.name: s.parameters() for s in graphs.build("evaluate", {"sim": True, "task": "pick", **given})}["sim_node"]
    assert (sim["depth_noise"], sim["objects"], sim["object_scale"]) == ("heavy", 8, 1.3)
    plain = {s.name: s.parameters() for s in graphs.build("evaluate", {"sim": True, "task": "pick"})}["sim_node"]
    assert not {"depth_noise", "objects", "object_scale"} & set(plain)                    # unset: not passed at all
    assert camera_args(cli.build_parser().parse_args(["evaluate", "--sim", "--task", "pick", "--out", "x"])) == {}
    for bad, match in (({"objects": 9}, "objects 9"), ({"depth_noise": "fog"}, "unknown level"),
                       ({"object_scale": 3.0}, "object scale"),
                       ({"objects": 5, "simulator": "robosuite:Lift"}, "mujoco scene only")):
        with pytest.raises(ValueError, match=match):
            graphs.build("evaluate", {"sim": True, "task": "pick", **bad})
    with pytest.raises(ValueError, match="need --sim"):
        real = cli.build_parser().parse_args(["evaluate", "--task", "pick", "--out", "x", "--objects", "5"])
        camera_args(real, sim=False)
