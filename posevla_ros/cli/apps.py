"""`posevla evaluate` and `posevla collect`: the graphs of launch/evaluate.launch.py and
launch/collect_demos.launch.py (posevla_ros.launching.graphs), run in this process.

``sim=True`` starts sim_node: it resets every episode and judges success. ``sim=False``
drives a real arm (no sim_node): ``task`` is the instruction, and the operator resets the
scene and says ready, marks success or failure (evaluate), saves or discards (collect),
with keys or the std_srvs/Trigger services /evaluator/ready|success|failure|abort. Timeouts
apply either way; every evaluation rollout is recorded and the report written.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from posevla_ros.launching import graphs as G


def _with_overrides(specs: list, overrides: dict | None) -> list:
    """``overrides``: {node name without _node: {param: value}} on top of the graph's values."""
    by_node = {f"{k}_node": v for k, v in (overrides or {}).items()}
    unknown = set(by_node) - {s.name for s in specs}
    if unknown:
        raise ValueError(f"overrides for nodes not in the graph: {sorted(unknown)}")
    return [dataclasses.replace(s, params=dict(s.params, **G.P.typed_overrides(
        G.node_param_specs(s.name), by_node[s.name], strict=True))) if s.name in by_node else s for s in specs]


def evaluate_main(checkpoint: str | None, task: str, episodes: int, out: str, seed: int = 1000,
                  robot: str = "sim_panda", use_depth: bool = True, timeout_s: float = 30.0, sim: bool = True,
                  keyboard: bool | None = None, model=None, overrides: dict | None = None, absent: int = 0,
                  simulator: str = "mujoco", camera: dict | None = None) -> dict:
    """Evaluate ``episodes`` episodes, then (sim) ``absent`` absent-object episodes (summary
    ``absent``: refused, motions); returns the summary (also <out>/summary.json).
    ``keyboard``: operator keys in this terminal on a real arm (default: when stdin is a tty).
    ``camera``: the sim camera's graph arguments (camera_pose, camera_fov_deg, width, height, scene_look)."""
    from posevla_ros.launching.runner import run_specs

    if keyboard is None:
        keyboard = not sim and sys.stdin.isatty()
    specs = _with_overrides(G.build("evaluate", dict(
        sim=sim, simulator=simulator, robot=robot, checkpoint=str(checkpoint or ""), task=task, episodes=int(episodes),
        absent=int(absent), seed=int(seed),
        timeout=float(timeout_s), out=str(Path(out).expanduser()), use_depth=bool(use_depth),
        keyboard=bool(keyboard), **(camera or {}))), overrides)
    Path(out).expanduser().mkdir(parents=True, exist_ok=True)
    nodes = run_specs(specs, model=model, until=lambda n: n["evaluator_node"].done.is_set(), num_threads=6)
    summary = nodes["evaluator_node"].summary if nodes else None
    if summary is None:
        raise RuntimeError("evaluation failed (see the evaluator_node log)")
    return summary


def collect_main(teleop: str, task: str, episodes: int, out: str, seed: int = 0, robot: str = "sim_panda",
                 fps: float = 10.0, mcap: bool = False, timeout_s: float | None = None, sim: bool = True,
                 overrides: dict | None = None, simulator: str = "mujoco", camera: dict | None = None) -> dict:
    """Record ``episodes`` demos into the LeRobot dataset ``out`` (at most 3 * episodes + 2
    attempts; failed and timed-out attempts are discarded). ``teleop='scripted'`` (sim only):
    the sim's scripted expert drives, through teleop_node's checks. ``simulator``: ``mujoco`` or
    ``robosuite:<Task>`` (posevla_core.sim.factory); ``camera``: the sim camera's graph arguments
    (camera_pose, camera_fov_deg, width, height, scene_look). Returns a summary (also
    <out>/collect_summary.json)."""
    from posevla_ros.launching.runner import run_specs
    from posevla_ros.logic.teleop_drivers import ExpertDriver, make_expert_plan

    out_dir = Path(out).expanduser()
    specs = _with_overrides(G.build("collect", dict(
        sim=sim, simulator=simulator, teleop=teleop, robot=robot, task=task, episodes=int(episodes), seed=int(seed),
        timeout=float(timeout_s or 0.0), out=str(out_dir), fps=float(fps), mcap=bool(mcap),
        **(camera or {}))), overrides)
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
