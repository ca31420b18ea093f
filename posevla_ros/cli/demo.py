"""`make demo` / `posevla demo`: the closed-loop MuJoCo demo with the shipped checkpoint.

The demo is an evaluation run on held-out seeds through the very nodes a real arm uses
(sim_node -> policy_node -> executor_node -> sim_node's trajectory controller), so it
lives on top of the evaluator instead of re-implementing an episode loop.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from posevla_core.paths import resolve_checkpoint
from posevla_ros.cli.evaluate import evaluate_main
from posevla_ros.cli.options import add_camera_options, camera_ok, graph_args_ok
from posevla_ros.logic.report import absent_line

ABSENT_DEFAULT = 5       # absent-object episodes of `posevla demo` / `make demo` (a few s each)


def add_arguments(d: argparse.ArgumentParser) -> None:
    d.add_argument("--episodes", type=int, default=10)
    d.add_argument("--absent", type=int, default=None,
                   help="then this many episodes whose instruction names an object not in the scene; right = "
                        "object_found false and no motion (default 5; --episodes 0 --absent 30: the refusal check)")
    d.add_argument("--seed", type=int, default=1000, help="first held-out seed")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--task", default="pick")
    d.add_argument("--checkpoint", default="", help="default: the shipped demo checkpoint")
    d.add_argument("--no-depth", action="store_true", help="ablation: the policy gets no depth image")
    d.add_argument("--timeout", type=float, default=40.0, help="seconds (sim time) per episode")
    add_camera_options(d)


def run(a: argparse.Namespace) -> int:
    a.absent = ABSENT_DEFAULT if a.absent is None else a.absent
    camera = camera_ok("demo", a, True)
    if camera is None or not graph_args_ok("demo", "evaluate", dict(sim=True, task=a.task, episodes=a.episodes,
                                                                    absent=a.absent, **camera)):
        return 1
    summary = demo_main(episodes=a.episodes, seed=a.seed, out=a.out, task=a.task, checkpoint=a.checkpoint,
                        timeout_s=a.timeout, use_depth=not a.no_depth, absent=a.absent, camera=camera)
    done = summary.get("episodes", 0) + (summary.get("absent") or {}).get("episodes", 0)
    return 0 if done > 0 else 1


def demo_main(episodes: int = 10, seed: int = 1000, out: str = "runs/demo", task: str = "pick",
              checkpoint: str | None = None, timeout_s: float = 40.0, use_depth: bool = True,
              absent: int = ABSENT_DEFAULT, camera: dict | None = None) -> dict:
    """``episodes`` held-out episodes of ``task`` from ``seed``, then ``absent`` episodes whose
    instruction names an object not in the scene (seeds after those): right when every
    prediction says object_found false and the arm never moves. ``camera``: where the sim
    camera stands (graph arguments camera_pose, camera_fov_deg, width, height, scene_look)."""
    ckpt = resolve_checkpoint(checkpoint)
    print(f"[demo] checkpoint {ckpt}\n[demo] task family '{task}', {episodes} held-out episodes "
          f"from seed {seed}, then {absent} absent-object instructions; report in {out}/")
    if camera:
        print("[demo] camera " + ", ".join(f"{k} {v}" for k, v in camera.items()))
    summary = evaluate_main(checkpoint=str(ckpt), task=task, episodes=episodes, out=out, seed=seed,
                            timeout_s=timeout_s, use_depth=use_depth, sim=True, absent=absent, camera=camera)
    summary["use_depth"] = bool(use_depth)
    lo, hi = summary.get("ci95", (float("nan"), float("nan")))
    if summary["episodes"]:
        print("\n episode  seed   result    time_s  instruction")
    for rec in summary.get("per_episode", []):
        result = "success" if rec.get("success") else ("timeout" if rec.get("timeout") else "failure")
        print(f" {rec.get('episode', '?'):>7}  {rec.get('seed', '?'):>5}  {result:<8}"
              f"  {rec.get('duration_s', float('nan')):6.1f}  {rec.get('instruction', '')}")
    a = summary.get("absent")
    if a:
        print("\n absent   seed   refused  motion  predictions (refused)  instruction")
        for rec in a["per_episode"]:
            print(f" {rec['episode']:>6}  {rec['seed']:>5}  {'yes' if rec['refused'] else 'no':<7}  "
                  f"{'yes' if rec['motion'] else 'no':<6}  {rec['predictions']:>5} ({rec['refused_predictions']})"
                  f"            {rec['instruction']}")
    if summary["episodes"]:
        print(f"\n[demo] success {summary['successes']}/{summary['episodes']} = {summary['success_rate']:.0%} "
              f"(95% Wilson interval {lo:.0%}..{hi:.0%}){absent_line(summary)}")
    else:                                  # absent-object instructions only
        print(f"\n{absent_line(summary, prefix='[demo] ')}")
    print(f"[demo] wrote {Path(out) / 'summary.json'} and {Path(out) / 'report.html'}")
    Path(out, "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
