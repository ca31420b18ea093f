"""The verifier tests' two-object scene: a red "cube" and a blue "cylinder" on a dark background
(``two_object_scene``), grounding shards of such scenes (``write_scenes``), and a tiny PoseVLA
with and without an ObjectVerifier (``with_verifier``).

Used by test/unit/posevla_core/policies/small/test_verifier.py and
test/integration/test_verifier_training.py."""
from __future__ import annotations

import numpy as np
import torch

from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA

H, W = 48, 64
COLORS = {"cube": (230, 30, 30), "cylinder": (30, 30, 230)}


def two_object_scene(rng):
    """A red "cube" and a blue "cylinder" (8 px squares) apart on a dark background, flat depth."""
    K = np.array([[50.0, 0, W / 2 - 0.5], [0, 50.0, H / 2 - 0.5], [0, 0, 1]])
    rgb = (rng.random((H, W, 3)) * 40).astype(np.uint8)
    depth = np.full((H, W), 0.85, np.float32)
    boxes = {}
    us = rng.permutation([16, 32, 48])[:2]
    for (cat, color), u in zip(COLORS.items(), us):
        v = int(rng.integers(12, H - 12))
        rgb[v - 4:v + 4, u - 4:u + 4] = color
        depth[v - 4:v + 4, u - 4:u + 4] = 0.8
        boxes[cat] = np.array([(u - 4) / W, (v - 4) / H, (u + 4) / W, (v + 4) / H])
    return rgb, depth, K, boxes


def write_scenes(root, n, seed=0):
    from posevla_core.data.shards import ShardWriter

    rng = np.random.default_rng(seed)
    with ShardWriter(root, "grounding", shard_size=max(2, n // 2)) as w:
        for _ in range(n):
            rgb, depth, K, boxes = two_object_scene(rng)
            cat = str(rng.choice(list(boxes)))
            b = boxes[cat]
            scene_boxes = np.full((3, 4), np.nan)
            scene_boxes[:2] = [boxes["cube"], boxes["cylinder"]]
            w.add(rgb=rgb, depth=depth, K=K, instruction=f"pick up the {cat}", category=cat,
                  box_uv=np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]), box_xyxy=b,
                  object_pose=np.r_[0, 0, 0.8, 0, 0, 0, 1], object_size=np.full(3, 0.01),
                  scene_categories="cube|cylinder", scene_box_xyxy=scene_boxes,
                  scene_object_pose=np.tile(np.r_[0, 0, 0.8, 0, 0, 0, 1], (3, 1)),
                  scene_object_size=np.full((3, 3), 0.01))
    return root


def with_verifier(bias: float | None = None, **kw) -> PoseVLA:
    torch.manual_seed(0)
    m = PoseVLA(PoseVLAConfig.tiny()).eval()
    v = PoseVLA(PoseVLAConfig(**{**PoseVLAConfig.tiny().__dict__, "verifier": True, **kw})).eval()
    v.load_state_dict(m.state_dict(), strict=False)
    if bias is not None:               # P(match) = sigmoid(bias) whatever the input
        torch.nn.init.zeros_(v.verifier.head[-1].weight)
        torch.nn.init.constant_(v.verifier.head[-1].bias, bias)
    return m, v
