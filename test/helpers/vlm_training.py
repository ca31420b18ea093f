"""Short PaliGemma training runs in the tests: the tiny PaliGemma's token config (``MODEL``),
quick trainer keyword arguments (``kw``), the losses a run logged (``losses``, from
metrics.jsonl) and whether they fell (``falls``).

Used by test/integration/test_train_vlm.py and test/ros/test_two_cameras.py."""
from __future__ import annotations

import json
from dataclasses import asdict

from posevla_core.config import TokenizerConfig

MODEL = {"tokens": asdict(TokenizerConfig(box_bins=1024, num_waypoints=2, position_bins=64, rotation_bins=63))}


def kw(**extra) -> dict:
    base = dict(batch_size=4, lr=3e-3, warmup_steps=2, eval_every=0, save_every=0, log_every=1, max_val_samples=2,
                val_fraction=0.25, augment=False, progress=False)
    base.update(extra)
    return base


def losses(out) -> dict[int, float]:
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def falls(out) -> bool:
    c = losses(out)
    first, last = [c[s] for s in sorted(c)[:3]], [c[s] for s in sorted(c)[-3:]]
    return sum(last) < 0.8 * sum(first)
