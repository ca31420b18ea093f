"""`posevla scripted` (alias `expert`): the scripted demonstrator (privileged sim state,
posevla_core.sim.demonstrator) on the demo's held-out seeds, the upper bound the learned policy
is compared with. Not the flow head's learned action expert."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm

from posevla_core.sim.factory import make_env
from posevla_ros.logic.report import summarize


def add_arguments(x: argparse.ArgumentParser) -> None:
    x.description = ("The scripted demonstrator (privileged sim state) on held-out seeds: the baseline the learned "
                     "policy is compared with. `posevla expert` is the same command.")
    x.add_argument("--episodes", type=int, default=10)
    x.add_argument("--seed", type=int, default=1000)
    x.add_argument("--task", default="pick")
    x.add_argument("--out", default="runs/expert")
    x.add_argument("--sim", default="mujoco", help="mujoco (our scene) | robosuite:<Task>[:<Arm>]")


def run(a: argparse.Namespace) -> int:
    from posevla_core.sim.factory import check_task  # the sim packages

    try:
        check_task(a.sim, a.task)
    except ValueError as e:
        print(f"posevla {a.cmd}: error: {e}", file=sys.stderr)
        return 2
    scripted_main(episodes=a.episodes, seed=a.seed, task=a.task, out=a.out, sim=a.sim)
    return 0


def scripted_main(episodes: int = 10, seed: int = 1000, task: str = "pick", out: str = "runs/expert",
                sim: str = "mujoco") -> dict:
    """The scripted expert (privileged sim state, posevla_core.sim.demonstrator) on the demo's seeds:
    the upper bound the learned policy is compared with. ``sim`` is any simulator choice
    (``robosuite:Lift:UR5e``); time to success is the sim time of its first success."""
    from posevla_core.sim.demonstrator import run_expert  # mujoco / robosuite

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
