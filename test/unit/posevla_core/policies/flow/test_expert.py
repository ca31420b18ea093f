"""Flow-matching action expert (posevla_core/policies/flow/modeling.py): action <-> pose round trips, the
policy contract (predict, save/load, load_policy dispatch), knowledge insulation, chunk
targets from a LeRobot dataset, and the expert on the tiny PaliGemma's prefix (training:
test/integration/test_expert_training.py)."""
from __future__ import annotations

import json
import types
from test.helpers.flow import EXPERT, STATE, T_CAM, batch_of, chunk_positions, frame, tiny_flow, transform, write_demo

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from posevla_core.policies.factory import load_policy
from posevla_core.policies.flow.codec import (actions_to_waypoints, matrix_from_rot6d, robot_state, rot6d_from_matrix,
                                              state_vector, waypoints_to_actions)
from posevla_core.policies.flow.configuration import ExpertConfig
from posevla_core.policies.flow.modeling import FlowPolicy
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.poses import Pose, Waypoint


def test_rot6d_and_actions_round_trip():
    R = Rotation.random(20, random_state=0).as_matrix()
    assert np.allclose(matrix_from_rot6d(rot6d_from_matrix(R)), R, atol=1e-9)
    wps = [Waypoint(Pose([0.1 * k, -0.2, 0.8], Rotation.random(random_state=k).as_quat()), float(k % 2))
           for k in range(5)]
    back = actions_to_waypoints(waypoints_to_actions(wps))
    for a, b in zip(wps, back):
        assert np.allclose(a.pose.matrix(), b.pose.matrix(), atol=1e-6) and a.gripper == b.gripper


def test_predict_is_a_chunk_at_the_control_period_without_tokens(tmp_path):
    m = tiny_flow()
    rgb, depth, K = frame()
    p = m.predict(rgb, depth, K, "pick up the cube", generator=torch.Generator().manual_seed(1), state=STATE)
    assert p.valid and len(p.waypoints) == 4 and p.waypoint_dt == pytest.approx(0.1) and p.token_ids == []
    assert p.frame_id == "" and {"prefix", "expert", "total"} <= set(p.timings_ms)
    m.save_pretrained(tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["head"] == "flow" and meta["expert"]["horizon"] == 4 and meta["architecture"] == "small"
    loaded = load_policy(tmp_path / "ck", device="cpu")
    assert isinstance(loaded, FlowPolicy)
    q = loaded.predict(rgb, depth, K, "pick up the cube", generator=torch.Generator().manual_seed(1), state=STATE)
    for a, b in zip(p.waypoints, q.waypoints):
        assert np.allclose(a.pose.position, b.pose.position, atol=1e-5)
    base = tiny_flow(frame="base").predict(rgb, depth, K, "x", state=STATE)
    assert base.frame_id == "base_link"


def test_noise_scale_zero_samples_one_deterministic_chunk():
    """``noise_scale`` 0: every generator gives the same chunk (the flow from x0 = 0); 1: they differ."""
    m = tiny_flow()
    torch.nn.init.normal_(m.expert.action_out.weight, std=0.5)
    assert np.abs(chunk_positions(m, seed=1) - chunk_positions(m, seed=2)).max() > 1e-3
    m.cfg.noise_scale = 0.0
    assert np.array_equal(chunk_positions(m, seed=1), chunk_positions(m, seed=2))
    with pytest.raises(ValueError, match="noise_scale"):
        ExpertConfig(noise_scale=-1.0)


def test_cached_prefix_fast_path_equals_the_training_forward():
    m = tiny_flow(layers=2)
    torch.nn.init.normal_(m.expert.action_out.weight, std=0.5)
    b = batch_of(m)
    with torch.no_grad():
        hidden, mask = m.backbone.prefix_features(b)
        memory, pad = m.expert.encode_memory(hidden, mask)
        point, has = m.expert.resolve_anchor(torch.rand(2, 3), 2, "cpu")
        x, t = torch.randn(2, 4, 10), torch.tensor([0.2, 0.7])
        ref = m.expert.velocity(x, t, memory, pad, point, has, b["state"])
        fast = m.expert.velocity_cached(x, t, m.expert.prefix_cache(memory, pad, point, has, b["state"]))
    assert ref.abs().mean() > 0.1 and torch.allclose(ref, fast, atol=1e-5)


def test_anchored_positions_follow_the_backbones_grounded_point():
    """With ``anchor`` the chunk's positions are offsets from the backbone's 3D point: moving
    the point moves every predicted position by the same vector and leaves the rest alone
    (at init the velocity field is exactly 0, so the chunk is noise around the point); a frame
    without a point (NaN, e.g. no depth) falls back to the training chunks' mean position."""
    m = tiny_flow()
    assert m.cfg.anchor and not tiny_flow(frame="base").cfg.anchor
    m.expert.set_stats([0.1, -0.2, 0.9] + [0.0] * 7, [0.05] * 10)
    assert m.cfg.anchor_default == pytest.approx([0.1, -0.2, 0.9]) and m.cfg.action_mean[:3] == [0.0] * 3
    b = batch_of(m)
    with torch.no_grad():
        hidden, mask, extras = m.backbone.prefix_features(b, with_extras=True)
        plain, _ = m.backbone.prefix_features(b)
    assert torch.allclose(hidden, plain, atol=1e-5)     # the BOS riding along is not seen by the prefix
    point = extras["anchor"]
    assert point.shape == (2, 3) and torch.isfinite(point).all()      # the tiny frames have depth
    shift = torch.tensor([[0.05, -0.03, 0.1]])

    def chunk(a):   # the hand moves with the point: its offset from it stays the same
        return m.expert.sample(hidden, mask, torch.Generator().manual_seed(3), a, b["state"] + F.pad(a - point, (0, 7)))

    c0, c1 = chunk(point), chunk(point + shift)
    assert torch.allclose(c1[..., :3] - c0[..., :3], shift[:, None].expand(2, 4, 3), atol=1e-5)
    assert torch.allclose(c1[..., 3:], c0[..., 3:])
    none = m.expert.sample(hidden, mask, torch.Generator().manual_seed(3), torch.full((2, 3), float("nan")), b["state"])
    assert torch.allclose(none[..., :3].mean((0, 1)), torch.tensor([0.1, -0.2, 0.9]), atol=0.05)
    # a checkpoint's config round-trips the anchor; experts saved before it predict absolute positions
    assert ExpertConfig.from_dict(m.cfg.to_dict()).anchor_default == m.cfg.anchor_default


def test_the_expert_reads_the_robot_state_and_will_not_guess_it(tmp_path):
    """Proprioception: ``state_vector`` is the hand in the action frame laid out as an action
    (checked against scipy); the chunk depends on it; without one a ``state`` expert raises
    (unsure: no chunk) while a ``--no-state`` expert and old checkpoints predict from the image alone."""
    v = state_vector(STATE, "camera")
    T_cam_ee = np.linalg.inv(T_CAM) @ STATE["T_base_ee"]
    assert np.allclose(v[:3], T_cam_ee[:3, 3], atol=1e-6) and v[9] == 1.0
    assert np.allclose(matrix_from_rot6d(v[3:9]), T_cam_ee[:3, :3], atol=1e-6)
    assert np.allclose(state_vector(STATE, "base")[:3], [0.3, 0.05, 0.2], atol=1e-6)
    with pytest.raises(ValueError, match="not finite"):
        state_vector(robot_state(np.full((4, 4), np.nan), 1.0, T_CAM), "camera")

    m = tiny_flow()
    assert m.needs_state and not m.backbone.needs_state
    rgb, depth, K = frame()

    closed = dict(STATE, gripper=0.0)
    # positions are offsets from the anchor, not the hand: at init (velocity 0) moving the hand moves nothing
    moved = dict(STATE, T_base_ee=STATE["T_base_ee"] @ transform([0.05, 0.0, 0.0]))
    assert np.allclose(chunk_positions(m, moved) - chunk_positions(m, STATE), 0.0, atol=1e-6)
    torch.nn.init.normal_(m.expert.action_out.weight, std=0.5)
    assert np.abs(chunk_positions(m, STATE) - chunk_positions(m, closed)).max() > 1e-3
    assert np.allclose(chunk_positions(m, STATE), chunk_positions(m, STATE))
    with pytest.raises(ValueError, match="robot state"):
        m.predict(rgb, depth, K, "pick up the cube")
    blind = tiny_flow(state=False)
    assert not blind.needs_state and blind.predict(rgb, depth, K, "pick up the cube").valid
    # a checkpoint saved before proprioception (no "state" in its expert config) loads without it
    blind.save_pretrained(tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "config.json").read_text())
    del meta["expert"]["state"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(meta))
    assert not load_policy(tmp_path / "old", device="cpu").needs_state


def test_the_expert_refuses_like_the_token_head():
    """The flow head reads the first pose token's P(<no_object>) off the same backbone forward:
    it equals the token head's (its score is 1 - that), and at or above the backbone's
    no_object_threshold the expert answers <no_object> with no chunk (unsure: do not move)."""
    m = tiny_flow()
    rgb, depth, K = frame()
    tok = m.backbone.predict(rgb, depth, K, "pick up the cube")
    p = m.predict(rgb, depth, K, "pick up the cube", generator=torch.Generator().manual_seed(1), state=STATE)
    assert p.score == pytest.approx(tok.score, abs=1e-5) and 0.0 < p.score < 1.0
    assert p.found and len(p.waypoints) == 4
    m.backbone.cfg.no_object_threshold = min(1.0, (1.0 - p.score) * 0.5)
    q = m.predict(rgb, depth, K, "pick up the cube", generator=torch.Generator().manual_seed(1), state=STATE)
    assert not q.found and q.waypoints == [] and q.valid and q.score == pytest.approx(p.score)
    # the training loop's offline metrics count such a refusal on a demo frame instead of failing on it
    demo = types.SimpleNamespace(chunk=np.zeros((4, 10), np.float32))
    assert m.sample_metrics(q, demo) == {"valid": 1.0, "false_refusal": 1.0}
    got = m.sample_metrics(p, demo)
    assert got["false_refusal"] == 0.0 and got["chunk_pos_err_m"] > 0


def test_old_checkpoints_still_load_with_the_token_head():
    m = load_policy("checkpoints/demo", device="cpu")
    assert isinstance(m, PoseVLA) and not isinstance(m, FlowPolicy)


def test_knowledge_insulation_stops_the_expert_gradient_at_the_prefix():
    for insulate in (True, False):
        m = tiny_flow(insulate=insulate).train()
        loss, logs = m.compute_loss(batch_of(m))
        loss.backward()
        assert logs["flow_loss"] > 0
        bb = [p.grad for p in m.backbone.lm.parameters()]
        assert all(g is None for g in bb) == insulate
        assert m.expert.action_in.weight.grad is not None


def test_token_loss_is_kept_when_weighted():
    m = tiny_flow(token_loss_weight=1.0).train()
    b = batch_of(m)
    b["labels"] = torch.from_numpy(np.stack([m.backbone.processor.make_example(*frame(i), "pick up the cube",
                                                                                 target=_target())["labels"]
                                             for i in range(2)]))
    loss, logs = m.compute_loss(b)
    assert "token_loss" in logs and loss.item() > logs["flow_loss"]


def _target():
    from posevla_core.poses import PoseTarget

    return PoseTarget("cube", (0.5, 0.5), Pose([0, 0, 0.8], [0, 0, 0, 1]),
                      [Waypoint(Pose([0, 0.1, 0.7], [0, 0, 0, 1]), 1.0)] * 2, box_xyxy=(0.45, 0.45, 0.55, 0.55),
                      size=np.full(3, 0.05))


def test_chunks_come_from_lerobot_demos_in_camera_or_base_frame(tmp_path):
    from posevla_core.data.sources import SourceConfig, embodiment_samples

    root = write_demo(tmp_path / "demo")
    tok = PoseVLAConfig.tiny().tokens
    cam = embodiment_samples(root, tok, SourceConfig(expert=EXPERT), progress=False)
    base = embodiment_samples(root, tok, SourceConfig(expert={**EXPERT, "frame": "base"}), progress=False)
    c, b = cam[0].chunk, base[0].chunk
    assert c.shape == (4, 10)
    assert np.allclose(b[:, 0], 0.1 * 0.1 * np.arange(1, 5), atol=1e-5)     # x at t0 + k dt, base frame
    assert np.allclose(c[:, 2], 0.1 + 0.8, atol=1e-5)                        # z in the camera frame
    assert b[-1, 9] == 1.0 and base[-1].chunk[-1, 9] == 0.0                  # open early, closed at the end
    assert embodiment_samples(root, tok, SourceConfig(), progress=False)[0].chunk is None
    # each chunk comes with the robot at its frame: frame 1, the hand at x = 0.1 / 5, open, in the base frame
    st = base[1].state
    assert np.allclose(st["T_base_ee"][:3, 3], [0.02, 0.0, 0.1], atol=1e-6) and st["gripper"] == 1.0
    assert np.allclose(state_vector(st, "camera")[:3], [0.02, 0.0, 0.9], atol=1e-6)
    assert base[1].predict_item()["state"] is st


def test_expert_on_the_tiny_paligemma_prefix(tmp_path):
    from test.helpers.tiny_vlm import make_tiny_paligemma

    from posevla_core.config import TokenizerConfig
    from posevla_core.policies.paligemma.configuration import VLMConfig
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA

    base = make_tiny_paligemma(tmp_path / "pg")
    torch.manual_seed(0)
    bb = PaliGemmaPoseVLA.from_base(base, VLMConfig(tokens=TokenizerConfig(box_bins=1024, num_waypoints=1)))
    m = FlowPolicy.attach(bb, EXPERT).train()
    loss, logs = m.compute_loss(batch_of(m))
    loss.backward()
    assert np.isfinite(logs["flow_loss"]) and m.expert.memory[0].weight.shape[1] == bb.prefix_dim
    rgb, depth, K = frame()
    p = m.predict(rgb, depth, K, "pick up the cube", state=STATE)
    assert p.valid and len(p.waypoints) == 4
    m.save_pretrained(tmp_path / "ck")
    assert isinstance(load_policy(tmp_path / "ck", device="cpu"), FlowPolicy)
