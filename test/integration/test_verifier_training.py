"""Training the verifier: it learns which color a word means, a rejecting verifier refuses in both heads, the train-verifier CLI, and make-checkpoint --quick ending with a verifier."""
from __future__ import annotations

import json
import numpy as np
import pytest
import torch
from posevla_core.policies.factory import load_policy
from test.helpers.verifier import two_object_scene, with_verifier, write_scenes


def test_a_rejecting_verifier_refuses_instructions_in_both_heads(tmp_path):
    from posevla_core.policies.flow.modeling import FlowPolicy

    rgb, depth, K, _ = two_object_scene(np.random.default_rng(0))
    base, accept = with_verifier(bias=20.0)
    base.cfg.no_object_threshold = accept.cfg.no_object_threshold = 1.0
    p0 = base.predict(rgb, depth, K, "pick up the cube")
    p1 = accept.predict(rgb, depth, K, "pick up the cube")
    assert p1.token_ids == p0.token_ids and p1.score == pytest.approx(p0.score, abs=1e-5)  # accepting = no verifier
    _, reject = with_verifier(bias=-20.0)
    reject.cfg.no_object_threshold = 1.0
    q = reject.predict(rgb, depth, K, "pick up the cube")
    assert not q.found and q.waypoints == [] and q.score < 1e-6
    d = reject.predict(rgb, depth, K, "detect the cube")              # moves nothing: not gated
    assert d.token_ids == base.predict(rgb, depth, K, "detect the cube").token_ids
    flow = FlowPolicy.attach(reject, {"horizon": 4, "width": 32, "heads": 2, "state": False})
    f = flow.predict(rgb, depth, K, "pick up the cube")
    assert not f.found and f.waypoints == [] and f.score < 1e-6
    flow_ok = FlowPolicy.attach(accept, {"horizon": 4, "width": 32, "heads": 2, "state": False})
    assert flow_ok.predict(rgb, depth, K, "pick up the cube").found
    # the verifier travels with the checkpoint
    reject.save_pretrained(tmp_path / "ck")
    again = load_policy(tmp_path / "ck", device="cpu")
    assert again.cfg.verifier and not again.predict(rgb, depth, K, "pick up the cube").found


def test_the_verifier_learns_which_color_a_word_means(tmp_path):
    """Box crops of red "cubes" and blue "cylinders": after a short training the verifier accepts
    the right word and rejects the other on held-out scenes (the model around it is frozen)."""
    from posevla_core.train.verifier import VerifierConfig, collect_examples, train_verifier

    root = write_scenes(tmp_path / "g", 40)
    _, model = with_verifier()
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("verifier.")}
    cfg = VerifierConfig(steps=150, batch_size=64, eval_every=50, val_fraction=0.25)
    ex = collect_examples(model, [root], cfg, progress=False)
    r = train_verifier(model, ex, cfg, progress=False)
    assert r["val"]["box_false_accept"] <= 0.15 and r["val"]["box_false_reject"] <= 0.15, r["val"]
    assert r["history"][-1]["loss"] < r["history"][0]["loss"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
    assert [t["threshold"] for t in r["thresholds"]] == sorted(t["threshold"] for t in r["thresholds"])


def test_train_verifier_cli(tmp_path, capsys):
    from posevla_ros.cli import main

    root = write_scenes(tmp_path / "g", 8)
    init = tmp_path / "init"
    m, _ = with_verifier()
    m.save_pretrained(init)
    out = tmp_path / "out"
    assert main(["train-verifier", "--init", str(init), "--data", str(root), "--out", str(out), "--steps", "5",
                 "--verify-threshold", "0.3"]) == 0
    assert "held-out: accuracy" in capsys.readouterr().out
    v = load_policy(out, device="cpu")
    assert v.cfg.verifier and v.cfg.verify_threshold == 0.3
    rep = json.loads((out / "verifier_report.json").read_text())
    assert rep["examples"] == 8 * 6 and (out / "curves_verifier.png").stat().st_size > 0
    assert (out / "metrics_verifier.jsonl").read_text().count("\n") == 5
    # a flow-head checkpoint cannot take one (its expert would be dropped): one clear line, exit 1
    from posevla_core.policies.flow.modeling import FlowPolicy

    FlowPolicy.attach(m, {"horizon": 4, "width": 32, "heads": 2}).save_pretrained(tmp_path / "flow")
    assert main(["train-verifier", "--init", str(tmp_path / "flow"), "--data", str(root), "--out",
                 str(tmp_path / "x")]) == 1
    assert "token-head" in capsys.readouterr().err


@pytest.mark.slow
def test_make_checkpoint_quick_ends_with_a_verifier(tmp_path):
    """`posevla make-checkpoint --quick`: sim data, the three stages, then the object verifier;
    the checkpoint it writes loads with its verifier and refusal thresholds and predicts."""
    from posevla_ros.cli import main

    out = tmp_path / "ck"
    assert main(["make-checkpoint", "--quick", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    m = load_policy(out, device="cpu")
    assert m.cfg.verifier and m.cfg.no_object_threshold == 0.5 and m.cfg.verify_threshold == 0.5
    report = json.loads((out / "training_report.json").read_text())
    assert "verifier" in report["timings_s"] and "val" in report["verifier"]
    for f in ("curves_verifier.png", "metrics_verifier.jsonl", "verifier_report.json", "curves_embodiment.png"):
        assert (out / f).is_file(), f
    rgb, depth, K, _ = two_object_scene(np.random.default_rng(1))
    assert m.predict(rgb, depth, K, "pick up the red cube").valid
