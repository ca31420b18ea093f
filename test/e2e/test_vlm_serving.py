"""A PaliGemma Pose-VLA checkpoint (tiny, random, built offline) served exactly like the
small model: policy_node loads it from its `checkpoint` parameter and answers real topics
in its own process, and `posevla demo --checkpoint` runs a closed-loop episode with it."""
from __future__ import annotations

import json
from test.helpers.policy_probe import first_prediction
from test.helpers.tiny_vlm import make_tiny_vlm_checkpoint

import numpy as np
import pytest

pytestmark = pytest.mark.slow
H, W = 48, 64
K = np.array([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]])
FRAME = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def vlm_checkpoint(tmp_path_factory):
    return make_tiny_vlm_checkpoint(tmp_path_factory.mktemp("vlm"))


def served_answer(ros_context, node_process, spin_until, checkpoint, instruction: str):
    """The first PosePrediction a policy_node process with ``checkpoint`` publishes for a random
    RGB-D frame (and the process, for its log)."""
    proc = node_process("posevla_ros.nodes.policy_node", "-p", f"checkpoint:={checkpoint}", "-p", "device:=cpu",
                        "-p", f"instruction:={instruction}", "-p", "max_image_age_s:=30.0")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    depth = rng.uniform(0.4, 1.5, (H, W)).astype(np.float32)
    preds = first_prediction(ros_context, proc, spin_until, rgb, depth, K, FRAME)
    assert preds, proc.output()
    return preds[0], proc


def test_policy_node_process_serves_a_paligemma_checkpoint(ros_context, vlm_checkpoint, node_process, spin_until):
    assert json.loads((vlm_checkpoint / "config.json").read_text())["architecture"] == "paligemma"
    p, _ = served_answer(ros_context, node_process, spin_until, vlm_checkpoint, "pick up the red cube")
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


def test_paligemma_flow_head_trains_loads_and_is_served(ros_context, tmp_path, node_process, spin_until):
    """`posevla train --model paligemma --head flow` on the tiny PaliGemma: it trains and saves, the
    checkpoint loads as a flow head on the PaliGemma backbone, and policy_node serves it in its own
    process (with the node's default decoding: the expert's Euler steps compiled at start)."""
    from test.helpers.tiny_vlm import make_tiny_paligemma
    from test.helpers.flow import write_demo

    from posevla_core.policies.factory import load_policy
    from posevla_core.policies.flow.modeling import FlowPolicy
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA
    from posevla_ros.cli import main

    base = make_tiny_paligemma(tmp_path / "pg")
    data = write_demo(tmp_path / "demo", n_frames=42)
    out = tmp_path / "flow"
    assert main(["train", "--model", "paligemma", "--base", str(base), "--stage", "embodiment", "--head", "flow",
                 "--data", str(data), "--out", str(out), "--steps", "6", "--batch-size", "2", "--chunk-horizon", "4",
                 "--no-state"]) == 0
    m = load_policy(out, device="cpu")
    assert isinstance(m, FlowPolicy) and isinstance(m.backbone, PaliGemmaPoseVLA) and m.cfg.horizon == 4
    assert np.isfinite(json.loads((out / "offline_metrics.json").read_text())["chunk_pos_err_m"])
    p, proc = served_answer(ros_context, node_process, spin_until, out, "pick up the cube")
    assert p.instruction == "pick up the cube" and len(p.token_ids) == 0      # a chunk: no pose tokens
    assert len(p.waypoints) == (4 if p.object_found else 0)
    assert "could not compile" not in proc.output()
