"""End to end in sim (slow): 3 scripted demos through teleop_node + recorder_node -> the
dataset loads (our reader; the real lerobot package when .venv-lerobot exists) -> a few
embodiment fine-tuning steps -> 2 evaluation episodes -> report with the right counts.
Plus fast static checks of the two launch files. Real-arm mode: test_real_mode.py."""
from __future__ import annotations

import json
import os
import subprocess
from test.helpers.lerobot import LEROBOT_PY
from test.helpers.paths import REPO

import pytest

CHECK_LEROBOT = REPO / "scripts" / "check_lerobot_load.py"


@pytest.mark.parametrize("name,args,exes", [
    ("collect_demos.launch.py", {"robot", "teleop", "out", "task", "joy_topic", "leader_topic", "sim", "mcap"},
     {"teleop_node", "recorder_node", "sim_node"}),
    ("evaluate.launch.py", {"robot", "checkpoint", "task", "episodes", "seed", "timeout", "out", "sim"},
     {"recorder_node", "evaluator_node", "sim_node"}),
])
def test_launch_files_static(name, args, exes):
    from test.helpers.launch_files import static_check

    problems, found = static_check(REPO / "launch" / name)
    assert not problems, problems
    assert args <= found["args"] and exes <= found["executables"]


@pytest.mark.slow
def test_collect_finetune_evaluate(tmp_path):
    from posevla_core.train import stages
    from posevla_core.policies.small.modeling import PoseVLA
    from posevla_ros.cli.collect import collect_main
    from posevla_ros.cli.evaluate import evaluate_main

    demos = tmp_path / "demos"
    c = collect_main("scripted", "pick", 3, str(demos), seed=0, robot="sim_panda", fps=5.0, sim=True)
    assert c["episodes_saved"] == 3, c
    assert c["successes"] == 3 and not c["expert_errors"], c

    from posevla_core.data import LeRobotReader

    ds = LeRobotReader(demos)
    assert ds.num_episodes == 3 and all(ds.episode_length(i) > 3 for i in range(3))
    if LEROBOT_PY.is_file() and CHECK_LEROBOT.is_file():
        r = subprocess.run([str(LEROBOT_PY), str(CHECK_LEROBOT), str(demos)], cwd=REPO, capture_output=True,
                           text=True, timeout=170, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        assert r.returncode == 0, r.stdout + r.stderr

    init = REPO / "checkpoints" / "demo"
    ckpt = tmp_path / "ckpt"
    stages.train_main(stage="embodiment", data_dir=str(demos), out_dir=str(ckpt),
                     init=str(init) if init.is_dir() else None, steps=3, config_file=None)
    assert (ckpt / "config.json").is_file() and (ckpt / "model.safetensors").is_file()
    PoseVLA.from_pretrained(str(ckpt), device="cpu")                  # the fine-tuned checkpoint loads

    out = tmp_path / "eval"
    s = evaluate_main(str(ckpt), "pick", 2, str(out), seed=1000, timeout_s=8.0, sim=True)
    assert s["episodes"] == 2 and s["successes"] == sum(r["success"] for r in s["per_episode"])
    assert all(r["reason"] in ("success", "timeout") for r in s["per_episode"]), s["per_episode"]
    assert len(s["ci95"]) == 2 and s["ci95"][0] <= s["success_rate"] <= s["ci95"][1]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["episodes"] == 2 and len(on_disk["per_episode"]) == 2
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    html = (out / "report.html").read_text()
    assert f"{s['successes']}/2" in html
    assert on_disk["artifacts"]["gif"] and (out / on_disk["artifacts"]["gif"]).is_file()
    assert LeRobotReader(out / "rollouts").num_episodes == 2          # every rollout recorded
