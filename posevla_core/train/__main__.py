"""``python -m posevla_core.train`` (what ``accelerate launch -m posevla_core.train`` runs) and
``posevla train``: one argument parser for both."""
import argparse
import sys

from posevla_core.paths import resolve_checkpoint
from posevla_core.train.config import STAGES
from posevla_core.train.stages import BinsError, train_main


def build_parser(prog: str = "python -m posevla_core.train") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description="Train one Pose-VLA stage.")
    ap.add_argument("--stage", required=True, choices=STAGES)
    ap.add_argument("--data", required=True, nargs="+", help="dataset directory (or several)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", default=None, help="checkpoint to start from (its config.json names the backbone)")
    ap.add_argument("--bins", default=None,
                    help="bins JSON of `posevla fit-bins`, put into the new model's tokens (without --init; with "
                         "--init it must equal the checkpoint's bins, else the run is refused)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--config", default=None, help="TrainConfig YAML (default config/train/<stage>.yaml)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--no-resume", action="store_true", help="ignore out/resume and start over")
    ap.add_argument("--model", default=None, choices=["small", "paligemma"],
                    help="backbone to train without --init (default small)")
    ap.add_argument("--base", default=None, help="paligemma: local Hugging Face PaliGemma directory (never downloaded)")
    ap.add_argument("--mixed-precision", default=None, choices=["auto", "no", "bf16", "fp16"],
                    help="autocast (default auto: bf16 on CUDA, fp32 on CPU)")
    ap.add_argument("--lora-rank", type=int, default=None, help="paligemma: LoRA rank (needs peft); 0 = full fine-tune")
    ap.add_argument("--freeze-vision", action="store_true", help="paligemma: do not train the vision tower")
    ap.add_argument("--gradient-checkpointing", action="store_true", help="paligemma: activation checkpointing")
    ap.add_argument("--head", default=None, choices=["tokens", "flow"],
                    help="embodiment: flow = train the flow-matching action expert on the --init backbone")
    ap.add_argument("--chunk-horizon", type=int, default=None, help="flow: actions per chunk (default 16)")
    ap.add_argument("--chunk-dt", type=float, default=None, help="flow: control period of a chunk, s (default 0.1)")
    ap.add_argument("--action-frame", default=None, choices=["camera", "base"],
                    help="flow: frame of the predicted end-effector poses (default camera)")
    ap.add_argument("--token-loss-weight", type=float, default=None,
                    help="flow: keep the pose-token loss with this weight (default 0 = flow loss only)")
    ap.add_argument("--cache-prefix", action="store_true",
                    help="flow on a frozen backbone (insulated, no token loss): compute the backbone prefix once "
                         "per sample, no augmentation, train only the expert (much faster on CPU)")
    ap.add_argument("--no-insulation", action="store_true",
                    help="flow: let the expert's gradient into the backbone (default: knowledge insulation)")
    ap.add_argument("--no-state", action="store_true",
                    help="flow: no proprioception (default: the expert reads the hand's pose and gripper opening)")
    ap.add_argument("--noise-scale", type=float, default=None,
                    help="flow: std of the starting noise at inference, saved in the checkpoint (default 1 = pi0's "
                         "sampling; 0 = deterministic, one chunk per input: docs/expert.md)")
    return ap


def main(argv=None, prog: str = "python -m posevla_core.train") -> int:
    a = build_parser(prog).parse_args(argv)
    model = {k: v for k, v in (("lora_rank", a.lora_rank), ("freeze_vision", a.freeze_vision or None),
                               ("gradient_checkpointing", a.gradient_checkpointing or None)) if v is not None}
    init = str(resolve_checkpoint(a.init)) if a.init else None   # checkpoints/demo works from any directory
    expert = {k: v for k, v in (("horizon", a.chunk_horizon), ("dt", a.chunk_dt), ("frame", a.action_frame),
                                ("token_loss_weight", a.token_loss_weight),
                                ("insulate", False if a.no_insulation else None),
                                ("state", False if a.no_state else None), ("noise_scale", a.noise_scale))
              if v is not None}
    try:
        train_main(a.stage, a.data if len(a.data) > 1 else a.data[0], a.out, init, a.steps, a.config,
                   resume=not a.no_resume, bins=a.bins, batch_size=a.batch_size, lr=a.lr, architecture=a.model,
                   base=a.base, mixed_precision=a.mixed_precision, model_overrides=model, head=a.head,
                   expert=expert or None, cache_prefix=a.cache_prefix or None,
                   augment=False if a.cache_prefix else None)
    except BinsError as e:          # a bins file that cannot be used: one line, nothing trained
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
