"""`posevla`: one command-line entry point, a thin dispatcher.

Each subcommand parses its own flags and hands them to a function that lives with the
concern it drives (training in posevla_core.train, nodes in posevla_ros.runner, ...).
Imports are lazy so that `posevla --help` is instant and `posevla train` on a GPU box
without ROS never imports rclpy.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cmd_run(a: argparse.Namespace) -> int:
    from posevla_ros.runner import run_graph

    overrides = dict(kv.split("=", 1) for kv in a.param)
    nodes = {"policy": ["policy", "executor"], "sim-demo": ["sim", "policy", "executor"]}.get(a.graph, [a.graph])
    return run_graph(nodes, robot=a.robot, overrides=overrides, checkpoint=a.checkpoint) or 0


def _cmd_train(a: argparse.Namespace) -> int:
    # One flag set for `posevla train` and `accelerate launch -m posevla_core.train`: the
    # arguments go to posevla_core.train's own parser (imported only now: it pulls in torch).
    from posevla_core.train.__main__ import main as train_cli

    return train_cli(a.train_args, prog="posevla train")


def _cmd_eval_offline(a: argparse.Namespace) -> int:
    from posevla_core.train import eval_offline_main

    out = a.out or str(Path(a.checkpoint) / "eval_offline.json")
    eval_offline_main(checkpoint=a.checkpoint, data_dir=a.data, out_json=out)
    return 0


def _cmd_collect(a: argparse.Namespace) -> int:
    from posevla_ros.teleop_node import collect_main

    collect_main(teleop=a.teleop, task=a.task, episodes=a.episodes, out=a.out, seed=a.seed, robot=a.robot)
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from posevla_ros.evaluator_node import evaluate_main

    summary = evaluate_main(checkpoint=a.checkpoint, task=a.task, episodes=a.episodes, out=a.out,
                            seed=a.seed, robot=a.robot, use_depth=not a.no_depth, timeout_s=a.timeout)
    print(json.dumps({k: summary[k] for k in ("task", "episodes", "successes", "success_rate", "ci95")}))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from posevla_ros.demo import demo_main

    summary = demo_main(episodes=a.episodes, seed=a.seed, out=a.out, task=a.task, checkpoint=a.checkpoint,
                        timeout_s=a.timeout, use_depth=not a.no_depth)
    return 0 if summary.get("episodes", 0) > 0 else 1


def _cmd_expert(a: argparse.Namespace) -> int:
    from posevla_ros.demo import expert_main

    expert_main(episodes=a.episodes, seed=a.seed, task=a.task, out=a.out)
    return 0


def _cmd_make_checkpoint(a: argparse.Namespace) -> int:
    from posevla_core.train.pipeline import make_checkpoint

    make_checkpoint(out_dir=a.out, work_dir=a.work, quick=a.quick, seed=a.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="posevla", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    default_ckpt = str(REPO_ROOT / "checkpoints" / "demo")

    r = sub.add_parser("run", help="run nodes in one process (where `ros2 launch` is not available)")
    r.add_argument("graph", choices=["policy", "executor", "sim", "sim-demo"],
                   help="policy = policy_node + executor_node, as launch/policy.launch.py")
    r.add_argument("--robot", default="panda", help="config/robots/<robot>.yaml")
    r.add_argument("--checkpoint", default=None)
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a node parameter, e.g. -p backend=joint_trajectory")
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser("train", help="train one Pose-VLA stage (small model or PaliGemma)", add_help=False,
                       description="all arguments go to `python -m posevla_core.train`; see `posevla train --help`")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval-offline", help="metrics of a checkpoint on a dataset")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--out", default=None)
    e.set_defaults(func=_cmd_eval_offline)

    c = sub.add_parser("collect", help="collect demos (teleop or scripted) into a LeRobot dataset")
    c.add_argument("--teleop", required=True, choices=["keyboard", "joy", "leader", "scripted"])
    c.add_argument("--task", required=True)
    c.add_argument("--episodes", type=int, default=10)
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--robot", default="panda")
    c.set_defaults(func=_cmd_collect)

    v = sub.add_parser("evaluate", help="evaluate a checkpoint over K episodes")
    v.add_argument("--checkpoint", default=default_ckpt)
    v.add_argument("--task", required=True)
    v.add_argument("--episodes", type=int, default=10)
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=1000)
    v.add_argument("--robot", default="panda")
    v.add_argument("--timeout", type=float, default=30.0)
    v.add_argument("--no-depth", action="store_true", help="ablation: run the model without depth")
    v.set_defaults(func=_cmd_evaluate)

    d = sub.add_parser("demo", help="closed-loop MuJoCo demo with the shipped checkpoint")
    d.add_argument("--episodes", type=int, default=10)
    d.add_argument("--seed", type=int, default=1000, help="first held-out seed")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--task", default="pick")
    d.add_argument("--checkpoint", default=default_ckpt)
    d.add_argument("--no-depth", action="store_true", help="ablation: the policy gets no depth image")
    d.add_argument("--timeout", type=float, default=40.0, help="seconds (sim time) per episode")
    d.set_defaults(func=_cmd_demo)

    x = sub.add_parser("expert", help="the scripted expert on the same held-out seeds (a baseline for demo)")
    x.add_argument("--episodes", type=int, default=10)
    x.add_argument("--seed", type=int, default=1000)
    x.add_argument("--task", default="pick")
    x.add_argument("--out", default="runs/expert")
    x.set_defaults(func=_cmd_expert)

    m = sub.add_parser("make-checkpoint", help="regenerate data and retrain the shipped checkpoint")
    m.add_argument("--out", default=default_ckpt)
    m.add_argument("--work", default="runs/make_checkpoint")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--quick", action="store_true", help="tiny data and steps (smoke test)")
    m.set_defaults(func=_cmd_make_checkpoint)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:     # delegated whole, so that `posevla train --help` is the trainer's help
        return _cmd_train(argparse.Namespace(train_args=argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
