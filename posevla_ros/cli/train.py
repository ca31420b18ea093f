"""`posevla train`: one flag set with `accelerate launch -m posevla_core.train`; every argument
goes to posevla_core.train's own parser (so `posevla train --help` is the trainer's help)."""
from __future__ import annotations

import argparse


def add_arguments(t: argparse.ArgumentParser) -> None:
    t.description = "all arguments go to `python -m posevla_core.train`; see `posevla train --help`"
    t.add_argument("train_args", nargs=argparse.REMAINDER)


def run(a: argparse.Namespace) -> int:
    from posevla_core.train.__main__ import main as train_cli    # torch

    return train_cli(a.train_args, prog="posevla train")
