"""The shipped demo checkpoint, reproducibly: sim data for the three stages, then training.

``make checkpoint`` = ``posevla make-checkpoint --out checkpoints/demo``:

1. grounding data: randomized scenes (objects, bins, camera pose jittered), the rendered RGB-D
   frame, and for the instructed object and a distractor its category, 2D box and 6-DoF pose
   in the camera frame, straight from the simulator's state (``ShardWriter``, kind grounding);
2. motion data: the scripted expert's trajectory for the episode's instruction (its keyframes
   on a fixed clock of ``waypoint_dt`` seconds, base frame) with the camera extrinsics
   (``ShardWriter``, kind motion);
3. embodiment data: the expert executed in MuJoCo physics on the same fixed clock, recorded as
   LeRobot demos with the recorder's schema (``demo_frame``) plus object annotations;
4. train grounding -> motion -> embodiment with ``train_main``;
5. train the object verifier on the frozen result (``train/verifier.py``) and copy the final
   model, its curves and offline metrics into ``out_dir``.

Scene seeds: training data uses seeds >= 100000; evaluation (``posevla demo``) uses 1000+, and
held-out shards (``posevla make-data``, ``first_seed``) default to 1000+ too.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.data.lerobot import LeRobotWriter, demo_frame
from posevla_core.data.shards import ShardWriter
from posevla_core.geometry import se3
from posevla_core.sim.demonstrator import GRIPPER_SEGMENT_S, default_kinematics, plan_keyframes
from posevla_core.sim.factory import make_env, parse_sim
from posevla_core.sim.mujoco import scene
from posevla_core.sim.mujoco.env import SimEnv
from posevla_core.sim.mujoco.randomize import DomainRandomization
from posevla_core.train.demo_model import model_overrides, sim_categories
from posevla_core.train.stages import fit_bins_main, train_main
from posevla_core.train.verifier import VerifierConfig, train_verifier_main

TRAIN_SEED_BASE = 100_000


@dataclass
class PipelineConfig:
    grounding_scenes: int = 1200
    motion_scenes: int = 1500
    demo_episodes: int = 60
    demo_fps: int = 5
    grounding_steps: int = 1200
    motion_steps: int = 1200
    embodiment_steps: int = 600
    verifier_steps: int = 1500
    batch_size: int = 32
    width: int = 224
    height: int = 224
    # every scene draws its camera pose and fov, light, table color and depth-sensor faults
    # (sim/randomize.py, DomainRandomization): a checkpoint for cameras other than ours
    randomize: bool = False

    @classmethod
    def quick(cls, randomize: bool = False) -> "PipelineConfig":
        return cls(grounding_scenes=24, motion_scenes=24, demo_episodes=2, grounding_steps=20, motion_steps=20,
                   embodiment_steps=10, verifier_steps=20, batch_size=8, width=96, height=96, randomize=randomize)

    @classmethod
    def wide(cls) -> "PipelineConfig":
        """The viewpoint-randomized checkpoint (checkpoints/wide): every training scene draws its
        camera, lens, light, table color and depth faults, so the data holds more kinds of scene
        and the grounding and motion stages get more of it and more steps (~85 min on 2 cores)."""
        return cls(grounding_scenes=2000, motion_scenes=2000, grounding_steps=1500, motion_steps=1500, randomize=True)


def check_work_dir(work: Path, pc: PipelineConfig) -> None:
    """``work`` keeps its generated data between runs (an interrupted run resumes); data made
    under another PipelineConfig (the nominal scenes where randomized ones are asked, other
    counts or image sizes) would be reused silently, so it is an error that names the way out.
    A work directory from before the stamp holds nominal scenes (the only kind there was)."""
    stamp = work / "pipeline.json"
    now = {k: v for k, v in pc.__dict__.items() if "steps" not in k and k != "batch_size"}   # what the data depends on
    has_data = any((work / d).exists() for d in ("grounding", "motion", "demos"))
    if has_data:
        before = json.loads(stamp.read_text()) if stamp.exists() else {**now, "randomize": False}
        diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if diff:
            raise ValueError(f"{work} holds data made with other settings ({', '.join(diff)}): pass another --work, "
                             f"or delete {work} to regenerate it")
    stamp.write_text(json.dumps(now, indent=1))


def _ground(env, name: str) -> dict:
    """The shard fields of one object's grounding labels, plus every object in the scene, near
    to far (``scene_*``: what a negative instruction must not name, and every instance for
    multi-instance grounding), padded with NaN / "" to the sim's object count."""

    by_name = {n: env.object_labels(n) for n in env.labeled_names()}
    g = dict(by_name[name])
    labels = sorted(by_name.values(), key=lambda d: float(np.linalg.norm(d["object_pose"][:3])))
    n_max = len(scene.object_names()) + len(scene.bin_names())
    pad = n_max - len(labels)
    g["scene_categories"] = "|".join(d["category"] for d in labels)
    for key, dim in (("object_pose", 7), ("object_size", 3), ("box_xyxy", 4)):
        arr = np.full((n_max, dim), np.nan)
        arr[:n_max - pad] = [d[key] for d in labels]
        g[f"scene_{key}"] = arr
    return g


def scene_seed(kind_offset: int, seed: int, i: int, first_seed: int | None) -> int:
    """Scene seed of sample ``i``: training data counts up from TRAIN_SEED_BASE (per kind and
    ``seed``); ``first_seed`` (held-out data) counts up from there instead."""
    return first_seed + i if first_seed is not None else TRAIN_SEED_BASE + kind_offset + seed * 10_000_000 + i


def generate_grounding(out: str | Path, scenes: int, seed: int = 0, width: int = 224, height: int = 224,
                       progress: bool = True, first_seed: int | None = None, sim: str = "mujoco",
                       randomize=None, camera=None) -> Path:
    """Grounding shards of ``sim`` (posevla_core.sim.factory: our scene, or ``robosuite:<Task>[:<Arm>]``,
    whose scenes are labeled the same way from the simulator's state); ``randomize``: a
    DomainRandomization for our scene; ``camera``: make_env's (None = the sim's default; a
    robosuite camera name such as ``"frontview"``, or a CameraPlacement)."""

    rng = np.random.default_rng([seed, 1])
    choice = parse_sim(sim)
    with make_env(choice, width=width, height=height, randomize=randomize, camera=camera) as env, ShardWriter(out, "grounding", extra_meta={
            "generator": "posevla_core.train.pipeline.generate_grounding", "seed": seed, "first_seed": first_seed,
            "sim": str(choice), "randomize": randomize is not None}) as w:
        for i in tqdm(range(scenes), desc="grounding data", disable=not progress):
            spec = env.reset(seed=scene_seed(0, seed, i, first_seed))
            rgb, depth, K = env.render()
            w.add(rgb=rgb, depth=depth, K=K, instruction=spec.instruction, **_ground(env, spec.target))
            others = [n for n in env.labeled_names() if n != spec.target]
            if others:
                name = others[int(rng.integers(len(others)))]
                obj = env.category_of(name)      # the label _ground gives it (robosuite: the checkpoint's categories)
                instr = f"pick up the {obj}" if not name.endswith("_bin") else f"find the {obj}"
                w.add(rgb=rgb, depth=depth, K=K, instruction=instr, **_ground(env, name))
    return Path(out)


def expert_clock(env, dt: float) -> tuple[np.ndarray, list[np.ndarray], list[float]]:
    """The expert's plan on a fixed clock: times 0, dt, .., 6 dt; base-frame poses; gripper."""

    plan = plan_keyframes(env)
    times = dt * np.arange(len(plan) + 1)
    return times, [env.ee_pose()] + [T for T, _ in plan], [1.0] + [float(g) for _, g in plan]


def expert_targets_in_camera(env, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """The scripted demonstrator's keyframes after the current pose (``expert_clock``) in the
    camera frame: (K, 3) positions and (K,) gripper values, what a prediction's waypoints are
    compared with."""
    _, poses, grip = expert_clock(env, dt)
    T_cb = se3.inv_T(env.camera_pose_in_base())
    return np.array([(T_cb @ T)[:3, 3] for T in poses[1:]]), np.asarray(grip[1:], dtype=float)


def generate_motion(out: str | Path, scenes: int, dt: float, seed: int = 0, width: int = 224, height: int = 224,
                    progress: bool = True, first_seed: int | None = None, sim: str = "mujoco",
                    randomize=None, camera=None) -> Path:
    """Motion shards: one scene per sample, its grounding labels and the scripted expert's
    keyframes on the ``dt`` clock, from any simulator (``robosuite:<Task>`` too: robosuite
    scenes whose first pose token is supervised, which recorded demos are not); ``camera``: as in
    generate_grounding."""

    choice = parse_sim(sim)
    with make_env(choice, width=width, height=height, randomize=randomize, camera=camera) as env, ShardWriter(out, "motion", extra_meta={
            "generator": "posevla_core.train.pipeline.generate_motion", "waypoint_dt": dt, "seed": seed,
            "first_seed": first_seed, "sim": str(choice), "randomize": randomize is not None}) as w:
        for i in tqdm(range(scenes), desc="motion data", disable=not progress):
            spec = env.reset(seed=scene_seed(5_000_000, seed, i, first_seed))
            rgb, depth, K = env.render()
            times, poses, grip = expert_clock(env, dt)
            w.add(rgb=rgb, depth=depth, K=K, instruction=spec.instruction, **_ground(env, spec.target),
                  traj_t=times, traj_ee_base=se3.T_to_pose7(np.stack(poses)), traj_gripper=np.array(grip),
                  camera_to_base=se3.T_to_pose7(env.camera_pose_in_base()), t0=0.0)
    return Path(out)


def run_clocked_expert(env, dt: float, on_frame, fps: int, kin=None, hold_s: float = 1.0) -> bool:
    """Execute the expert's keyframes in physics, reaching keyframe k at t_start + k*dt
    (joint-space cubic segments of exactly dt; gripper moves at the start of its segment).
    ``on_frame(env)`` is called every 1/fps s of sim time (first at t_start)."""

    kin = kin or default_kinematics()
    plan = plan_keyframes(env)
    q = env.arm_q()
    g_prev = 1.0
    period = 1.0 / fps
    t_start = env.time
    next_frame = t_start

    def run_until(t_stop: float) -> None:
        nonlocal next_frame
        while env.time < t_stop - 1e-9:
            if env.time >= next_frame - 1e-9:
                on_frame(env)
                next_frame += period
            env.step(min(period, max(next_frame - env.time, 1e-3)))

    for k, (T, g) in enumerate(plan, start=1):
        q_new, ok, _ = kin.ik(T, q)
        if not ok:
            return False
        if not np.allclose(q_new, q, atol=1e-4):
            env.send_arm_trajectory(scene.ARM_JOINTS, [dt], q_new[None])
        if g != g_prev:
            pos = scene.FINGER_OPEN * g + scene.FINGER_CLOSED * (1 - g)
            env.send_gripper_trajectory(scene.FINGER_JOINTS, [min(GRIPPER_SEGMENT_S, dt)], [[pos, pos]])
            g_prev = g
        q = q_new
        run_until(t_start + k * dt)
    run_until(t_start + len(plan) * dt + hold_s + 1e-6)
    return env.success()


def generate_demos(out: str | Path, episodes: int, dt: float, fps: int = 5, seed: int = 0, width: int = 224,
                   height: int = 224, progress: bool = True, wrist: bool = False, randomize=None) -> dict:
    """Expert demos in physics -> LeRobot (recorder schema + ``annotation.*``). Failed
    rollouts are discarded, as a person collecting demos would. ``wrist``: also record the
    wrist camera (``observation.images.wrist`` ..., a two-camera dataset for the paligemma model)."""

    cats = sim_categories()
    writer = LeRobotWriter(out, fps, repo_id="posevla/sim_demos", robot_type="panda",
                           extra_info={"annotation_categories": cats, "generator": "posevla_core.train.pipeline",
                                       "waypoint_dt": dt})
    saved = failed = 0
    bar = tqdm(total=episodes, desc="expert demos", disable=not progress)
    i = 0
    with SimEnv(width=width, height=height, randomize=randomize) as env:
        while saved < episodes and i < 3 * episodes + 5:
            spec = env.reset(seed=TRAIN_SEED_BASE + 9_000_000 + seed * 10_000_000 + i)
            i += 1
            writer.start_episode(spec.instruction)
            frames: list[dict] = []

            def on_frame(e):
                rgb, depth, K = e.render()
                T_cam = e.camera_pose_in_base()
                views = {"wrist": dict(zip(("rgb", "depth", "K"), e.render(wrist=True)))} if wrist else None
                f = demo_frame(rgb, depth, K, e.arm_q(), e.gripper_opening(),
                               e.ee_pose(), T_cam, spec.instruction, views=views)
                g = _ground(e, spec.target)
                f["annotation.object_pose_camera"] = g["object_pose"].astype(np.float32)
                f["annotation.box_uv"] = g["box_uv"].astype(np.float32)
                f["annotation.box_xyxy"] = g["box_xyxy"].astype(np.float32)
                f["annotation.object_size"] = g["object_size"].astype(np.float32)
                f["annotation.category_index"] = np.array([cats.index(g["category"])], np.int64)
                frames.append(f)

            ok = run_clocked_expert(env, dt, on_frame, fps)
            if not ok:
                writer.discard_episode()
                failed += 1
                continue
            for k, f in enumerate(frames):   # action = the next frame's joint + gripper state
                nxt = frames[min(k + 1, len(frames) - 1)]
                f["action"] = np.r_[nxt["observation.state"], nxt["observation.gripper"]].astype(np.float32)
                writer.add_frame(f)
            writer.save_episode()
            saved += 1
            bar.update(1)
    bar.close()
    writer.close()
    return {"saved": saved, "failed": failed}


def make_checkpoint(out_dir: str, work_dir: str | None = None, quick: bool = False, seed: int = 0,
                    progress: bool = True, wide: bool = False) -> dict:
    """Generate the data and train the three stages; ``out_dir`` receives the final model,
    ``curves_<stage>.png``, ``metrics_<stage>.jsonl`` and ``offline_metrics.json``. ``wide``:
    ``PipelineConfig.wide()``, randomized cameras, lenses, lights and depth faults."""

    pc = PipelineConfig.quick(randomize=wide) if quick else (PipelineConfig.wide() if wide else PipelineConfig())
    work = Path(work_dir or Path(out_dir).parent / "_work")
    work.mkdir(parents=True, exist_ok=True)
    check_work_dir(work, pc)
    dt = PoseVLAConfig().tokens.waypoint_dt

    dr = DomainRandomization() if pc.randomize else None
    t0 = time.perf_counter()
    report: dict = {"pipeline": pc.__dict__, "seed": seed, "timings_s": {}}
    data = {"grounding": work / "grounding", "motion": work / "motion", "embodiment": work / "demos"}
    if not (data["grounding"] / "meta.json").exists():
        shutil.rmtree(data["grounding"], ignore_errors=True)
        generate_grounding(data["grounding"], pc.grounding_scenes, seed, pc.width, pc.height, progress,
                           randomize=dr)
    if not (data["motion"] / "meta.json").exists():
        shutil.rmtree(data["motion"], ignore_errors=True)
        generate_motion(data["motion"], pc.motion_scenes, dt, seed, pc.width, pc.height, progress,
                        randomize=dr)
    if not (data["embodiment"] / "meta" / "info.json").exists():
        report["demos"] = generate_demos(data["embodiment"], pc.demo_episodes, dt, pc.demo_fps, seed, pc.width,
                                         pc.height, progress, randomize=dr)
    report["timings_s"]["data"] = round(time.perf_counter() - t0, 1)

    bins = fit_bins_main([data["grounding"], data["motion"]], str(work / "bins.json"),
                         model_overrides()["tokens"], progress=progress)
    init = None
    steps = {"grounding": pc.grounding_steps, "motion": pc.motion_steps, "embodiment": pc.embodiment_steps}
    results = {}
    for stage in ("grounding", "motion", "embodiment"):
        t1 = time.perf_counter()
        sdir = work / f"stage_{stage}"
        extra = {"model": model_overrides(bins)} if init is None else {}
        srcs = [data["motion"], data["embodiment"]] if stage == "embodiment" else data[stage]
        results[stage] = train_main(stage, srcs, str(sdir), init=init, steps=steps[stage],
                                    batch_size=pc.batch_size, progress=progress, seed=seed,
                                    eval_every=max(1, steps[stage] // 5), save_every=max(1, steps[stage] // 5),
                                    **extra)
        report["timings_s"][stage] = round(time.perf_counter() - t1, 1)
        init = str(sdir)
    # 5. the object verifier on the frozen model (model.ObjectVerifier): every labeled object as a
    #    positive for its category and a near-miss negative for the others
    t1 = time.perf_counter()
    vdir = work / "stage_verifier"
    vcfg = VerifierConfig(steps=pc.verifier_steps, seed=seed)
    report["verifier"] = {k: v for k, v in train_verifier_main(init, list(data.values()), str(vdir), vcfg,
                                                               progress=progress).items() if k in ("val", "thresholds")}
    report["timings_s"]["verifier"] = round(time.perf_counter() - t1, 1)
    init = str(vdir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors", "pose_vocab.json"):
        if (Path(init) / f).exists():
            shutil.copy2(Path(init) / f, out / f)
    for f in Path(init).iterdir():
        if f.name.startswith(("vocab", "pose_")) and f.is_file():
            shutil.copy2(f, out / f.name)
    if (Path(init) / "text_tokenizer").is_dir():
        shutil.copytree(Path(init) / "text_tokenizer", out / "text_tokenizer", dirs_exist_ok=True)
    for stage in results:
        sdir = work / f"stage_{stage}"
        for src, dst in (("curves.png", f"curves_{stage}.png"), ("metrics.jsonl", f"metrics_{stage}.jsonl")):
            if (sdir / src).exists():
                shutil.copy2(sdir / src, out / dst)
    for f in ("curves_verifier.png", "metrics_verifier.jsonl", "verifier_report.json"):
        shutil.copy2(vdir / f, out / f)
    report["offline_metrics"] = {s: r.get("val", {}) for s, r in results.items()}
    report["timings_s"]["total"] = round(time.perf_counter() - t0, 1)
    (out / "offline_metrics.json").write_text(json.dumps(report["offline_metrics"], indent=1))
    (out / "training_report.json").write_text(json.dumps(report, indent=1, default=str))
    return report
