"""Training the flow expert: the CLI trains a flow head from a token checkpoint, compiled Euler
steps give the same chunk, and the flow loss falls on a fixed batch."""
from __future__ import annotations

import json
import numpy as np
import pytest
import torch
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.flow.modeling import FlowPolicy
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.policies.factory import load_policy
from test.helpers.flow import STATE, batch_of, chunk_positions, frame, tiny_flow, write_demo


@pytest.mark.slow
def test_train_cli_head_flow_from_a_token_checkpoint(tmp_path):
    from posevla_core.train.__main__ import main as train_cli
    from posevla_core.train.stages import train_main

    root = write_demo(tmp_path / "demo", n_frames=42)     # 21 samples at frame_stride 2: one is validation
    init = tmp_path / "init"
    torch.manual_seed(0)
    PoseVLA(PoseVLAConfig.tiny()).save_pretrained(init)
    out = tmp_path / "flow"
    train_cli(["--stage", "embodiment", "--head", "flow", "--init", str(init), "--data", str(root),
               "--out", str(out), "--steps", "4", "--batch-size", "2", "--chunk-horizon", "4",
               "--token-loss-weight", "0.5", "--noise-scale", "0"])
    m = load_policy(out, device="cpu")
    assert isinstance(m, FlowPolicy) and m.cfg.horizon == 4 and m.cfg.token_loss_weight == 0.5
    assert m.cfg.noise_scale == 0.0
    assert np.allclose(m.cfg.anchor_default[2], 0.9, atol=1e-3)              # stats from the demo chunks
    metrics = json.loads((out / "offline_metrics.json").read_text())
    assert "chunk_pos_err_m" in metrics
    # resume of a flow run (interrupted after its step-2 checkpoint) finishes the same run
    from posevla_core.train.trainer import Interrupted

    run = tmp_path / "resumed"
    kw = dict(batch_size=2, head="flow", expert={"horizon": 4}, save_every=2, eval_every=0, progress=False)
    with pytest.raises(Interrupted):
        train_main("embodiment", root, str(run), init=str(init), steps=4, stop_at=3, **kw)
    r = train_main("embodiment", root, str(run), init=str(init), steps=4, **kw)
    assert r["steps"] == 4
    # frozen backbone: prefixes cached once, only the expert trains, the backbone is unchanged
    cached = tmp_path / "cached"
    train_cli(["--stage", "embodiment", "--head", "flow", "--cache-prefix", "--init", str(init), "--data", str(root),
               "--out", str(cached), "--steps", "3", "--batch-size", "2", "--chunk-horizon", "4"])
    c = load_policy(cached, device="cpu")
    ref = load_policy(init, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(c.backbone.state_dict().values(), ref.state_dict().values()))
    with pytest.raises(ValueError, match="cache_prefix"):
        train_main("embodiment", root, str(tmp_path / "bad"), init=str(init), steps=1, head="flow", cache_prefix=True,
                   augment=True, progress=False)


@pytest.mark.slow
def test_compiled_euler_steps_give_the_same_chunk():
    """policy_node's default decoding compiles the expert's integration (set_decoding): the same
    chunk as the uncompiled steps (float rounding apart), for one frame and for a padded batch."""
    m = tiny_flow().eval()
    before = chunk_positions(m)
    items = [dict(zip(("rgb", "depth", "K"), frame(i)), instruction=instr, state=STATE)
             for i, instr in enumerate(["pick up the cube", "put the red cylinder in the white bin"])]
    batch_before = [p.waypoints for p in m.predict_batch(items, generator=torch.Generator().manual_seed(3))]
    assert m.set_decoding("static-compile") == "static-compile"
    assert "_compiled_integrate" in m.expert.__dict__
    assert np.allclose(chunk_positions(m), before, atol=1e-5)
    after = [p.waypoints for p in m.predict_batch(items, generator=torch.Generator().manual_seed(3))]
    for a, b in zip(after, batch_before):
        assert np.allclose([w.pose.position for w in a], [w.pose.position for w in b], atol=1e-5)
    m.set_decoding("static")
    assert "_compiled_integrate" not in m.expert.__dict__


def test_flow_loss_falls_on_a_fixed_batch():
    """The expert alone (prefix computed once) on 2 fixed chunks; the loss is measured on the
    same 20 (t, noise) draws before and after, so the comparison is not noise."""
    m = tiny_flow().train()
    b = batch_of(m)
    with torch.no_grad():
        hidden, mask = m.backbone.prefix_features(b)

    def fixed_loss():
        torch.manual_seed(123)
        return float(np.mean([m.expert.flow_loss(b["chunk"], hidden, mask, b["chunk_valid"],
                                                 state=b["state"]).item()
                              for _ in range(20)]))

    before = fixed_loss()
    opt = torch.optim.Adam(m.expert.parameters(), lr=1e-3)
    for i in range(200):
        torch.manual_seed(1000 + i)
        loss = m.expert.flow_loss(b["chunk"], hidden, mask, b["chunk_valid"], state=b["state"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    assert after < 0.85 * before, (before, after)
