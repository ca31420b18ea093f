"""The PaliGemma backbone through the same trainer and CLI as the small model, on a tiny
random PaliGemma built offline: the three stages chain (base -> grounding -> motion ->
embodiment) and each one's loss falls, an interrupted run resumes on the same curve, and
`posevla train --model paligemma --base` / `eval-offline` run."""
from __future__ import annotations

import json
import math
from test.helpers.datagen import write_grounding, write_motion
from test.helpers.tiny_vlm import make_tiny_paligemma
from test.helpers.vlm_training import MODEL, falls, kw, losses

import pytest

from posevla_core.policies.factory import load_policy
from posevla_core.train.stages import train_main
from posevla_core.train.trainer import Interrupted

pytestmark = pytest.mark.slow


def test_three_stages_chain_and_the_loss_falls(tmp_path):
    base = make_tiny_paligemma(tmp_path / "paligemma")
    g, m = write_grounding(tmp_path / "g", 12), write_motion(tmp_path / "m", 12)
    train_main("grounding", g, str(tmp_path / "s1"), steps=20, architecture="paligemma", base=str(base),
               model=MODEL, **kw())
    train_main("motion", m, str(tmp_path / "s2"), steps=20, init=str(tmp_path / "s1"), **kw())
    r = train_main("embodiment", m, str(tmp_path / "s3"), steps=20, init=str(tmp_path / "s2"), **kw())
    for s in ("s1", "s2", "s3"):
        assert falls(tmp_path / s), (s, losses(tmp_path / s))
    assert json.loads((tmp_path / "s3" / "config.json").read_text())["architecture"] == "paligemma"
    policy = load_policy(tmp_path / "s3", device="cpu")
    assert type(policy).__name__ == "PaliGemmaPoseVLA" and "val" in r


def test_resume_continues_the_same_curve(tmp_path):
    base = make_tiny_paligemma(tmp_path / "paligemma")
    data = write_grounding(tmp_path / "g", 12)
    args = dict(architecture="paligemma", base=str(base), model=MODEL, **kw(save_every=3, max_val_samples=1))
    train_main("grounding", data, str(tmp_path / "ref"), steps=6, **args)
    with pytest.raises(Interrupted):
        train_main("grounding", data, str(tmp_path / "run"), steps=6, stop_at=4, **args)
    train_main("grounding", data, str(tmp_path / "run"), steps=6, **args)
    a, b = losses(tmp_path / "ref"), losses(tmp_path / "run")
    assert sorted(b) == list(range(1, 7))
    for s in range(1, 7):
        assert math.isclose(a[s], b[s], rel_tol=1e-5, abs_tol=1e-6), (s, a[s], b[s])


def test_cli_train_paligemma_and_eval_offline(tmp_path, capsys):
    import yaml

    from posevla_ros.cli import main

    base = make_tiny_paligemma(tmp_path / "paligemma")
    data = write_motion(tmp_path / "m", 8)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "motion", "warmup_steps": 1, "eval_every": 0, "save_every": 0,
                                   "max_val_samples": 2, "model": MODEL}))
    out = tmp_path / "ckpt"
    assert main(["train", "--model", "paligemma", "--base", str(base), "--stage", "motion", "--data", str(data),
                 "--out", str(out), "--steps", "3", "--config", str(cfg), "--batch-size", "2",
                 "--freeze-vision", "--gradient-checkpointing", "--mixed-precision", "no"]) == 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["posevla"]["freeze_vision"] and meta["posevla"]["gradient_checkpointing"]
    assert main(["eval-offline", "--checkpoint", str(out), "--data", str(data)]) == 0
    assert json.loads((out / "eval_offline.json").read_text())["num_samples"] >= 8     # + negatives


def test_two_process_ddp_wraps_the_paligemma_model(tmp_path):
    """accelerate launch (config/accelerate/ddp_cpu.yaml: 2 gloo processes) trains the VLM and
    writes a checkpoint that load_policy reads."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    from test.helpers.paths import REPO as repo

    import yaml
    accelerate = Path(sys.executable).parent / "accelerate"
    accelerate = str(accelerate) if accelerate.exists() else shutil.which("accelerate")
    assert accelerate, "accelerate CLI not installed"
    base = make_tiny_paligemma(tmp_path / "paligemma")
    data = write_grounding(tmp_path / "g", 12)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "grounding", "steps": 3, "batch_size": 4, "warmup_steps": 1,
                                   "eval_every": 0, "save_every": 2, "max_val_samples": 1, "model": MODEL}))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1")
    r = subprocess.run([accelerate, "launch", "--config_file", str(repo / "config/accelerate/ddp_cpu.yaml"),
                        "-m", "posevla_core.train", "--model", "paligemma", "--base", str(base), "--stage", "grounding",
                        "--data", str(data), "--out", str(out), "--config", str(cfg)],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "processes=2" in r.stdout, r.stdout[-2000:]
    assert type(load_policy(out, device="cpu")).__name__ == "PaliGemmaPoseVLA"
