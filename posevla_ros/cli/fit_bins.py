"""`posevla fit-bins`: fit the data-dependent pose-token fields and write them as JSON."""
from __future__ import annotations

import argparse
import sys


def add_arguments(b: argparse.ArgumentParser) -> None:
    b.description = ("Fit the data-dependent pose-token fields (tokens.fit_bins) and write them as JSON; "
                     "`posevla train --bins FILE` puts them into a new model's config.")
    b.add_argument("--data", required=True, nargs="+", help="grounding / motion shards or LeRobot demos (several ok)")
    b.add_argument("--out", required=True, help="bins JSON to write (a TokenizerConfig fragment)")
    b.add_argument("--tokens", default=None,
                   help="the tokenizer the bins are for: a JSON/YAML file of TokenizerConfig fields or a checkpoint "
                        "directory (bin counts, categories and their symmetries); default: the sim demo model's "
                        "(the MuJoCo scene's categories and symmetries, default bin counts)")


def run(a: argparse.Namespace) -> int:
    from posevla_core.train.stages import fit_bins_main, tokens_of       # torch

    try:
        fit_bins_main(a.data, a.out, tokens_of(a.tokens), progress=True)
    except ValueError as e:           # unreadable data (DataFormatError), a bad --tokens file: one line
        print(f"posevla fit-bins: error: {e}", file=sys.stderr)
        return 1
    return 0
