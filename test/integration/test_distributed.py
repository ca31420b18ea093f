"""Scale-out: `accelerate launch` with 2 CPU processes (gloo DDP) trains a few steps and saves
a normal checkpoint that PoseVLA.from_pretrained loads."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from test.helpers.datagen import write_grounding
from test.helpers.paths import REPO

import pytest
import yaml

from posevla_core.policies.small.configuration import PoseVLAConfig


@pytest.mark.slow
def test_two_process_ddp(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    if not accelerate.exists():
        accelerate = shutil.which("accelerate")
    assert accelerate, "accelerate CLI not installed"
    data = write_grounding(tmp_path / "g", 12)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "grounding", "steps": 4, "batch_size": 4, "warmup_steps": 1,
                                   "eval_every": 0, "save_every": 2, "max_val_samples": 2,
                                   "model": PoseVLAConfig.tiny().to_dict()}))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run([str(accelerate), "launch", "--config_file", str(REPO / "config/accelerate/ddp_cpu.yaml"),
                        "-m", "posevla_core.train", "--stage", "grounding", "--data", str(data), "--out", str(out),
                        "--config", str(cfg)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "processes=2" in r.stdout, r.stdout[-2000:]
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "loss" in x][-1] == 4
    from posevla_core.policies.small.modeling import PoseVLA

    m = PoseVLA.from_pretrained(out, device="cpu")
    assert m.num_parameters() > 0 and not (out / "resume").exists()
