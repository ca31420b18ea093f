"""`posevla collect`: demos (teleop or scripted) into a LeRobot dataset, the graph of
launch/collect_demos.launch.py (posevla_ros.launching.graphs) run in this process.

``sim=True`` starts sim_node: it resets every episode and judges success. ``sim=False``
drives a real arm (no sim_node): ``task`` is the instruction recorded with every episode, and
the operator resets the scene and says ready, saves or discards, with keys or the
std_srvs/Trigger services /evaluator/ready|success|failure|abort.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from posevla_ros.cli.options import SIM_OPTION, add_camera_options, camera_ok, graph_args_ok, sim_args
from posevla_ros.launching import graphs
from posevla_ros.launching.node_spec import with_overrides
from posevla_ros.launching.runner import run_specs
from posevla_ros.logic.teleop_drivers import ExpertDriver, make_expert_plan


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--sim", **SIM_OPTION)
    c.add_argument("--teleop", required=True, choices=["keyboard", "joy", "leader", "scripted"],
                   help="scripted: the sim's expert (needs --sim)")
    c.add_argument("--task", required=True,
                   help="real arm: the instruction recorded with every episode; --sim: a task family "
                        "(pick, put) or an instruction the sim can stage ('pick up the red cube')")
    c.add_argument("--episodes", type=int, default=10)
    c.add_argument("--out", required=True)
    c.add_argument("--seed", type=int, default=0, help="--sim: seed of the first episode")
    c.add_argument("--robot", default="sim_panda")
    c.add_argument("--timeout", type=float, default=None,
                   help="seconds per episode (default 30 scripted, 300 by hand); a timed-out episode is discarded")
    c.add_argument("--fps", type=float, default=10.0, help="recorded frames per second")
    add_camera_options(c)


def run(a: argparse.Namespace) -> int:
    camera = camera_ok("collect", a, a.sim is not None)
    if camera is None or not graph_args_ok("collect", "collect", dict(teleop=a.teleop, task=a.task, robot=a.robot,
                                                                      **sim_args(a), **camera)):
        return 1
    summary = collect_main(teleop=a.teleop, task=a.task, episodes=a.episodes, out=a.out, seed=a.seed,
                           robot=a.robot, timeout_s=a.timeout, fps=a.fps, camera=camera, **sim_args(a))
    print(json.dumps({k: summary[k] for k in ("task", "sim", "episodes_saved", "attempts", "out")}))
    return 0 if summary["episodes_saved"] >= a.episodes else 1


def collect_main(teleop: str, task: str, episodes: int, out: str, seed: int = 0, robot: str = "sim_panda",
                 fps: float = 10.0, mcap: bool = False, timeout_s: float | None = None, sim: bool = True,
                 overrides: dict | None = None, simulator: str = "mujoco", camera: dict | None = None) -> dict:
    """Record ``episodes`` demos into the LeRobot dataset ``out`` (at most 3 * episodes + 2
    attempts; failed and timed-out attempts are discarded). ``teleop='scripted'`` (sim only):
    the sim's scripted expert drives, through teleop_node's checks. ``simulator``: ``mujoco`` or
    ``robosuite:<Task>`` (posevla_core.sim.factory); ``camera``: the sim camera's graph arguments
    (camera_pose, camera_fov_deg, width, height, scene_look). Returns a summary (also
    <out>/collect_summary.json)."""
    out_dir = Path(out).expanduser()
    specs = with_overrides(graphs.build("collect", dict(
        sim=sim, simulator=simulator, teleop=teleop, robot=robot, task=task, episodes=int(episodes), seed=int(seed),
        timeout=float(timeout_s or 0.0), out=str(out_dir), fps=float(fps), mcap=bool(mcap),
        **(camera or {}))), per_node=overrides)
    drivers: list = []

    def wire(nodes: dict) -> None:
        """The scripted expert reads the in-process sim's state and drives through teleop."""
        if teleop != "scripted":
            return
        tele, ev = nodes["teleop_node"], nodes["evaluator_node"]
        driver = ExpertDriver(tele, make_expert_plan(nodes["sim_node"]), tele.core.fk)
        ev.on_hold, ev.on_release = driver.hold, driver.release
        drivers.append(driver)

    # the evaluator's loop thread starts at construction; it waits for services, so wiring
    # the driver right after the build is in time (its first hold/release comes later)
    nodes = run_specs(specs, until=lambda n: n["evaluator_node"].done.is_set(), num_threads=6, after_build=wire)
    if not nodes:
        raise RuntimeError("collection did not start (see the node logs)")
    s = nodes["evaluator_node"].summary or {"successes": 0, "episodes": 0, "per_episode": []}
    rec = nodes["recorder_node"]
    summary = {"episodes_saved": len(rec.core.saved), "attempts": s["episodes"], "successes": s["successes"],
               "task": task, "sim": sim, "simulator": simulator if sim else "", "seed": seed, "out": str(out_dir), "per_episode": s["per_episode"],
               "expert_errors": [e for d in drivers for e in d.errors]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "collect_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
