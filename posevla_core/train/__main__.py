"""``python -m posevla_core.train`` (what ``accelerate launch -m posevla_core.train`` runs)."""
import argparse
import sys

from posevla_core.train import STAGES, train_main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m posevla_core.train", description=__doc__)
    ap.add_argument("--stage", required=True, choices=STAGES)
    ap.add_argument("--data", required=True, nargs="+", help="dataset directory (or several)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", default=None, help="checkpoint to start from")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--config", default=None, help="TrainConfig YAML (default config/train/<stage>.yaml)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--no-resume", action="store_true", help="ignore out/resume and start over")
    a = ap.parse_args(argv)
    train_main(a.stage, a.data if len(a.data) > 1 else a.data[0], a.out, a.init, a.steps, a.config,
               resume=not a.no_resume, batch_size=a.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
