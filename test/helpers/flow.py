"""The flow-expert tests' fixtures: a tiny FlowPolicy on the small PoseVLA (``tiny_flow``, with
the ``EXPERT`` head config), a robot ``STATE`` with its camera ``T_CAM``, random RGB-D
``frame``s, a collated training batch (``batch_of``), the predicted chunk's positions
(``chunk_positions``), and a one-episode LeRobot demo (``write_demo``).

Used by test/unit/posevla_core/policies/flow/test_expert.py,
test/integration/test_expert_training.py and test/e2e/test_vlm_serving.py."""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from posevla_core.policies.flow.codec import robot_state
from posevla_core.policies.flow.modeling import FlowPolicy
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA

EXPERT = {"horizon": 4, "dt": 0.1, "width": 32, "layers": 1, "heads": 2}


def transform(xyz, rotvec=(0.0, 0.0, 0.0)):
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = Rotation.from_rotvec(rotvec).as_matrix(), xyz
    return T


# the hand 0.3 m in front of the base, a camera 0.8 m above it looking down
T_CAM = transform([0.3, 0.0, 0.8], [np.pi, 0.0, 0.0])
STATE = robot_state(transform([0.3, 0.05, 0.2], [np.pi, 0.0, 0.3]), 1.0, T_CAM)


def frame(seed=0, H=48, W=64):
    rng = np.random.default_rng(seed)
    K = np.array([[50.0, 0, W / 2 - 0.5], [0, 50.0, H / 2 - 0.5], [0, 0, 1]])
    return rng.integers(0, 255, (H, W, 3), dtype=np.uint8), rng.uniform(0.6, 1.0, (H, W)).astype(np.float32), K


def tiny_flow(**kw) -> FlowPolicy:
    torch.manual_seed(0)
    return FlowPolicy.attach(PoseVLA(PoseVLAConfig.tiny()), {**EXPERT, **kw})


def batch_of(model, n=2):
    exs = []
    for i in range(n):
        rgb, depth, K = frame(i)
        ex = model.processor.make_example(rgb, depth, K, "pick up the cube")
        ex["chunk"] = np.random.default_rng(i).normal(size=(4, 10)).astype(np.float32)
        ex["state"] = STATE
        exs.append(ex)
    return model.processor.collate(exs)


def chunk_positions(model, state=STATE, seed=1) -> np.ndarray:
    """(H, 3) positions of the chunk ``model`` predicts on ``frame()`` with ``state``, noise seeded."""
    rgb, depth, K = frame()
    p = model.predict(rgb, depth, K, "pick up the cube", generator=torch.Generator().manual_seed(seed), state=state)
    return np.stack([w.pose.position for w in p.waypoints])



def write_demo(root, n_frames=12, fps=5):
    """One LeRobot episode: the end effector moves along x at 0.1 m/s, gripper closes halfway."""
    from posevla_core.data.lerobot import LeRobotWriter, demo_frame

    w = LeRobotWriter(root, fps, extra_info={})
    w.start_episode("pick up the cube")
    T_cam = np.eye(4)
    T_cam[:3, 3] = [0.0, 0.0, -0.8]
    for i in range(n_frames):
        rgb, depth, K = frame(i)
        T = np.eye(4)
        T[:3, 3] = [0.1 * i / fps, 0.0, 0.1]
        f = demo_frame(rgb, depth, K, np.zeros(7), 1.0 if i < n_frames // 2 else 0.0, T, T_cam, "pick up the cube")
        f["action"] = np.zeros(8, np.float32)
        w.add_frame(f)
    w.save_episode()
    w.close()
    return root
