"""Datasets: trajectory -> camera-frame waypoints against hand-computed cases, the shard
format round trip, label-consistent augmentation, and errors that name the bad file."""
from __future__ import annotations

import json
from test.helpers.datagen import write_grounding, write_motion

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.spatial.transform import Rotation

from posevla_core.config import TokenizerConfig
from posevla_core.data import DataFormatError, ShardWriter, iter_shard_samples, load_samples
from posevla_core.data.augment import crop, random_crop_resize
from posevla_core.data.motion import waypoints_from_trajectory
from posevla_core.geometry import se3
from posevla_core.geometry.se3 import interpolate_poses as sample_poses, pose7_to_T
from posevla_core.poses import Pose, PoseTarget


def test_waypoints_hand_computed():
    # straight line x: 0 -> 2 m over 2 s in base; camera at (1, 2, 3) rotated +90 deg about z.
    times = np.array([0.0, 2.0])
    T = np.stack([se3.make_T([0, 0, 0], [0, 0, 0, 1]), se3.make_T([2, 0, 0], [0, 0, 0, 1])])
    T_base_cam = se3.make_T([1, 2, 3], Rotation.from_euler("z", 90, degrees=True).as_quat())
    wps = waypoints_from_trajectory(times, T, np.array([1.0, 0.0]), T_base_cam, t0=0.0, num=4, dt=0.5)
    # p_cam = R^T (p - t), R = Rz(90): R^T (x, y, z) = (y, -x, z)
    expect = [(-2.0, 0.5, -3.0), (-2.0, 0.0, -3.0), (-2.0, -0.5, -3.0), (-2.0, -1.0, -3.0)]
    for wp, e in zip(wps, expect):
        np.testing.assert_allclose(wp.pose.position, e, atol=1e-12)
        # camera-frame orientation of an identity base orientation is R^T = Rz(-90)
        assert se3.rotation_angle_between(wp.pose.quat_xyzw, Rotation.from_euler("z", -90, degrees=True).as_quat()) < 1e-9
    # gripper: zero-order hold of [open at 0, closed at 2]: 0.5, 1.0, 1.5 open, 2.0 closed
    assert [w.gripper for w in wps] == [1.0, 1.0, 1.0, 0.0]
    # past the end the last pose is held
    late = waypoints_from_trajectory(times, T, np.array([1.0, 0.0]), T_base_cam, t0=1.5, num=3, dt=1.0)
    for wp in late:
        np.testing.assert_allclose(wp.pose.position, (-2.0, -1.0, -3.0), atol=1e-12)


def test_rotation_interpolation_is_slerp():
    times = np.array([0.0, 1.0])
    T = np.stack([np.eye(4), se3.make_T([0, 0, 0], Rotation.from_euler("z", 90, degrees=True).as_quat())])
    mid = sample_poses(times, T, np.array([0.5]))[0]
    np.testing.assert_allclose(mid[:3, :3], Rotation.from_euler("z", 45, degrees=True).as_matrix(), atol=1e-12)
    with pytest.raises(ValueError, match="increasing"):
        sample_poses(np.array([0.0, 0.0]), T, np.array([0.5]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=6, max_size=6), st.floats(0.0, 3.0), st.floats(0.1, 1.0))
def test_waypoints_map_back_to_base(v, t0, dt):
    """Property: camera-frame waypoints mapped back by T_base_cam are the base trajectory samples."""
    T_base_cam = se3.make_T(v[:3], Rotation.from_rotvec(v[3:]).as_quat())
    times = np.array([0.0, 1.0, 2.5, 4.0])
    T = np.stack([se3.make_T([0.1 * i, -0.2 * i, 0.3], Rotation.from_rotvec([0, 0.3 * i, 0.1]).as_quat())
                  for i in range(4)])
    wps = waypoints_from_trajectory(times, T, np.ones(4), T_base_cam, t0, 3, dt)
    ref = sample_poses(times, T, t0 + dt * np.arange(1, 4))
    for wp, R in zip(wps, ref):
        np.testing.assert_allclose(T_base_cam @ wp.pose.matrix(), R, atol=1e-9)


def test_shard_round_trip(tmp_path):
    root = write_motion(tmp_path / "m", 5)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["kind"] == "motion" and meta["num_samples"] == 5 and len(meta["shards"]) >= 2
    samples = list(iter_shard_samples(root))
    assert len(samples) == 5
    s = samples[0]
    assert s["rgb"].dtype == np.uint8 and s["depth"].dtype == np.float32
    assert abs(float(np.nanmax(s["depth"])) - float(s["object_pose"][2] + 0.05)) < 1e-3   # mm precision
    tok = TokenizerConfig(num_waypoints=3, waypoint_dt=1.0)
    loaded = load_samples(root, "motion", tok, progress=False)
    wp = loaded[0].target.waypoints
    assert len(wp) == 3 and [w.gripper for w in wp] == [1.0, 0.0, 0.0]
    # the base trajectory goes +x, -z in base; mapped through the fixed camera pose
    T_base_cam = pose7_to_T(s["camera_to_base"])
    base = T_base_cam @ wp[0].pose.matrix()
    np.testing.assert_allclose(base[:3, 3], s["traj_ee_base"][1, :3], atol=1e-9)


def test_depth_nan_survives(tmp_path):
    d = np.full((8, 8), 0.5, np.float32)
    d[0, 0], d[1, 1], d[2, 2] = np.nan, -1.0, np.inf
    with ShardWriter(tmp_path / "g", "grounding") as w:
        w.add(rgb=np.zeros((8, 8, 3), np.uint8), depth=d, K=np.eye(3), instruction="x", category="cube",
              box_uv=np.array([0.5, 0.5]), box_xyxy=np.zeros(4), object_pose=np.r_[0, 0, 1, 0, 0, 0, 1.0],
              object_size=np.full(3, 0.05))
    back = next(iter_shard_samples(tmp_path / "g"))["depth"]
    assert np.isnan(back[0, 0]) and np.isnan(back[1, 1]) and np.isnan(back[2, 2]) and back[3, 3] == 0.5


def test_errors_name_the_file(tmp_path):
    tok = TokenizerConfig()
    with pytest.raises(DataFormatError, match="does not exist"):
        load_samples(tmp_path / "nope", "grounding", tok)
    root = write_grounding(tmp_path / "g", 4)
    shard = root / "shard-00001.npz"
    shard.write_bytes(shard.read_bytes()[:100])                 # truncated
    with pytest.raises(DataFormatError, match="shard-00001.npz"):
        load_samples(root, "grounding", tok, progress=False)
    shard.unlink()
    with pytest.raises(DataFormatError, match="shard-00001.npz.*missing"):
        load_samples(root, "grounding", tok, progress=False)
    (root / "meta.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="meta.json"):
        load_samples(root, "grounding", tok, progress=False)
    # a grounding dataset cannot train the motion stage
    with pytest.raises(DataFormatError, match="cannot train the motion stage"):
        load_samples(write_grounding(tmp_path / "g2", 2), "motion", tok, progress=False)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 20), st.integers(0, 10), st.integers(30, 44), st.integers(30, 38),
       st.floats(-0.2, 0.2), st.floats(-0.2, 0.2), st.floats(0.4, 2.0))
def test_crop_keeps_projection_consistent(x0, y0, w, h, x, y, z):
    """A 3D point projects to the same pixel of the cropped image with the updated K, and the
    normalized box center follows it."""
    W, H = 64, 48
    if x0 + w > W or y0 + h > H:
        return
    K = np.array([[50.0, 0, 31.5], [0, 52.0, 23.5], [0, 0, 1]])
    p = np.array([x, y, z])
    uv = K @ p / z
    c = ((uv[0] + 0.5) / W, (uv[1] + 0.5) / H)
    target = PoseTarget("cube", c, Pose(p, [0, 0, 0, 1]), box_xyxy=(c[0] - 0.1, c[1] - 0.1, c[0] + 0.1, c[1] + 0.1))
    rgb = np.zeros((H, W, 3), np.uint8)
    _, _, K2, t2 = crop(rgb, None, K, target, x0, y0, w, h)
    uv2 = K2 @ p / z
    np.testing.assert_allclose(uv2[:2], uv[:2] - [x0, y0], atol=1e-9)
    np.testing.assert_allclose([t2.box_uv[0] * w - 0.5, t2.box_uv[1] * h - 0.5], uv2[:2], atol=1e-9)
    # the box corners move with the crop, and keep their size in pixels
    np.testing.assert_allclose([(t2.box_xyxy[2] - t2.box_xyxy[0]) * w, (t2.box_xyxy[3] - t2.box_xyxy[1]) * h],
                               [0.2 * W, 0.2 * H], atol=1e-9)
    np.testing.assert_array_equal(t2.object_pose.position, p)     # 3D labels do not move


def test_random_crop_resize_keeps_box_inside():
    rng = np.random.default_rng(0)
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    t = PoseTarget("cube", (0.95, 0.9), Pose([0.3, 0.2, 1.0], [0, 0, 0, 1]))
    for _ in range(20):
        rgb, depth, K2, t2 = random_crop_resize(rng, np.zeros((48, 64, 3), np.uint8), np.ones((48, 64)), K, t)
        assert rgb.shape == (48, 64, 3) and depth.shape == (48, 64)
        assert 0 <= t2.box_uv[0] <= 1 and 0 <= t2.box_uv[1] <= 1
        # K scaled with the resize: the principal point stays inside the image
        assert 0 < K2[0, 2] < 64 and 0 < K2[1, 2] < 48 and K2[0, 0] >= K[0, 0]
