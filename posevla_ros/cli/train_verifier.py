"""`posevla train-verifier`: give a small-model token-head checkpoint an object verifier."""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def add_arguments(tv: argparse.ArgumentParser) -> None:
    tv.description = ("Give a token-head checkpoint of the small model an object verifier (is what its pointer "
                      "points at the instructed object?), trained with the rest frozen; writes the whole model to "
                      "--out. See posevla_core/train/verifier.py.")
    tv.add_argument("--init", required=True, help="small-model token-head checkpoint")
    tv.add_argument("--data", required=True, nargs="+", help="grounding / motion shards and LeRobot demos")
    tv.add_argument("--out", required=True)
    tv.add_argument("--steps", type=int, default=None, help="default: VerifierConfig.steps")
    tv.add_argument("--verify-threshold", type=float, default=None,
                    help="refuse an instruction when P(match) is below this (default: keep the checkpoint's)")
    tv.add_argument("--seed", type=int, default=0)


def run(a: argparse.Namespace) -> int:
    from posevla_core.train.verifier import VerifierConfig, train_verifier_main     # torch

    cfg = replace(VerifierConfig(), **({"steps": a.steps} if a.steps else {}), seed=a.seed)
    try:
        r = train_verifier_main(a.init, a.data, a.out, cfg, verify_threshold=a.verify_threshold)
    except (ValueError, FileNotFoundError) as e:      # unreadable data, a checkpoint that cannot take one
        print(f"posevla train-verifier: error: {e}", file=sys.stderr)
        return 1
    v = r["val"]
    print(f"posevla train-verifier: {r['examples']} examples from {r['scenes']} labeled frames; held-out: "
          f"accuracy {v['val_acc']:.3f}, right pointers rejected {v.get('pointer_false_reject', float('nan')):.3f}, "
          f"wrong pointers accepted {v.get('pointer_false_accept', float('nan')):.3f} at threshold "
          f"{r['verify_threshold']} -> {a.out}")
    return 0
