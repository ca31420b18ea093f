"""Absent-object episodes: the sim stages a pick scene with an instruction naming an
object that is not in it; the evaluator runs them through the real node chain (sim_node ->
policy_node -> executor_node) and judges them from the predictions, the trajectories sent
and the joint motion. A model that answers <no_object> is counted refused with no motion; one
that grounds something is not counted refused."""
from __future__ import annotations

import json

import pytest

from posevla_core.sim import tasks
from posevla_core.sim.mujoco import scene


def test_absent_episode_names_an_object_not_in_the_scene():
    for seed in range(1000, 1040):
        spec = tasks.sample_episode(seed, "absent")
        pick = tasks.sample_episode(seed, "pick")
        assert spec.task == tasks.ABSENT and spec.objects == pick.objects          # the pick scene of the seed
        assert spec.absent in scene.object_names() and spec.absent not in spec.objects
        assert spec.instruction == f"pick up the {tasks.category_of(spec.absent)}"
        assert spec.target in spec.objects
    assert tasks.parse_task("absent").family == tasks.ABSENT


def test_graph_checks_absent_args():
    from posevla_ros.launching.graphs import build

    with pytest.raises(ValueError, match="need the sim"):
        build("evaluate", dict(sim=False, task="pick up the red cube", absent=2))
    with pytest.raises(ValueError, match="together >= 1"):
        build("evaluate", dict(sim=True, episodes=0, absent=0))
    ev = next(s for s in build("evaluate", dict(sim=True, episodes=0, absent=30)) if s.name == "evaluator_node")
    assert ev.params["absent_episodes"] == 30 and ev.params["episodes"] == 0


def tiny(refuse: bool):
    """A tiny real model whose grammar at step 0 leaves only <no_object> (``refuse``: its
    decoding then stops) or only the categories (it always grounds some object)."""
    import torch

    from posevla_core.policies.small.configuration import PoseVLAConfig
    from posevla_core.policies.small.modeling import PoseVLA
    from posevla_core.tokens.grammar import ACT, NO_OBJECT

    torch.manual_seed(0)
    m = PoseVLA(PoseVLAConfig.tiny()).eval()
    cat = m.tokenizer.blocks["category"]
    bias = m.step_bias[ACT, 0]                # (grammar, step, vocab): an instruction's first token
    if refuse:
        bias[cat.start:cat.stop] = float("-inf")
    else:
        bias[NO_OBJECT] = float("-inf")
    return m


@pytest.mark.slow
def test_absent_episodes_through_the_node_chain(tmp_path):
    from posevla_ros.cli.evaluate import evaluate_main

    out = tmp_path / "refuse"
    s = evaluate_main(None, "pick", 0, str(out), seed=1000, timeout_s=10.0, sim=True, model=tiny(refuse=True),
                      absent=2)
    a = s["absent"]
    assert s["episodes"] == 0 and (a["episodes"], a["refused"], a["motions"], a["correct"]) == (2, 2, 0, 2), a
    for r in a["per_episode"]:
        assert r["predictions"] >= 3 and r["refused_predictions"] == r["predictions"], r
        assert r["trajectories"] == 0 and r["max_joint_dev_rad"] < 1e-3, r
        assert r["seed"] in (1000, 1001) and "pick up the" in r["instruction"]
    assert json.loads((out / "summary.json").read_text())["absent"]["refused"] == 2
    assert "Refused 2/2, motions: 0" in (out / "report.html").read_text()

    # a model that always grounds some object; its random boxes also land where the sim has no
    # depth (beyond the table), which policy_node refuses (min_object_depth_support): not here
    out = tmp_path / "ground"
    s = evaluate_main(None, "pick", 0, str(out), seed=1005, timeout_s=10.0, sim=True, model=tiny(refuse=False),
                      absent=1, overrides={"policy": {"min_object_depth_support": 0.0}})
    r = s["absent"]["per_episode"][0]
    assert s["absent"]["refused"] == 0 and r["predictions"] >= 1 and r["refused_predictions"] == 0, r
    assert r["motion"] == (r["trajectories"] > 0 or r["max_joint_dev_rad"] >= 1e-3)


@pytest.mark.slow
def test_demo_cli_absent_only(tmp_path, capfd):
    from posevla_ros.cli import main

    ckpt = tmp_path / "ckpt"
    tiny(refuse=False).save_pretrained(ckpt)        # (the grammar bias is not saved: a random model)
    out = tmp_path / "demo"
    assert main(["demo", "--checkpoint", str(ckpt), "--episodes", "0", "--absent", "1", "--out", str(out),
                 "--timeout", "8"]) == 0
    text = capfd.readouterr().out
    assert "[demo] absent refused: " in text and "/1, motions: " in text and "[demo] success" not in text
    s = json.loads((out / "summary.json").read_text())
    assert s["episodes"] == 0 and s["absent"]["episodes"] == 1 and s["absent"]["per_episode"][0]["seed"] == 1000
    assert main(["demo", "--episodes", "0", "--absent", "0", "--checkpoint", str(ckpt)]) == 1
    assert "together >= 1" in capfd.readouterr().err


def test_negative_instructions_are_absent_and_half_are_near_misses():
    """Every negative names a category not in view; about half of them (when the scene has
    one) share a color with an object in view ("red cylinder" beside a red cube)."""
    import numpy as np

    from posevla_core.instructions import NEAR_MISS_FRACTION, negative_instruction

    cats = [tasks.category_of(n) for n in scene.object_names()]
    rng = np.random.default_rng(0)
    near, uniform, expected, n = 0, 0.0, 0.0, 2000
    for _ in range(n):
        present = list(rng.choice(cats, size=2, replace=False))
        colors = {c.split()[0] for c in present}
        instr = negative_instruction(present, cats, rng)
        named = instr.removeprefix("pick up the ")
        assert named in cats and named not in present
        near += named.split()[0] in colors
        absent = [c for c in cats if c not in present]
        share = sum(c.split()[0] in colors for c in absent) / len(absent)
        uniform += share
        expected += NEAR_MISS_FRACTION + (1 - NEAR_MISS_FRACTION) * share if share else 0.0
    assert abs(near - expected) / n < 0.04 and near / n > uniform / n + 0.2
    assert negative_instruction(cats, cats, rng) is None and negative_instruction(None, cats, rng) is None
