"""`make demo` / `posevla demo`: the closed-loop MuJoCo demo with the shipped checkpoint.

The demo is an evaluation run on held-out seeds through the very nodes a real arm uses
(sim_node -> policy_node -> executor_node -> sim_node's trajectory controller), so it
lives on top of the evaluator instead of re-implementing an episode loop.
"""
from __future__ import annotations

import json
from pathlib import Path

from posevla_ros.params import resolve_checkpoint
from posevla_ros.logic.report import absent_line

ABSENT_DEFAULT = 5       # absent-object episodes of `posevla demo` / `make demo` (a few s each)


def demo_main(episodes: int = 10, seed: int = 1000, out: str = "runs/demo", task: str = "pick",
              checkpoint: str | None = None, timeout_s: float = 40.0, use_depth: bool = True,
              absent: int = ABSENT_DEFAULT, camera: dict | None = None) -> dict:
    """``episodes`` held-out episodes of ``task`` from ``seed``, then ``absent`` episodes whose
    instruction names an object not in the scene (seeds after those): right when every
    prediction says object_found false and the arm never moves. ``camera``: where the sim
    camera stands (graph arguments camera_pose, camera_fov_deg, width, height, scene_look)."""
    from posevla_ros.cli.apps import evaluate_main

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


def expert_main(episodes: int = 10, seed: int = 1000, task: str = "pick", out: str = "runs/expert",
                sim: str = "mujoco") -> dict:
    """The scripted expert (privileged sim state, posevla_core.sim.demonstrator) on the demo's seeds:
    the upper bound the learned policy is compared with. ``sim`` is any simulator choice
    (``robosuite:Lift:UR5e``); time to success is the sim time of its first success."""
    from tqdm.auto import tqdm

    from posevla_core.sim.demonstrator import run_expert
    from posevla_core.sim.factory import make_env
    from posevla_ros.logic.report import summarize

    recs = []
    with make_env(sim) as env:
        for i in tqdm(range(episodes), desc=f"expert {sim} {task}"):
            spec = env.reset(seed=seed + i, task=task)
            t0, first = env.time, []

            def note_success(e) -> None:
                if not first and e.success():
                    first.append(e.time - t0)

            ok = bool(run_expert(env, on_step=note_success))
            recs.append({"episode": i, "seed": seed + i, "instruction": spec.instruction, "success": ok,
                         "outcome": "success" if ok else "failure",
                         "time_to_success_s": first[0] if ok and first else None})
    summary = summarize(recs, task, simulator=str(sim), policy="scripted expert")
    Path(out).mkdir(parents=True, exist_ok=True)
    Path(out, "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    lo, hi = summary["ci95"]
    print(f"[expert] success {summary['successes']}/{summary['episodes']} = {summary['success_rate']:.0%} "
          f"(95% Wilson interval {lo:.0%}..{hi:.0%})")
    return summary
