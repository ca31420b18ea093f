"""`posevla evaluate`: a checkpoint over K episodes, the graph of launch/evaluate.launch.py
(posevla_ros.launching.graphs) run in this process.

``sim=True`` starts sim_node: it resets every episode and judges success. ``sim=False``
drives a real arm (no sim_node): ``task`` is the instruction, and the operator resets the
scene and says ready and marks success or failure, with keys or the std_srvs/Trigger services
/evaluator/ready|success|failure|abort. Timeouts apply either way; every rollout is recorded
and the report written.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from posevla_core.paths import resolve_checkpoint
from posevla_ros.cli.options import SIM_OPTION, add_camera_options, camera_ok, graph_args_ok, sim_args
from posevla_ros.launching import graphs
from posevla_ros.launching.node_spec import with_overrides
from posevla_ros.launching.runner import run_specs


def add_arguments(v: argparse.ArgumentParser) -> None:
    v.add_argument("--sim", **SIM_OPTION)
    v.add_argument("--checkpoint", default="", help="default: the shipped demo checkpoint")
    v.add_argument("--task", required=True,
                   help="real arm: the instruction of every episode; --sim: a task family (pick, put) or an "
                        "instruction the sim can stage ('pick up the red cube')")
    v.add_argument("--episodes", type=int, default=10)
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=1000, help="--sim: seed of the first episode")
    v.add_argument("--robot", default="sim_panda")
    v.add_argument("--timeout", type=float, default=30.0, help="seconds per episode (sim time in sim)")
    v.add_argument("--no-depth", action="store_true", help="ablation: run the model without depth")
    add_camera_options(v)


def run(a: argparse.Namespace) -> int:
    camera = camera_ok("evaluate", a, a.sim is not None)
    if camera is None or not graph_args_ok("evaluate", "evaluate", dict(task=a.task, robot=a.robot, **sim_args(a),
                                                                        **camera)):
        return 1
    summary = evaluate_main(checkpoint=str(resolve_checkpoint(a.checkpoint)), task=a.task, episodes=a.episodes,
                            out=a.out, seed=a.seed, robot=a.robot, use_depth=not a.no_depth,
                            timeout_s=a.timeout, camera=camera, **sim_args(a))
    print(json.dumps({k: summary[k] for k in ("task", "episodes", "successes", "success_rate", "ci95")}))
    return 0


def evaluate_main(checkpoint: str | None, task: str, episodes: int, out: str, seed: int = 1000,
                  robot: str = "sim_panda", use_depth: bool = True, timeout_s: float = 30.0, sim: bool = True,
                  keyboard: bool | None = None, model=None, overrides: dict | None = None, absent: int = 0,
                  simulator: str = "mujoco", camera: dict | None = None) -> dict:
    """Evaluate ``episodes`` episodes, then (sim) ``absent`` absent-object episodes (summary
    ``absent``: refused, motions); returns the summary (also <out>/summary.json).
    ``keyboard``: operator keys in this terminal on a real arm (default: when stdin is a tty).
    ``camera``: the sim camera's graph arguments (camera_pose, camera_fov_deg, width, height, scene_look)."""
    if keyboard is None:
        keyboard = not sim and sys.stdin.isatty()
    specs = with_overrides(graphs.build("evaluate", dict(
        sim=sim, simulator=simulator, robot=robot, checkpoint=str(checkpoint or ""), task=task, episodes=int(episodes),
        absent=int(absent), seed=int(seed),
        timeout=float(timeout_s), out=str(Path(out).expanduser()), use_depth=bool(use_depth),
        keyboard=bool(keyboard), **(camera or {}))), per_node=overrides)
    Path(out).expanduser().mkdir(parents=True, exist_ok=True)
    nodes = run_specs(specs, model=model, until=lambda n: n["evaluator_node"].done.is_set(), num_threads=6)
    summary = nodes["evaluator_node"].summary if nodes else None
    if summary is None:
        raise RuntimeError("evaluation failed (see the evaluator_node log)")
    return summary
