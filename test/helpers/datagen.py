"""Small synthetic datasets for the data / training tests (no simulator: a colored square on
a textured background, its 3D pose consistent with K and a flat depth image)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from posevla_core.data.shards import ShardWriter

CATS = ["cube", "cylinder", "bin", "object"]
SIZE = np.array([0.01, 0.01, 0.01])        # the 8 px square at ~0.8 m


def box_of(uv: np.ndarray, H: int = 48, W: int = 64) -> np.ndarray:
    """Normalized x1, y1, x2, y2 of the 8 px square centered at normalized ``uv``."""
    return np.r_[uv - [4 / W, 4 / H], uv + [4 / W, 4 / H]]


def scene(rng: np.random.Generator, H: int = 48, W: int = 64):
    K = np.array([[50.0, 0, W / 2 - 0.5], [0, 50.0, H / 2 - 0.5], [0, 0, 1]])
    z = float(rng.uniform(0.6, 1.0))
    u, v = float(rng.uniform(12, W - 12)), float(rng.uniform(12, H - 12))
    xyz = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
    rgb = (rng.random((H, W, 3)) * 40).astype(np.uint8)
    cat = int(rng.integers(3))
    color = np.eye(3)[cat] * 220
    rgb[int(v) - 4:int(v) + 4, int(u) - 4:int(u) + 4] = color.astype(np.uint8)
    depth = np.full((H, W), z + 0.05, np.float32)
    depth[int(v) - 4:int(v) + 4, int(u) - 4:int(u) + 4] = z
    yaw = float(rng.uniform(-1, 1))
    quat = np.array([0, 0, np.sin(yaw / 2), np.cos(yaw / 2)])
    return rgb, depth, K, CATS[cat], np.array([(u + 0.5) / W, (v + 0.5) / H]), np.r_[xyz, quat]


def write_grounding(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with ShardWriter(root, "grounding", shard_size=max(2, n // 2)) as w:
        for _ in range(n):
            rgb, depth, K, cat, uv, pose = scene(rng)
            w.add(rgb=rgb, depth=depth, K=K, instruction=f"pick up the {cat}", category=cat, box_uv=uv,
                  box_xyxy=box_of(uv), object_pose=pose, object_size=SIZE, scene_categories=cat)
    return root


def write_motion(root: Path, n: int, seed: int = 0) -> Path:
    """Camera at base (0.8, 0, 0.6) looking down -z_base... any fixed rigid pose works."""
    rng = np.random.default_rng(seed)
    T_base_cam = np.r_[0.8, 0.0, 0.6, 0.7071068, -0.7071068, 0.0, 0.0]   # 180 deg about (1,-1,0)/sqrt2
    with ShardWriter(root, "motion", shard_size=max(2, n // 2)) as w:
        for _ in range(n):
            rgb, depth, K, cat, uv, pose = scene(rng)
            start = rng.uniform([0.3, -0.2, 0.3], [0.5, 0.2, 0.5])
            times = np.arange(4) * 1.0
            pos = start + np.outer(times, [0.05, 0.0, -0.05])
            traj = np.c_[pos, np.tile([1.0, 0, 0, 0], (4, 1))]
            w.add(rgb=rgb, depth=depth, K=K, instruction=f"pick up the {cat}", category=cat, box_uv=uv,
                  box_xyxy=box_of(uv), object_pose=pose, object_size=SIZE, scene_categories=cat,
                  traj_t=times, traj_ee_base=traj,
                  traj_gripper=np.array([1.0, 1.0, 0.0, 0.0]), camera_to_base=T_base_cam, t0=0.0)
    return root
