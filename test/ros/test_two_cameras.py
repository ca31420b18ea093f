"""Two cameras end to end (a scene camera plus a wrist camera): policy_node subscribes to a list
of camera namespaces and serves a PaliGemma checkpoint with the second camera as a view, in the
first camera's frame; a one-camera model with two namespaces is one clear error at start; a
two-camera LeRobot dataset trains the PaliGemma model with both cameras."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from test.helpers.models import forbid_no_object
from test.helpers.lerobot import LEROBOT_PY
from test.helpers.paths import REPO

import numpy as np
import pytest

from posevla_core.config import TokenizerConfig
from posevla_core.data import LeRobotWriter, load_samples
from posevla_core.data.lerobot import camera_keys, demo_frame
from posevla_core.geometry import se3
from posevla_ros.ros_io.topics import camera_topics

H, W = 48, 64
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
KW = np.array([[30.0, 0, 20.0], [0, 30.0, 15.0], [0, 0, 1]])      # the wrist camera: 40 x 30
FRAME, WRIST_FRAME = "camera_color_optical_frame", "wrist_camera_color_optical_frame"
INSTRUCTION = "pick up the red cube"


def test_camera_topics_default_is_the_one_camera_layout():
    assert camera_topics() == camera_topics("/camera") == camera_topics("camera/") == {
        "rgb": "/camera/color/image_raw", "depth": "/camera/aligned_depth_to_color/image_raw",
        "info": "/camera/color/camera_info"}
    assert camera_topics("/wrist_camera")["info"] == "/wrist_camera/color/camera_info"
    with pytest.raises(ValueError, match="empty"):
        camera_topics("/")


@pytest.mark.slow
def test_policy_node_serves_paligemma_with_a_wrist_camera(ros_context, tmp_path, node_process, spin_until):
    from test.helpers.policy_probe import first_prediction
    from test.helpers.tiny_vlm import make_tiny_vlm_checkpoint

    from posevla_core.policies.factory import load_policy

    ckpt = make_tiny_vlm_checkpoint(tmp_path / "vlm")
    proc = node_process("posevla_ros.nodes.policy_node", "-p", f"checkpoint:={ckpt}", "-p", "device:=cpu",
                        "-p", f"instruction:={INSTRUCTION}", "-p", "max_image_age_s:=30.0",
                        "-p", "camera_namespaces:=[/camera, /wrist_camera]")
    rng = np.random.default_rng(0)
    rgb, depth = rng.integers(0, 256, (H, W, 3), dtype=np.uint8), rng.uniform(0.4, 1.5, (H, W)).astype(np.float32)
    wrist = {"rgb": rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
             "depth": rng.uniform(0.1, 0.5, (30, 40)).astype(np.float32), "K": KW}
    preds = first_prediction(ros_context, proc, spin_until, rgb, depth, K, FRAME,
                             extra=[{"ns": "/wrist_camera", "frame_id": WRIST_FRAME, **wrist}])
    assert preds, proc.output()
    p = preds[0]
    assert p.header.frame_id == FRAME and p.instruction == INSTRUCTION     # the first camera's frame
    assert "cameras=['/camera', '/wrist_camera']" in proc.output()
    # the same tokens as the model called directly with the wrist camera as a view (that the
    # node really passes the view: test_policy_node_feeds_the_second_namespace_as_a_view)
    model = load_policy(ckpt, device="cpu")
    direct = model.predict(rgb, depth, K, INSTRUCTION, views=[wrist])
    assert list(p.token_ids) == list(direct.token_ids)


class RecordingPolicy:
    """The real model, with a record of the camera inputs of every ``predict`` call (to check
    what the node fed it: a random tiny model may answer the same tokens with or without a view)."""

    def __init__(self, model) -> None:
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict(self, rgb, depth, K, instruction, views=None, **kw):
        self.calls.append({"rgb": rgb, "depth": depth, "K": K, "views": views})
        return self.model.predict(rgb, depth, K, instruction, views=views, **kw)


@pytest.mark.slow
def test_policy_node_feeds_the_second_namespace_as_a_view(ros_context, tmp_path, spin_until):
    from test.helpers.tiny_vlm import make_tiny_vlm_checkpoint

    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from posevla_core.policies.factory import load_policy
    from posevla_ros.msg import PosePrediction
    from posevla_ros.nodes.policy_node import PolicyNode
    from posevla_ros.ros_io import conversions as conv

    model = RecordingPolicy(load_policy(make_tiny_vlm_checkpoint(tmp_path / "vlm"), device="cpu"))
    params = {"camera_namespaces": ["/camera", "/wrist_camera"], "instruction": INSTRUCTION, "rate_hz": 0.0,
              "max_image_age_s": 30.0}
    node = PolicyNode(model=model, context=ros_context,
                      parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    io = Node("two_camera_io", context=ros_context)
    preds = []
    io.create_subscription(PosePrediction, "/posevla/prediction", preds.append, QoSProfile(depth=10))
    rng = np.random.default_rng(1)
    cams = [("/camera", FRAME, rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
             rng.uniform(0.4, 1.5, (H, W)).astype(np.float32), K),
            ("/wrist_camera", WRIST_FRAME, rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
             rng.uniform(0.1, 0.5, (30, 40)).astype(np.float32), KW)]
    pubs = {(ns, k): io.create_publisher(T, camera_topics(ns)[k], qos_profile_sensor_data)
            for ns, *_ in cams for k, T in (("rgb", Image), ("depth", Image), ("info", CameraInfo))}
    ex = MultiThreadedExecutor(num_threads=3, context=ros_context)
    ex.add_node(node)
    ex.add_node(io)
    try:
        assert spin_until(ex, lambda: all(p.get_subscription_count() for p in pubs.values()), 30)
        stamp = io.get_clock().now().to_msg()
        for ns, frame_id, rgb, depth, k in cams:
            for key, m in (("info", conv.K_to_camera_info(k, rgb.shape[1], rgb.shape[0])),
                           ("depth", conv.depth_to_image(depth)), ("rgb", conv.rgb_to_image(rgb))):
                m.header.stamp, m.header.frame_id = stamp, frame_id
                pubs[(ns, key)].publish(m)
        assert spin_until(ex, lambda: preds, 120), node.outcomes()
    finally:
        ex.shutdown()
        node.destroy_node()
        io.destroy_node()
    assert preds[0].header.frame_id == FRAME and len(model.calls) == 1
    call = model.calls[0]
    np.testing.assert_array_equal(call["rgb"], cams[0][2])
    np.testing.assert_allclose(call["K"], K)
    assert call["views"] is not None and len(call["views"]) == 1
    view = call["views"][0]
    np.testing.assert_array_equal(view["rgb"], cams[1][2])
    np.testing.assert_array_equal(view["depth"], cams[1][3])
    np.testing.assert_allclose(view["K"], KW)


@pytest.mark.parametrize("namespaces, error", [([], "empty"), (["/camera", "camera/"], "twice"),
                                               (["/camera", "/"], "empty")])
def test_bad_camera_namespaces_are_refused_at_start(ros_context, namespaces, error):
    from rclpy.parameter import Parameter

    from posevla_ros.nodes.policy_node import PolicyNode

    p = Parameter("camera_namespaces", Parameter.Type.STRING_ARRAY, namespaces)
    with pytest.raises(ValueError, match=error):
        PolicyNode(model=object(), context=ros_context, parameter_overrides=[p])


@pytest.mark.slow
def test_one_camera_model_with_two_namespaces_is_one_error_at_start(node_process):
    proc = node_process("posevla_ros.nodes.policy_node", "-p", "device:=cpu",
                        "-p", "camera_namespaces:=[/camera, /wrist_camera]")
    rc = proc.proc.wait(timeout=120)
    out = proc.output()
    assert rc == 1, out
    assert "takes at most 1" in out and "Traceback" not in out, out
    assert len([ln for ln in out.splitlines() if "takes at most" in ln]) == 1


def two_camera_frame(rng, k: int, task: str) -> dict:
    T_ee = se3.make_T([0.4 + 0.01 * k, 0.02 * k, 0.3], [1.0, 0, 0, 0])
    T_cam = se3.make_T([1.0, 0.0, 0.8], [0.0, 0.7071068, 0.0, 0.7071068])
    wrist = {"rgb": rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
             "depth": rng.uniform(0.1, 0.5, (30, 40)).astype(np.float32), "K": KW}
    f = demo_frame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), rng.uniform(0.4, 1.5, (H, W)).astype(np.float32),
                   K, np.full(7, 0.1 * k), 1.0 if k < 4 else 0.3, T_ee, T_cam, task, views={"wrist": wrist})
    f["action"] = np.zeros(8, np.float32)
    return f


def write_two_camera_demos(root: Path, episodes: int = 2, length: int = 8) -> Path:
    rng = np.random.default_rng(0)
    w = LeRobotWriter(root, 10, repo_id="test/two_cameras")
    for _ in range(episodes):
        w.start_episode(INSTRUCTION)
        for k in range(length):
            w.add_frame(two_camera_frame(rng, k, INSTRUCTION))
        w.save_episode()
    w.close()
    return root


def test_two_camera_demos_load_as_samples_with_a_view(tmp_path):
    root = write_two_camera_demos(tmp_path / "ds", episodes=1, length=4)
    info = json.loads((root / "meta" / "info.json").read_text())
    keys = camera_keys("wrist")
    assert info["features"][keys["rgb"]]["dtype"] == "image" and info["features"][keys["depth"]]["dtype"] == "image"
    samples = load_samples(root, "embodiment", TokenizerConfig(num_waypoints=2), progress=False)
    assert len(samples) == 4 and all(len(s.views) == 1 for s in samples)
    v = samples[0].views[0]
    assert v["rgb"].shape == (30, 40, 3) and v["depth"].shape == (30, 40)
    np.testing.assert_allclose(v["K"], KW)
    np.testing.assert_allclose(v["depth"], two_camera_frame(np.random.default_rng(0), 0, "x")
                               ["observation.wrist.depth"], atol=1e-3)                  # 16-bit mm PNG
    assert samples[0].predict_item()["views"] is samples[0].views


@pytest.mark.slow
def test_small_model_refuses_two_camera_data(tmp_path):
    from posevla_core.train.stages import train_main

    root = write_two_camera_demos(tmp_path / "ds", episodes=1, length=4)
    with pytest.raises(ValueError, match="cameras"):
        train_main("embodiment", root, str(tmp_path / "out"), steps=1, batch_size=2, progress=False)


@pytest.mark.slow
def test_paligemma_trains_on_two_camera_demos_and_predicts_with_the_view(tmp_path):
    from test.helpers.tiny_vlm import make_tiny_paligemma
    from test.helpers.vlm_training import MODEL, falls, kw, losses

    from posevla_core.policies.factory import load_policy
    from posevla_core.train.stages import train_main

    root = write_two_camera_demos(tmp_path / "ds")
    base = make_tiny_paligemma(tmp_path / "paligemma")
    out = tmp_path / "ckpt"
    train_main("embodiment", root, str(out), steps=20, architecture="paligemma", base=str(base), model=MODEL,
               **kw(augment=True))
    assert falls(out), losses(out)
    policy = load_policy(out, device="cpu")
    s = load_samples(root, "embodiment", policy.cfg.tokens, progress=False)[0]
    forbid_no_object(policy)          # 20 steps do not make a model sure of anything
    pred = policy.predict(s.rgb, s.depth, s.K, s.instruction, views=s.views)
    assert pred.valid and pred.found and len(pred.waypoints) == 2
    with pytest.raises(ValueError, match="at most 2"):
        policy.predict(s.rgb, s.depth, s.K, s.instruction, views=s.views * 2)


@pytest.mark.slow
@pytest.mark.skipif(not LEROBOT_PY.is_file(), reason=".venv-lerobot (real lerobot package) not built")
def test_real_lerobot_loads_two_camera_demos(tmp_path):
    root = write_two_camera_demos(tmp_path / "ds", episodes=1, length=4)
    r = subprocess.run([str(LEROBOT_PY), str(REPO / "scripts" / "check_lerobot_load.py"), str(root)],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    shapes = json.loads(r.stdout.strip().splitlines()[-1])["shapes"]
    assert shapes[camera_keys("wrist")["rgb"]] == [3, 30, 40] and shapes["observation.images.color"] == [3, H, W]


@pytest.mark.slow
def test_sim_renders_the_wrist_camera_in_a_normal_episode():
    pytest.importorskip("mujoco")
    from posevla_core.sim.mujoco.env import SimEnv

    with SimEnv(width=64, height=48) as env:
        env.reset(seed=3)
        rgb, depth, k = env.render()
        wrgb, wdepth, wk = env.render(wrist=True)
        assert wrgb.shape == rgb.shape and wdepth.shape == depth.shape and not np.array_equal(wrgb, rgb)
        np.testing.assert_allclose(wk, k)                       # same size and field of view
        assert np.nanmin(wdepth) > 0 and np.nanmin(wdepth) < np.nanmin(depth)   # it is close to the scene
        T_fixed, T_wrist = env.camera_pose_in_base(), env.camera_pose_in_base(wrist=True)
        assert np.linalg.norm(T_fixed[:3, 3] - T_wrist[:3, 3]) > 0.2
        np.testing.assert_array_equal(env.render()[0], rgb)     # the fixed camera is unchanged


@pytest.mark.slow
def test_sim_node_wrist_camera_drives_a_two_camera_policy_node(ros_context, tmp_path, node_process, spin_until):
    """sim_node publishes /wrist_camera/... next to /camera/...; policy_node with both namespaces
    and a PaliGemma checkpoint answers in the fixed camera's frame."""
    pytest.importorskip("mujoco")
    from test.helpers.tiny_vlm import make_tiny_vlm_checkpoint

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    from posevla_ros.msg import PosePrediction

    ckpt = make_tiny_vlm_checkpoint(tmp_path / "vlm")
    sim = node_process("posevla_ros.nodes.sim_node", "-p", "width:=64", "-p", "height:=48",
                       "-p", "wrist_camera_ns:=/wrist_camera")
    policy = node_process("posevla_ros.nodes.policy_node", "-p", f"checkpoint:={ckpt}", "-p", "device:=cpu",
                          "-p", f"instruction:={INSTRUCTION}", "-p", "max_image_age_s:=0.0",
                          "-p", "camera_namespaces:=[/camera, /wrist_camera]")
    node = Node("two_camera_sim_client", context=ros_context)
    got: dict = {"preds": []}
    node.create_subscription(Image, "/wrist_camera/color/image_raw", lambda m: got.__setitem__("wrist", m), 5)
    node.create_subscription(PosePrediction, "/posevla/prediction", got["preds"].append, QoSProfile(depth=10))
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    try:
        assert spin_until(ex, lambda: got["preds"] and "wrist" in got or not (sim.alive() and policy.alive()), 180), \
            sim.output() + policy.output()
        assert got["preds"], sim.output() + policy.output()
        assert got["wrist"].header.frame_id == "wrist_camera_color_optical_frame"
        assert (got["wrist"].width, got["wrist"].height) == (64, 48)
        assert got["preds"][0].header.frame_id == "camera_color_optical_frame"
    finally:
        ex.shutdown()
        node.destroy_node()


@pytest.mark.slow
def test_sim_expert_demos_with_the_wrist_camera(tmp_path):
    pytest.importorskip("mujoco")
    from posevla_core.train.pipeline import generate_demos

    r = generate_demos(tmp_path / "demos", 1, 0.4, fps=2, width=32, height=24, progress=False, wrist=True)
    assert r["saved"] == 1
    samples = load_samples(tmp_path / "demos", "embodiment", TokenizerConfig(num_waypoints=2), progress=False)
    assert samples and all(len(s.views) == 1 and s.views[0]["rgb"].shape == (24, 32, 3) for s in samples)
    assert samples[0].supervise_grounding and not np.array_equal(samples[0].views[0]["rgb"], samples[0].rgb)
