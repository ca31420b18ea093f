"""`posevla`: one command-line entry point, a thin dispatcher.

Each subcommand is one module of this package (``COMMANDS``) with ``add_arguments(parser)``
and ``run(args) -> exit status``. Only the module of the command given is imported, so that
`posevla --help` is instant and `posevla train` on a GPU box without ROS never imports rclpy.

Files: config/, launch/ and the shipped checkpoint are found through
``posevla_ros.params.share_dir()`` (works from any directory, after ``make setup``, ``pip
install .`` or colcon); relative ``--out`` / ``--data`` paths are relative to the current
directory. A bad config or a missing file is one line on stderr and exit status 1.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from posevla_ros.param_schema import ConfigError

#: command -> (module in posevla_ros.cli, one-line help, aliases), in `posevla --help` order
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "run": ("run", "run nodes in one process (where `ros2 launch` is not available)", ()),
    "train": ("train", "train one Pose-VLA stage (small model or PaliGemma)", ()),
    "fit-bins": ("fit_bins", "fit percentile position / size bins and rotation references to data (JSON)", ()),
    "train-verifier": ("train_verifier", "train the object verifier of a small-model checkpoint (frozen model)", ()),
    "eval-offline": ("eval_offline", "metrics of a checkpoint on a dataset", ()),
    "collect": ("collect", "collect demos (teleop or scripted) into a LeRobot dataset", ()),
    "evaluate": ("evaluate", "evaluate a checkpoint over K episodes", ()),
    "demo": ("demo", "closed-loop MuJoCo demo with the shipped checkpoint", ()),
    "bench-generalization": ("bench_generalization", "pick success per camera viewpoint / fov / resolution "
                                                     "(docs/generalization/)", ()),
    "scripted": ("scripted", "the scripted demonstrator on the same held-out seeds (a baseline for demo)",
                 ("expert",)),
    "calibrate": ("calibrate", "hand-eye calibration with a ChArUco board (writes camera_to_base)", ()),
    "make-data": ("make_data", "sim grounding / motion shards on held-out scene seeds (eval-offline, "
                               "train-verifier)", ()),
    "serve": ("serve", "serve a checkpoint to policy_node / RemotePolicy clients over a websocket "
                       "(a GPU host; policy_node's policy_server:=host:port)", ()),
    "make-checkpoint": ("make_checkpoint", "regenerate data and retrain the shipped checkpoint", ()),
}
# `posevla train ...` goes whole to the trainer's own parser (`posevla train --help` is its help)
_NO_HELP = {"train"}


def command_of(name: str) -> str | None:
    """The command ``name`` is (itself or an alias of it), or None."""
    return next((cmd for cmd, (_, _, aliases) in COMMANDS.items() if name == cmd or name in aliases), None)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only`` (a command), the arguments of that command alone are
    added (its module alone imported), the others listed by name and help."""
    p = argparse.ArgumentParser(prog="posevla", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd, (module, help_, aliases) in COMMANDS.items():
        s = sub.add_parser(cmd, help=help_, aliases=list(aliases), add_help=cmd not in _NO_HELP)
        if only is None or only == cmd:
            mod = importlib.import_module(f"{__name__}.{module}")
            mod.add_arguments(s)
            s.set_defaults(func=mod.run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    cmd = command_of(argv[0]) if argv else None
    if cmd == "train":     # delegated whole, so that `posevla train --help` is the trainer's help
        # the command's module: imported only when it runs (`posevla --help` stays instant)
        from posevla_ros.cli import train

        args = argparse.Namespace(cmd="train", train_args=argv[1:], func=train.run)
    else:
        args = build_parser(only=cmd or "").parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError) as e:
        print(f"posevla {args.cmd}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
