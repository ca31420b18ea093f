"""FSDP as documented: `accelerate launch --config_file config/accelerate/fsdp.yaml --num_processes 2
-m posevla_core.train --model paligemma ...` on the tiny random PaliGemma, on CPU (gloo; the trainer
turns the FSDP launch into FSDP2 where accelerate alone would run DDP). Full fine-tuning and LoRA:
the loss falls, the gathered checkpoint loads through from_pretrained and predicts, LoRA leaves the
pretrained weights and embedding rows as they were, and an interrupted FSDP run resumes on the same
loss curve (sharded optimizer state gathered and re-sharded)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from test.helpers.datagen import scene, write_grounding
from test.helpers.tiny_vlm import make_tiny_paligemma

import numpy as np
import pytest
import yaml

from posevla_core.config import TokenizerConfig

pytestmark = pytest.mark.slow
from test.helpers.paths import REPO

MODEL = {"tokens": asdict(TokenizerConfig(box_bins=1024, num_waypoints=2, position_bins=64, rotation_bins=63))}
STEPS = 12
# modules FSDP wrapped: 2 Gemma decoder layers + 1 SigLIP encoder layer (the model's
# _no_split_modules), the tied embeddings and lm_head (one group of two modules), and the root
UNITS = 6


def accelerate_cli() -> str:
    cli = Path(sys.executable).parent / "accelerate"
    found = str(cli) if cli.exists() else shutil.which("accelerate")
    assert found, "accelerate CLI not installed"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path: Path, out: Path, model: dict, **train) -> subprocess.CompletedProcess:
    """The README's FSDP command, with 2 processes: a tiny base + 12 grounding scenes, fixed batches."""
    base = tmp_path / "paligemma"
    if not base.exists():
        make_tiny_paligemma(base)
        write_grounding(tmp_path / "g", 12)
    cfg = tmp_path / f"{out.name}.yaml"
    cfg.write_text(yaml.safe_dump({"stage": "grounding", "steps": STEPS, "batch_size": 4, "lr": 3e-3,
                                   "warmup_steps": 1, "log_every": 1, "eval_every": 0, "save_every": 0,
                                   "val_fraction": 0.25, "max_val_samples": 2, "augment": False,
                                   "model": model, **train}))
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    r = subprocess.run([accelerate_cli(), "launch", "--config_file", str(REPO / "config/accelerate/fsdp.yaml"),
                        "--num_processes", "2", "--main_process_port", str(free_port()),
                        "-m", "posevla_core.train", "--model", "paligemma", "--base", str(base),
                        "--stage", "grounding", "--data", str(tmp_path / "g"), "--out", str(out), "--config", str(cfg)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-4000:]
    assert "processes=2 " in r.stdout and f"fsdp_units={UNITS}" in r.stdout, r.stdout[-2000:]
    return r


def losses(out: Path) -> dict[int, float]:
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def check_checkpoint(out: Path):
    """The loss fell; the checkpoint loads with the normal path and predicts one frame."""
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA

    c = losses(out)
    assert sorted(c) == list(range(1, STEPS + 1)), c
    assert c[STEPS] < 0.9 * c[1], c
    assert json.loads((out / "offline_metrics.json").read_text())["num_samples"] >= 2   # evaluated the saved file
    model = PaliGemmaPoseVLA.from_pretrained(out, device="cpu")
    rgb, depth, K, cat, _, _ = scene(np.random.default_rng(7))
    pred = model.predict(rgb, depth, K, f"pick up the {cat}")
    assert pred.valid and pred.token_ids, pred
    return model


def test_fsdp_full_finetune_saves_loads_and_resumes(tmp_path):
    out = tmp_path / "full"
    launch(tmp_path, out, MODEL, save_every=STEPS // 2, keep_resume_state=True)
    check_checkpoint(out)
    first = losses(out)
    # out/resume (step 6, sharded optimizer state gathered) is still there: the same command continues it
    r = launch(tmp_path, out, MODEL, save_every=STEPS // 2, keep_resume_state=True)
    assert f"{STEPS // 2}/{STEPS}" in r.stderr, r.stderr[-2000:]        # the progress bar starts at step 6
    assert losses(out) == pytest.approx(first, rel=1e-5, abs=1e-6)


def test_fsdp_with_lora_keeps_the_pretrained_weights(tmp_path):
    from transformers import PaliGemmaForConditionalGeneration

    from posevla_core.tokens.grammar import EOS

    out = tmp_path / "lora"
    launch(tmp_path, out, {**MODEL, "lora_rank": 4}, eval_every=STEPS // 2)
    model = check_checkpoint(out)
    assert any("lora_B" in n for n, _ in model.named_parameters())
    base = PaliGemmaForConditionalGeneration.from_pretrained(str(tmp_path / "paligemma"))
    q = model.vlm.model.language_model.layers[0].self_attn.q_proj
    assert (q.base_layer.weight == base.model.language_model.layers[0].self_attn.q_proj.weight).all()
    emb, old = model.vlm.get_input_embeddings().weight, base.get_input_embeddings().weight
    box = model.tokenizer.blocks["box"]
    new = sorted(set(model.id_map[EOS + 1:].tolist()) - set(model.id_map[box.start:box.stop].tolist()))
    pretrained = sorted(set(range(old.shape[0])) - set(new))
    assert (emb[pretrained] == old[pretrained]).all()                 # masked under FSDP too
    assert not (emb[new] == emb[new][:1]).all()                       # the pose-token rows learned
