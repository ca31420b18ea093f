"""`make bench-robosuite`: robosuite's Lift and PickPlaceCan, trained on Panda demos only, then
evaluated on the Panda and, unchanged, on three other arms, beside the scripted expert on the
same seeds.

Every step is one `posevla` command (the ones docs/robosuite.md lists), run in a subprocess
from a work directory (default runs/bench_robosuite):

1. scripted demos through the node chain on the Panda (`posevla collect --sim robosuite:<Task>`);
2. our scene's motion and grounding shards (`posevla make-data`), mixed into the fine-tune so the
   first pose token stays supervised (recorded demos carry no object annotation);
3. labeled robosuite scenes with the expert's keyframes (`make-data --kind motion --sim
   robosuite:<Task>`): the robosuite objects' grounding for the fine-tune and the verifier (with
   demos alone, P(<no_object>) >= 0.5 on 46 % of the PickPlaceCan demo frames: "the can" was
   never supervised and every closed-loop prediction was refused);
4. the embodiment fine-tune from the shipped checkpoint (`posevla train --stage embodiment`);
5. the verifier retrained on robosuite's objects beside ours (`posevla train-verifier`);
6. `posevla evaluate` per (task, arm) on seeds 1000+ (never trained on) and `posevla expert`
   on the same seeds;
7. a few demos on one new arm (``fewshot``): collect them there, fine-tune the Panda checkpoint
   on them beside that task's labeled scenes, evaluate on the same seeds as its zero-shot row.

A step whose output is complete and whose command is unchanged is reused (a re-run after an
interruption resumes; delete the work directory for a fresh run); ``--checkpoint`` skips 1-5 and
evaluates that checkpoint (7 then fine-tunes that one).
The training budget (steps 1-5) is the sum of their wall times, written to ``timings``.
Results: ``<out>/table.md`` (success, Wilson 95 % interval, median time to success, episodes),
``<out>/table.json`` and ``<out>/success.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ARMS = ("Panda", "UR5e", "Kinova3", "IIWA")


@dataclass
class BenchConfig:
    demos: dict = field(default_factory=lambda: {"Lift": 60, "PickPlaceCan": 60})   # Panda demos per task
    demo_seed: int = 0
    fps: int = 5
    motion_scenes: int = 1500            # our scene's shards (what make checkpoint trains on)
    grounding_scenes: int = 1200
    robosuite_scenes: int = 300          # labeled robosuite scenes per task (motion shards: fine-tune + verifier)
    train_steps: int = 900
    verifier_steps: int = 1000
    # (task, arm) -> episodes; seeds eval_seed.. (demos use demo_seed.., robosuite scenes SCENE_SEEDS..)
    evals: dict = field(default_factory=lambda: {
        "PickPlaceCan:Panda": 50, "Lift:Panda": 50, **{f"Lift:{arm}": 20 for arm in ARMS[1:]}})
    eval_seed: int = 1000
    # (task, arm) -> demos collected on that arm for the few-demo fine-tune (evaluated with evals[key] episodes)
    fewshot: dict = field(default_factory=lambda: {"Lift:UR5e": 10})
    fewshot_steps: int = 150
    camera: str = ""                     # robosuite camera of every step ("" = agentview moved to our scene's view)
    randomize_scenes: bool = False       # our scene's shards drawn as make checkpoint-wide draws them

    @classmethod
    def quick(cls) -> "BenchConfig":
        """Every step once, in minutes (a smoke run, not a result)."""
        return cls(demos={"Lift": 2, "PickPlaceCan": 1}, motion_scenes=8, grounding_scenes=8, robosuite_scenes=4,
                   train_steps=4, verifier_steps=4, evals={"Lift:Panda": 1, "Lift:UR5e": 1},
                   fewshot={"Lift:UR5e": 1}, fewshot_steps=2)


def family(task: str) -> str:
    """The evaluator's task family of a robosuite task ("pick" / "put"), from its task table."""
    from posevla_core.sim.robosuite.env import TASKS

    return TASKS[task].family


SCENE_SEEDS = {"Lift": 400000, "PickPlaceCan": 500000, "Stack": 600000, "NutAssemblySquare": 700000}


def sim_name(key: str) -> str:
    """``--sim`` of an evals key ("Lift:UR5e" -> "robosuite:Lift:UR5e"), spelled as select does."""
    from posevla_core.sim.factory import parse_sim

    return str(parse_sim(f"robosuite:{key}"))


class Runner:
    """Runs `posevla` steps in order, skipping those that finished before (recorded in
    ``timings.json`` with their output present), and times each."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.timings_path = work / "timings.json"
        self.timings = json.loads(self.timings_path.read_text()) if self.timings_path.exists() else {}
        # a ROS domain of its own: two sim graphs on one domain answer each other's resets and
        # record each other's camera (seen when a collection ran beside the bench)
        self.env = dict(os.environ, ROS_DOMAIN_ID=str(30 + os.getpid() % 60))

    def step(self, name: str, args: list[str], done: Path) -> None:
        command = "posevla " + " ".join(args)
        # done = finished with THIS command: an evaluation of another checkpoint (``--checkpoint``)
        # or other counts in the same work directory runs again instead of being reported
        if self.timings.get(name, {}).get("command") == command and done.exists():
            print(f"[bench-robosuite] {name}: done before ({self.timings[name]['wall_s']} s)")
            return
        if done.parent != self.work:             # a step cut short before: start it over
            shutil.rmtree(done.parent, ignore_errors=True)
        cmd = [sys.executable, "-m", "posevla_ros.cli", *args]
        print(f"[bench-robosuite] {name}: posevla {' '.join(args)}", flush=True)
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        t = time.time()
        with open(log, "w") as f:
            rc = subprocess.call(cmd, cwd=self.work, stdout=f, stderr=subprocess.STDOUT, env=self.env)
        wall = time.time() - t
        if rc != 0 or not done.exists():
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise RuntimeError(f"step {name} failed (rc {rc}, {done} missing); log {log}:\n{tail}")
        self.timings[name] = {"wall_s": round(wall, 1), "command": command}
        self.timings_path.write_text(json.dumps(self.timings, indent=2))
        print(f"[bench-robosuite] {name}: {wall / 60:.1f} min", flush=True)


def camera_args(cfg: BenchConfig) -> list[str]:
    """``--camera NAME`` for every robosuite step (collection, labeled scenes, evaluation)."""
    return ["--camera", cfg.camera] if cfg.camera else []


def robosuite_scenes(run: Runner, cfg: BenchConfig, task: str) -> None:
    run.step(f"make_data_{task}", ["make-data", "--kind", "motion", "--sim", f"robosuite:{task}", "--scenes",
                                   str(cfg.robosuite_scenes), "--first-seed", str(SCENE_SEEDS[task]),
                                   *camera_args(cfg), "--out", f"scenes_{task}"], run.work / f"scenes_{task}" / "meta.json")


def train(run: Runner, cfg: BenchConfig, init: str) -> Path:
    w = run.work
    randomize = ["--randomize"] if cfg.randomize_scenes else []
    run.step("make_data_motion", ["make-data", "--kind", "motion", "--scenes", str(cfg.motion_scenes),
                                  "--first-seed", "100000", *randomize, "--out", "motion"], w / "motion" / "meta.json")
    run.step("make_data_grounding", ["make-data", "--kind", "grounding", "--scenes", str(cfg.grounding_scenes),
                                     "--first-seed", "100000", *randomize, "--out", "grounding"],
             w / "grounding" / "meta.json")
    for task in cfg.demos:
        robosuite_scenes(run, cfg, task)
    for task, n in cfg.demos.items():
        run.step(f"collect_{task}", ["collect", "--sim", f"robosuite:{task}", "--teleop", "scripted", "--task",
                                     family(task), "--episodes", str(n), "--seed", str(cfg.demo_seed), "--fps",
                                     str(cfg.fps), *camera_args(cfg), "--out", f"demos_{task}"], w / f"demos_{task}" / "collect_summary.json")
    run.step("train", ["train", "--stage", "embodiment", "--init", init, "--data", "motion",
                       *[f"scenes_{t}" for t in cfg.demos], *[f"demos_{t}" for t in cfg.demos], "--out", "finetune",
                       "--steps", str(cfg.train_steps)],
             w / "finetune" / "model.safetensors")
    run.step("train_verifier", ["train-verifier", "--init", "finetune", "--data", *[f"scenes_{t}" for t in cfg.demos],
                                "grounding", "motion", "--out", "checkpoint", "--steps", str(cfg.verifier_steps)],
             w / "checkpoint" / "verifier_report.json")
    return w / "checkpoint"


def _row(run: Runner, cfg: BenchConfig, out: str, task: str, arm: str, policy: str, demos_on_arm: int) -> dict:
    s = json.loads((run.work / out / "summary.json").read_text())
    return {"task": task, "arm": arm, "policy": policy, "panda_demos": cfg.demos.get(task, 0),
            "demos_on_arm": demos_on_arm, "episodes": s["episodes"], "successes": s["successes"], "ci95": s["ci95"],
            "median_time_to_success_s": s["time_to_success_s"]["median"], "seed": cfg.eval_seed}


def _eval_args(cfg: BenchConfig, key: str, camera: bool = True) -> list[str]:
    """The episodes of an evals key; ``camera`` False for the scripted expert, which reads the
    sim's state, not the image."""
    task = key.split(":")[0]
    return ["--sim", sim_name(key), "--task", family(task), "--episodes", str(cfg.evals[key]),
            "--seed", str(cfg.eval_seed), *(camera_args(cfg) if camera else [])]


def evaluate(run: Runner, cfg: BenchConfig, ckpt: Path) -> list[dict]:
    rows = []
    for key in cfg.evals:
        task, arm = key.split(":")
        tag = f"{task}_{arm}"
        run.step(f"eval_{tag}", ["evaluate", *_eval_args(cfg, key), "--checkpoint", str(ckpt), "--out", f"eval_{tag}"],
                 run.work / f"eval_{tag}" / "summary.json")
        run.step(f"expert_{tag}", ["scripted", *_eval_args(cfg, key, camera=False), "--out", f"expert_{tag}"],
                 run.work / f"expert_{tag}" / "summary.json")
        on_arm = cfg.demos.get(task, 0) if arm == "Panda" else 0
        rows.append(_row(run, cfg, f"eval_{tag}", task, arm, "Pose-VLA", on_arm))
        rows.append(_row(run, cfg, f"expert_{tag}", task, arm, "scripted expert", on_arm))
    return rows


def fewshot(run: Runner, cfg: BenchConfig, ckpt: Path) -> list[dict]:
    """The Panda checkpoint fine-tuned with a few demos collected on the new arm (beside the task's
    labeled robosuite scenes, so the object token stays supervised), on the zero-shot row's seeds."""
    rows = []
    for key, n in cfg.fewshot.items():
        task, arm = key.split(":")
        tag = f"{task}_{arm}"
        robosuite_scenes(run, cfg, task)
        run.step(f"fewshot_collect_{tag}", ["collect", "--sim", sim_name(key), "--teleop", "scripted", "--task",
                                            family(task), "--episodes", str(n), "--seed", str(cfg.demo_seed),
                                            "--fps", str(cfg.fps), *camera_args(cfg), "--out", f"demos_{tag}"],
                 run.work / f"demos_{tag}" / "collect_summary.json")
        run.step(f"fewshot_train_{tag}", ["train", "--stage", "embodiment", "--init", str(ckpt), "--data",
                                          f"scenes_{task}", f"demos_{tag}", "--out", f"finetune_{tag}",
                                          "--steps", str(cfg.fewshot_steps)],
                 run.work / f"finetune_{tag}" / "model.safetensors")
        run.step(f"eval_{tag}_fewshot", ["evaluate", *_eval_args(cfg, key), "--checkpoint", f"finetune_{tag}",
                                         "--out", f"eval_{tag}_fewshot"],
                 run.work / f"eval_{tag}_fewshot" / "summary.json")
        rows.append(_row(run, cfg, f"eval_{tag}_fewshot", task, arm, "Pose-VLA", n))
    return rows


def table_md(rows: list[dict]) -> str:
    lines = ["| task | arm | demos on that arm | policy | success | Wilson 95 % | median time to success | episodes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lo, hi = r["ci95"]
        t = r["median_time_to_success_s"]
        demos = r["demos_on_arm"] if r["policy"] == "Pose-VLA" else "-"
        lines.append(f"| {r['task']} | {r['arm']} | {demos} | {r['policy']} | {r['successes']}/{r['episodes']} | "
                     f"{lo:.0%}-{hi:.0%} | {'-' if t is None else f'{t:.1f} s'} | {r['episodes']} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], png: Path, camera: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    def label(r: dict) -> str:
        few = r["policy"] == "Pose-VLA" and r["arm"] != "Panda" and r["demos_on_arm"] > 0
        return f"{r['task']}\n{r['arm']}" + (f"\n+{r['demos_on_arm']} demos" if few else "")

    keys = list(dict.fromkeys(label(r) for r in rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(keys) + 2, 3.6))
    for j, who in enumerate(("Pose-VLA", "scripted expert")):
        sel = {label(r): r for r in rows if r["policy"] == who}
        at = [i for i, k in enumerate(keys) if k in sel]
        rate = np.array([sel[keys[i]]["successes"] / max(sel[keys[i]]["episodes"], 1) for i in at])
        lo = np.array([sel[keys[i]]["ci95"][0] for i in at])
        hi = np.array([sel[keys[i]]["ci95"][1] for i in at])
        ax.bar(np.array(at) + (j - 0.5) * 0.38, rate, 0.36, label=who, yerr=[rate - lo, hi - rate], capsize=3)
    ax.set_xticks(np.arange(len(keys)), keys)
    ax.set_ylim(0, 1.22)                   # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("success (Wilson 95 %)")
    view = f"robosuite's {camera}" if camera else "our scene's viewpoint"
    ax.set_title(f"robosuite, {view}, seeds 1000+: trained on Panda demos (+ demos on the arm where marked)")
    ax.legend(loc="upper right", ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="runs/bench_robosuite", help="work directory (reused: steps done are skipped)")
    ap.add_argument("--out", default="bench_results/robosuite", help="table.md, table.json, success.png")
    ap.add_argument("--init", default="checkpoints/demo", help="the checkpoint the fine-tune starts from")
    ap.add_argument("--checkpoint", default="", help="evaluate this checkpoint (skips collection and training)")
    ap.add_argument("--quick", action="store_true", help="every step once with tiny counts (a smoke run)")
    ap.add_argument("--camera", default="", metavar="NAME",
                    help="robosuite's own camera for demos, labeled scenes and evaluation (agentview, frontview, "
                         "...); default: agentview moved to where our scene's camera sits")
    ap.add_argument("--randomize-scenes", action="store_true",
                    help="our scene's shards with randomized cameras, light and table (as checkpoints/wide was "
                         "trained), so the fine-tune keeps what --init learned about viewpoints")
    ap.add_argument("--no-fewshot", action="store_true", help="skip the few-demo fine-tune on another arm")
    ap.add_argument("--arms", default="", metavar="A,B",
                    help="evaluate on these arms only (default: Panda, UR5e, Kinova3, IIWA)")
    a = ap.parse_args(argv)
    from posevla_core.paths import resolve_checkpoint

    cfg = BenchConfig.quick() if a.quick else BenchConfig()
    cfg.camera, cfg.randomize_scenes = a.camera, a.randomize_scenes
    if a.no_fewshot:
        cfg.fewshot = {}
    if a.arms:
        arms = {x.strip().lower() for x in a.arms.split(",") if x.strip()}
        unknown = arms - {x.lower() for x in ARMS}
        if unknown:
            ap.error(f"--arms: unknown {sorted(unknown)}; known: {', '.join(ARMS)}")
        cfg.evals = {k: n for k, n in cfg.evals.items() if k.split(":")[1].lower() in arms}
        cfg.fewshot = {k: n for k, n in cfg.fewshot.items() if k in cfg.evals}
    work, out = Path(a.work).resolve(), Path(a.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    run = Runner(work)
    t0 = time.time()
    try:
        if a.checkpoint:
            ckpt = resolve_checkpoint(a.checkpoint).resolve()
        else:
            ckpt = train(run, cfg, str(resolve_checkpoint(a.init).resolve()))
        rows = evaluate(run, cfg, ckpt)
        rows += fewshot(run, cfg, ckpt)
    except (FileNotFoundError, RuntimeError) as e:      # a missing checkpoint, a failed step (its log named)
        print(f"[bench-robosuite] error: {e}", file=sys.stderr)
        return 1
    # the training budget: Panda data + fine-tune + verifier (the few-demo steps are reported on their own)
    train_s = sum(v["wall_s"] for k, v in run.timings.items() if not k.startswith(("eval_", "expert_", "fewshot_")))
    fewshot_s = sum(v["wall_s"] for k, v in run.timings.items() if k.startswith("fewshot_"))
    out.mkdir(parents=True, exist_ok=True)
    md = table_md(rows)
    (out / "table.md").write_text(md)
    (out / "table.json").write_text(json.dumps({
        "checkpoint": str(ckpt), "config": asdict(cfg), "rows": rows,
        "training_wall_s": None if a.checkpoint else round(train_s, 1), "fewshot_wall_s": round(fewshot_s, 1),
        "timings": run.timings}, indent=2))
    plot(rows, out / "success.png", cfg.camera)
    print("\n" + md)
    if not a.checkpoint:
        print(f"[bench-robosuite] training budget (collection + data + fine-tune + verifier): {train_s / 60:.1f} min")
    print(f"[bench-robosuite] this run {(time.time() - t0) / 60:.1f} min; wrote {out}/table.md, table.json, success.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
