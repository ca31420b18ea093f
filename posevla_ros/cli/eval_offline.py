"""`posevla eval-offline`: metrics of a checkpoint on a dataset."""
from __future__ import annotations

import argparse
from pathlib import Path

from posevla_core.paths import default_checkpoint, resolve_checkpoint


def add_arguments(e: argparse.ArgumentParser) -> None:
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--out", default=None, help="metrics JSON (default: <checkpoint>/eval_offline.json; "
                                                "runs/eval_offline.json for the shipped checkpoint)")


def run(a: argparse.Namespace) -> int:
    from posevla_core.train.stages import eval_offline_main  # torch

    ckpt = resolve_checkpoint(a.checkpoint)
    # beside the checkpoint, except the shipped one: that directory stays as shipped (and may be read-only)
    shipped = ckpt.resolve() == Path(default_checkpoint()).resolve()
    out = a.out or str(Path("runs/eval_offline.json") if shipped else ckpt / "eval_offline.json")
    eval_offline_main(checkpoint=str(ckpt), data_dir=a.data, out_json=out)
    return 0
