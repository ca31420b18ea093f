"""Trainer wiring: overfitting a tiny batch, exact resume after an interruption, the LR
schedule, errors naming bad data files, and the `posevla train` / `eval-offline` CLI."""
from __future__ import annotations

import json
import math
from test.helpers.datagen import write_grounding, write_motion

import numpy as np
import pytest

from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.train.config import TrainConfig
from posevla_core.train.stages import train_main
from posevla_core.train.trainer import Interrupted, batch_indices, lr_at

TINY = PoseVLAConfig.tiny().to_dict()


def tiny_overrides(**kw) -> dict:
    base = dict(model=TINY, batch_size=4, warmup_steps=2, eval_every=0, save_every=0, log_every=1,
                max_val_samples=4, val_fraction=0.25, progress=False)
    base.update(kw)
    return base


def losses(out) -> dict[int, float]:
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def test_overfit_tiny_batch(tmp_path):
    """4 fixed samples, no augmentation: the pose-token loss falls to near zero."""
    data = write_motion(tmp_path / "m", 4)
    out = tmp_path / "run"
    r = train_main("motion", data, str(out), steps=150, **tiny_overrides(
        lr=3e-3, warmup_steps=10, augment=False, depth_dropout=0.0, val_fraction=0.0, max_samples=4))
    curve = losses(out)
    assert curve[1] > 2.0, curve[1]
    assert r["final_loss"] < 0.05 * curve[1] and r["final_loss"] < 0.15, (curve[1], r["final_loss"])
    assert (out / "model.safetensors").is_file() and (out / "curves.png").stat().st_size > 1000
    from posevla_core.policies.small.modeling import PoseVLA

    m = PoseVLA.from_pretrained(out, device="cpu")
    assert m.cfg.tokens.num_waypoints == 2


def test_resume_continues_the_same_curve(tmp_path):
    data = write_grounding(tmp_path / "g", 12)
    kw = tiny_overrides(save_every=4)
    ref = tmp_path / "ref"
    train_main("grounding", data, str(ref), steps=10, **kw)
    run = tmp_path / "run"
    with pytest.raises(Interrupted):
        train_main("grounding", data, str(run), steps=10, stop_at=6, **kw)   # "killed" after step 6
    assert (run / "resume" / "train_state.pt").is_file()
    train_main("grounding", data, str(run), steps=10, **kw)                  # resumes from step 4
    a, b = losses(ref), losses(run)
    assert sorted(b) == list(range(1, 11))                                   # steps 5, 6 logged once
    for s in range(1, 11):
        assert math.isclose(a[s], b[s], rel_tol=1e-5, abs_tol=1e-6), (s, a[s], b[s])
    assert not (run / "resume").exists()                                     # finished: state removed


def test_lr_schedule_and_batches():
    cfg = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b - 1e-12 for a, b in zip(lrs[10:], lrs[11:]))           # cosine is monotone
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
    idx = np.arange(10)
    seen = np.concatenate([batch_indices(idx, s, 5, 0) for s in range(2)])   # one epoch
    assert sorted(seen) == list(range(10))
    np.testing.assert_array_equal(batch_indices(idx, 3, 5, 0), batch_indices(idx, 3, 5, 0))


def test_bad_data_errors_name_the_file(tmp_path):
    from posevla_core.data import DataFormatError

    data = write_grounding(tmp_path / "g", 4)
    (data / "shard-00000.npz").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="shard-00000.npz"):
        train_main("grounding", data, str(tmp_path / "o"), steps=1, **tiny_overrides())
    with pytest.raises(FileNotFoundError, match="nope"):
        train_main("grounding", write_grounding(tmp_path / "g2", 4), str(tmp_path / "o"), steps=1,
                   init=str(tmp_path / "nope"), **tiny_overrides())
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: grounding\nlearning_rate: 1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        train_main("grounding", data, str(tmp_path / "o"), config_file=str(bad))


def test_cli_train_and_eval_offline(tmp_path, capsys):
    from posevla_ros.cli import main

    data = write_motion(tmp_path / "m", 8)
    cfg = tmp_path / "tiny.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump({"stage": "motion", "batch_size": 4, "warmup_steps": 1, "eval_every": 0,
                                   "save_every": 0, "max_val_samples": 2, "model": TINY}))
    out = tmp_path / "ckpt"
    assert main(["train", "--stage", "motion", "--data", str(data), "--out", str(out), "--steps", "3",
                 "--config", str(cfg)]) == 0
    assert json.loads((out / "train_config.json").read_text())["steps"] == 3
    assert main(["eval-offline", "--checkpoint", str(out), "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert "wp_pos_err_m" in text and "center_err_m" in text
    m = json.loads((out / "eval_offline.json").read_text())
    assert m["num_samples"] >= 8 and 0.0 <= m["gripper_acc"] <= 1.0 and m["stage"] == "motion"


def test_eval_offline_never_writes_into_the_shipped_checkpoint(tmp_path, monkeypatch):
    from posevla_core.paths import default_checkpoint
    from posevla_ros.cli import main

    data = write_grounding(tmp_path / "g", 4)
    before = sorted(p.name for p in default_checkpoint().iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["eval-offline", "--checkpoint", "checkpoints/demo", "--data", str(data)]) == 0
    assert (tmp_path / "runs" / "eval_offline.json").is_file()
    assert sorted(p.name for p in default_checkpoint().iterdir()) == before
