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


def _graph_args_ok(cmd: str, graph: str, args: dict) -> bool:
    """Check the graph's arguments before anything starts: a bad one (an instruction the sim
    cannot stage, a real arm without an instruction) is one line on stderr."""
    from posevla_ros.graphs import build

    try:
        build(graph, args)
    except (ValueError, FileNotFoundError) as e:
        print(f"posevla {cmd}: {e}", file=sys.stderr)
        return False
    return True


def _cmd_run(a: argparse.Namespace) -> int:
    from posevla_ros.runner import run_graph

    graph = a.graph.replace("-", "_")
    args = {"robot": a.robot, "checkpoint": a.checkpoint or ""}
    if graph == "sim_demo":
        args.update(task=a.task, seed=a.seed)
    if not _graph_args_ok("run", graph, args):
        return 1
    overrides = dict(kv.split("=", 1) for kv in a.param)
    return run_graph(graph, args, overrides=overrides) or 0


def _cmd_train(a: argparse.Namespace) -> int:
    from posevla_core.train import train_main

    train_main(stage=a.stage, data_dir=a.data, out_dir=a.out, init=a.init, steps=a.steps,
               config_file=a.config)
    return 0


def _cmd_eval_offline(a: argparse.Namespace) -> int:
    from posevla_core.train import eval_offline_main

    out = a.out or str(Path(a.checkpoint) / "eval_offline.json")
    eval_offline_main(checkpoint=a.checkpoint, data_dir=a.data, out_json=out)
    return 0


def _cmd_collect(a: argparse.Namespace) -> int:
    from posevla_ros.apps import collect_main

    if not _graph_args_ok("collect", "collect", dict(sim=a.sim, teleop=a.teleop, task=a.task, robot=a.robot)):
        return 1
    summary = collect_main(teleop=a.teleop, task=a.task, episodes=a.episodes, out=a.out, seed=a.seed,
                           robot=a.robot, sim=a.sim, timeout_s=a.timeout, fps=a.fps)
    print(json.dumps({k: summary[k] for k in ("task", "sim", "episodes_saved", "attempts", "out")}))
    return 0 if summary["episodes_saved"] >= a.episodes else 1


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from posevla_ros.apps import evaluate_main

    if not _graph_args_ok("evaluate", "evaluate", dict(sim=a.sim, task=a.task, robot=a.robot)):
        return 1
    summary = evaluate_main(checkpoint=a.checkpoint, task=a.task, episodes=a.episodes, out=a.out, sim=a.sim,
                            seed=a.seed, robot=a.robot, use_depth=not a.no_depth, timeout_s=a.timeout)
    print(json.dumps({k: summary[k] for k in ("task", "episodes", "successes", "success_rate", "ci95")}))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from posevla_ros.demo import demo_main

    if not _graph_args_ok("demo", "evaluate", dict(sim=True, task=a.task)):
        return 1
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
    r.add_argument("graph", choices=["policy", "sim-demo"],
                   help="policy = policy_node + executor_node (launch/policy.launch.py); sim-demo = sim_node + "
                        "policy + executor on one staged episode (launch/sim_demo.launch.py)")
    r.add_argument("--robot", default="panda", help="config/robots/<robot>.yaml")
    r.add_argument("--checkpoint", default=None)
    r.add_argument("--task", default="pick", help="sim-demo: a task family or an instruction the sim can stage")
    r.add_argument("--seed", type=int, default=1000, help="sim-demo: episode seed")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a node parameter, e.g. -p backend=joint_trajectory")
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser("train", help="train one Pose-VLA stage")
    t.add_argument("--stage", required=True, choices=["grounding", "motion", "embodiment"])
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--init", default=None, help="checkpoint to start from")
    t.add_argument("--steps", type=int, default=None)
    t.add_argument("--config", default=None, help="training config file (YAML/JSON) with overrides")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval-offline", help="metrics of a checkpoint on a dataset")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--out", default=None)
    e.set_defaults(func=_cmd_eval_offline)

    c = sub.add_parser("collect", help="collect demos (teleop or scripted) into a LeRobot dataset")
    c.add_argument("--sim", action="store_true",
                   help="start the MuJoCo sim (resets and success from the sim); without it: a real arm")
    c.add_argument("--teleop", required=True, choices=["keyboard", "joy", "leader", "scripted"],
                   help="scripted: the sim's expert (needs --sim)")
    c.add_argument("--task", required=True,
                   help="real arm: the instruction recorded with every episode; --sim: a task family "
                        "(pick, put) or an instruction the sim can stage ('pick up the red cube')")
    c.add_argument("--episodes", type=int, default=10)
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=0, help="--sim: seed of the first episode")
    c.add_argument("--robot", default="panda")
    c.add_argument("--timeout", type=float, default=None,
                   help="seconds per episode (default 30 scripted, 300 by hand); a timed-out episode is discarded")
    c.add_argument("--fps", type=float, default=10.0, help="recorded frames per second")
    c.set_defaults(func=_cmd_collect)

    v = sub.add_parser("evaluate", help="evaluate a checkpoint over K episodes")
    v.add_argument("--sim", action="store_true",
                   help="start the MuJoCo sim (resets and success from the sim); without it: a real arm")
    v.add_argument("--checkpoint", default=default_ckpt)
    v.add_argument("--task", required=True,
                   help="real arm: the instruction of every episode; --sim: a task family (pick, put) or an "
                        "instruction the sim can stage ('pick up the red cube')")
    v.add_argument("--episodes", type=int, default=10)
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=1000, help="--sim: seed of the first episode")
    v.add_argument("--robot", default="panda")
    v.add_argument("--timeout", type=float, default=30.0, help="seconds per episode (sim time in sim)")
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
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
