"""A PaliGemma Pose-VLA checkpoint (tiny, random, built offline) served exactly like the
small model: policy_node loads it from its `checkpoint` parameter and answers real topics
in its own process, and `posevla demo --checkpoint` runs a closed-loop episode with it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from policy_probe import first_prediction
from tiny_vlm import make_tiny_vlm_checkpoint

pytestmark = pytest.mark.slow
H, W = 48, 64
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
FRAME = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def vlm_checkpoint(tmp_path_factory):
    return make_tiny_vlm_checkpoint(tmp_path_factory.mktemp("vlm"))


def test_policy_node_process_serves_a_paligemma_checkpoint(ros_context, vlm_checkpoint, node_process, spin_until):
    assert json.loads((vlm_checkpoint / "config.json").read_text())["architecture"] == "paligemma"
    proc = node_process("posevla_ros.policy_node", "-p", f"checkpoint:={vlm_checkpoint}", "-p", "device:=cpu",
                        "-p", "instruction:=pick up the red cube", "-p", "max_image_age_s:=30.0")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    depth = rng.uniform(0.4, 1.5, (H, W)).astype(np.float32)
    preds = first_prediction(ros_context, proc, spin_until, rgb, depth, K, FRAME)
    assert preds, proc.output()
    p = preds[0]
    assert p.header.frame_id == FRAME and p.instruction == "pick up the red cube"
    # a random model may answer <no_object> (then nothing else), or a full act-grammar answer
    if p.object_found:
        assert len(p.token_ids) == 14 + 7 * 6 + 1 and len(p.waypoints) == 6
    else:
        assert len(p.token_ids) == 1 and len(p.waypoints) == 0


def test_demo_runs_with_a_paligemma_checkpoint(vlm_checkpoint, tmp_path):
    from posevla_ros.cli import main

    out = tmp_path / "demo"
    main(["demo", "--checkpoint", str(vlm_checkpoint), "--episodes", "1", "--timeout", "8", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 1 and str(vlm_checkpoint) in json.dumps(summary)
