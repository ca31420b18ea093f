"""`posevla make-checkpoint`: regenerate the data and retrain the shipped checkpoint."""
from __future__ import annotations

import argparse

from posevla_core.paths import default_checkpoint


def add_arguments(m: argparse.ArgumentParser) -> None:
    m.add_argument("--out", default=None, help="default: the shipped checkpoint directory")
    m.add_argument("--work", default=None, help="generated data and stage outputs, reused by a rerun "
                   "(default: runs/make_checkpoint, with --wide runs/make_checkpoint_wide)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--quick", action="store_true", help="tiny data and steps (smoke test)")
    m.add_argument("--wide", action="store_true", help="randomized cameras, lenses, lights, tables and depth "
                   "faults in every training scene (checkpoints/wide; ~85 min on 2 cores)")


def run(a: argparse.Namespace) -> int:
    from posevla_core.train.pipeline import make_checkpoint  # torch

    work = a.work or ("runs/make_checkpoint_wide" if a.wide else "runs/make_checkpoint")
    make_checkpoint(out_dir=a.out or str(default_checkpoint()), work_dir=work, quick=a.quick, seed=a.seed,
                    wide=a.wide)
    return 0
