"""`posevla run <graph>`: a launch graph's nodes in this process, where `ros2 launch` is not
available (posevla_ros.launching.runner)."""
from __future__ import annotations

import argparse

from posevla_ros.cli.options import graph_args_ok
from posevla_ros.launching.runner import run_graph
from posevla_ros.param_schema import parse_override


def add_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("graph", choices=["policy", "sim-demo"],
                   help="policy = policy_node + executor_node (launch/policy.launch.py); sim-demo = sim_node + "
                        "policy + executor on one staged episode (launch/sim_demo.launch.py)")
    r.add_argument("--robot", default="sim_panda", help="config/robots/<robot>.yaml")
    r.add_argument("--checkpoint", default=None)
    r.add_argument("--task", default="pick", help="sim-demo: a task family or an instruction the sim can stage")
    r.add_argument("--seed", type=int, default=1000, help="sim-demo: episode seed")
    r.add_argument("--exit-on-success", action="store_true",
                   help="sim-demo: end at the episode's first success (exit status 0) instead of holding the arm")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="override a node parameter, as ROS writes it: -p dry_run:=true (NAME=VALUE works too)")


def run(a: argparse.Namespace) -> int:
    graph = a.graph.replace("-", "_")
    args = {"robot": a.robot, "checkpoint": a.checkpoint or ""}
    if graph == "sim_demo":
        args.update(task=a.task, seed=a.seed, exit_on_success=a.exit_on_success)
    if not graph_args_ok("run", graph, args):
        return 1
    # each -p must name a parameter of some node of the graph (runner.graph_specs: a ConfigError otherwise)
    return run_graph(graph, args, overrides=dict(parse_override(kv) for kv in a.param)) or 0
