"""`posevla bench-generalization` / `make bench-generalization`: how far a checkpoint's pick
success holds when the sim camera, the scene or the sensor moves away from what it was trained
on, one axis at a time.

Why one module: The suite's levels, runs, table and plots are one command's pieces, each small.

Training jitters the camera only +-4 cm around one nominal pose, so the shipped policy has seen
one viewpoint. The suite evaluates the sim's pick task on held-out seeds (1000+) at each level of
each axis, every other axis at the nominal scene:

- camera pose, one coordinate at a time (azimuth, elevation, distance, roll): an orbit about
  the table target (posevla_core/sim/camera.py: azimuth from the nominal camera's, elevation
  above the table plane, distance, roll about the optical axis); a placed camera stands still,
  without the training jitter;
- viewpoint: 9 held-out orbits that change azimuth (+-45 deg), elevation (25-65 deg) and
  distance (0.7-1.4 m) together, a Latin square (each pair of the three crossed once at 3
  values each), each with the fov that frames the table workspace as the nominal camera does;
- intrinsics: the vertical field of view (the nominal pose, jittered as in training);
- resolution: the image size (the model letterboxes, K follows every resize: posevla_core/image.py);
- lighting: intensity, color and direction of the lights (posevla_core/sim/mujoco/look.py);
- table: the table top's color;
- depth_noise: a RealSense-class sensor's faults in every depth frame (lost edges, dark
  surfaces and blobs, z^2 noise: posevla_core/sim/mujoco/options.py levels "realsense", "heavy");
- distractors: 5, 7 or 8 objects on the table instead of 3-4: the same episode with
  distractors added, the target's same-color other shape first (posevla_core/sim/tasks.py);
- object_size: the cubes and cylinders 0.7x and 1.3x (3.2 and 5.9 cm; the open gripper takes
  up to 1.4x), in the physics, the grounding labels and the lift predicate alike.

Every level is one `posevla evaluate --sim --task pick --camera-pose ... --fov ... --width ...
--height ... --look ... --depth-noise ... --objects ... --object-scale ...` in a subprocess, the
command users run: the sim publishes the camera's true pose on /sim/camera_pose and the executor
uses it, so a failure is the policy's, not a wrong extrinsic. A level whose summary exists and whose command is unchanged is reused, so an
interrupted run resumes where it stopped (delete the work directory for a fresh run).

Writes ``<out>/table.md`` (success, Wilson 95 % interval, median time to success per level),
``<out>/results.json`` and ``<out>/success.png``, each with the command that made it, and
``<out>/views.png`` (the first frame of the first seed at each level).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posevla_core.image import letterbox
from posevla_core.paths import resolve_checkpoint
from posevla_core.sim.camera import (CAMERA_NOMINAL_TARGET, NOMINAL_DISTANCE_M, NOMINAL_ELEVATION_DEG, CameraPlacement,
                                     Orbit)
from posevla_core.sim.mujoco.look import SceneLook
from posevla_core.sim.mujoco.options import scene_options
from posevla_core.sim.mujoco.randomize import WORKSPACE_RADIUS_M
from posevla_core.sim.mujoco.scene import CAMERA_FOVY

if TYPE_CHECKING:                 # imported when used: `posevla --help` stays instant
    from posevla_core.sim.camera import CameraPlacement
    from posevla_core.sim.mujoco.look import SceneLook

AXES = ("nominal", "azimuth", "elevation", "distance", "roll", "viewpoint", "fov", "resolution", "lighting", "table",
        "depth_noise", "distractors", "object_size")


@dataclass(frozen=True)
class Level:
    """One evaluated setting: ``axis`` (AXES), ``label`` (its value, as the table shows it), the
    camera, the scene look, the depth sensor's faults (a posevla_core/sim/mujoco/options.py level
    name), the number of objects on the table and their size factor it stages (None: as in
    training)."""

    axis: str
    label: str
    camera: CameraPlacement | None = None
    look: SceneLook | None = None
    depth_noise: str | None = None
    objects: int | None = None
    object_scale: float | None = None

    @property
    def key(self) -> str:
        key = self.axis if self.label == self.axis else f"{self.axis}_{self.label}"
        return key.replace(" ", "").replace("/", "_")

    def camera_flags(self) -> list[str]:
        """The `posevla evaluate` flags that stage this level's camera, look, sensor and objects."""

        flags = [f"--look={self.look.format()}"] if self.look is not None else []
        flags += ["--depth-noise", self.depth_noise] if self.depth_noise is not None else []
        flags += ["--objects", str(self.objects)] if self.objects is not None else []
        flags += ["--object-scale", f"{self.object_scale:g}"] if self.object_scale is not None else []
        c = self.camera
        if c is None:
            return flags
        if c.placed:
            # one token: a pose starting with "-" would read as an option
            flags += [f"--camera-pose={CameraPlacement.format_pose(c.matrix())}"]
        if c.fov_deg is not None:
            flags += ["--fov", f"{c.fov_deg:g}"]
        if c.width is not None:
            flags += ["--width", str(c.width), "--height", str(c.height)]
        return flags

    def describe(self) -> str:
        """What the level stages, for the table's setting column."""
        parts = [self.camera.describe()] if self.camera else []
        parts = parts or ["nominal camera (jittered as in training)"]
        if self.look is not None:
            parts.append(f"look {self.look.format()}")
        if self.depth_noise is not None:
            parts.append(f"depth noise {self.depth_noise}")
        if self.objects is not None:
            parts.append(f"{self.objects} objects")
        if self.object_scale is not None:
            parts.append(f"objects x{self.object_scale:g}")
        return "; ".join(parts)


def framing_fov_deg(orbit, radius_m: float | None = None, margin: float | None = None) -> float:
    """The vertical fov (deg, square image) at which the table workspace (a disc of ``radius_m``
    about the orbit target, from the table top to 6 cm above it) fills the image as it does in
    the nominal camera at its 50 deg (``margin``: the nominal's tan ratio, 1.19); rounded to
    0.1 deg."""



    radius_m = WORKSPACE_RADIUS_M if radius_m is None else radius_m

    def extent(o) -> float:   # the workspace's largest |x/z|, |y/z| in the camera
        Ti = np.linalg.inv(o.matrix())
        t = np.linspace(0.0, 2 * math.pi, 73)
        cx, cy = CAMERA_NOMINAL_TARGET[:2]
        pts = np.array([[cx + radius_m * math.cos(a), cy + radius_m * math.sin(a), z] for a in t for z in (0.0, 0.06)])
        pc = pts @ Ti[:3, :3].T + Ti[:3, 3]
        return float(np.max(np.abs(pc[:, :2]) / pc[:, 2:3]))

    if margin is None:
        margin = math.tan(math.radians(CAMERA_FOVY) / 2) / extent(Orbit())
    return round(2 * math.degrees(math.atan(margin * extent(orbit))), 1)


def viewpoint_orbits() -> list:
    """The held-out viewpoints: azimuth -45 / 0 / +45 deg x elevation 25 / 45 / 65 deg, the
    distance (0.7 / 1.0 / 1.4 m) a Latin square over the two (each pair of the three coordinates
    crossed once), ordered so that none lies near the nominal orbit (az 0, el 31, d 0.97)."""

    azimuths, elevations, distances = (-45, 0, 45), (25, 45, 65), (1.0, 1.4, 0.7)
    return [Orbit(azimuth_deg=a, elevation_deg=e, distance_m=distances[(i + j) % 3])
            for i, a in enumerate(azimuths) for j, e in enumerate(elevations)]


def default_levels() -> list[Level]:
    """The nominal scene, then every axis's levels (each axis alone)."""

    def look(axis: str, label: str, **kw) -> Level:
        return Level(axis, label, look=SceneLook(**kw))

    orbit = lambda axis, label, **kw: Level(axis, label, CameraPlacement(orbit=Orbit(**kw)))  # noqa: E731
    return ([Level("nominal", "nominal")]
            + [orbit("azimuth", f"{a:+d} deg", azimuth_deg=a) for a in (-60, -45, -25, 25, 45, 60)]
            + [orbit("elevation", f"{e} deg", elevation_deg=e) for e in (20, 35, 50, 70)]
            + [orbit("distance", f"{d} m", distance_m=d) for d in (0.6, 0.8, 1.2, 1.6)]
            + [orbit("roll", f"{r:+d} deg", roll_deg=r) for r in (-10, 10)]
            + [Level("viewpoint", f"az{o.azimuth_deg:+d} el{o.elevation_deg} d{o.distance_m:.1f}",
                     CameraPlacement(orbit=o, fov_deg=framing_fov_deg(o))) for o in viewpoint_orbits()]
            + [Level("fov", f"{f} deg", CameraPlacement(fov_deg=f)) for f in (40, 60, 80)]
            + [Level("resolution", f"{w}x{h}", CameraPlacement(width=w, height=h))
               for w, h in ((640, 480), (1280, 720), (424, 240))]
            + [look("lighting", "dim x0.4", light=0.4), look("lighting", "bright x1.8", light=1.8),
               look("lighting", "warm", light_color=(1.0, 0.75, 0.5)),
               look("lighting", "cool", light_color=(0.55, 0.75, 1.0)),
               look("lighting", "key light right", light_azimuth_deg=-90, light_elevation_deg=30),
               look("lighting", "key light behind", light_azimuth_deg=180, light_elevation_deg=30)]
            + [look("table", name, table_rgb=rgb) for name, rgb in
               (("white", (0.92, 0.92, 0.9)), ("dark gray", (0.15, 0.15, 0.17)), ("green", (0.25, 0.55, 0.3)))]
            + [Level("depth_noise", name, depth_noise=name) for name in ("realsense", "heavy")]
            + [Level("distractors", f"{n} objects", objects=n) for n in (5, 7, 8)]
            + [Level("object_size", f"x{s:g}", object_scale=s) for s in (0.7, 1.3)])


def select_levels(levels: list[Level], axes: list[str] | None, only: list[str] | None) -> list[Level]:
    """``axes``: keep those axes (the nominal level always stays); ``only``: keep those level keys."""
    if axes:
        unknown = sorted(set(axes) - set(AXES))
        if unknown:
            raise ValueError(f"--axes {','.join(unknown)}: known axes are {', '.join(AXES)}")
        levels = [lv for lv in levels if lv.axis in axes or lv.axis == "nominal"]
    if only:
        keys = {lv.key for lv in levels}
        unknown = sorted(set(only) - keys)
        if unknown:
            raise ValueError(f"--levels {','.join(unknown)}: known levels are {', '.join(sorted(keys))}")
        levels = [lv for lv in levels if lv.key in only]
    return levels


@dataclass
class SuiteConfig:
    checkpoint: str
    episodes: int = 5          # per level, seeds seed .. seed + episodes - 1
    seed: int = 1000           # held out: training scenes use seeds >= 100000
    timeout_s: float = 20.0    # sim seconds per episode (the nominal successes take ~6-15 s)
    levels: list[Level] = field(default_factory=default_levels)


def level_command(cfg: SuiteConfig, level: Level, out: str) -> list[str]:
    """`posevla evaluate` arguments of one level."""
    return ["evaluate", "--sim", "--task", "pick", "--checkpoint", cfg.checkpoint, "--episodes", str(cfg.episodes),
            "--seed", str(cfg.seed), "--timeout", f"{cfg.timeout_s:g}", "--out", out, *level.camera_flags()]


def run_level(work: Path, cfg: SuiteConfig, level: Level, env: dict) -> dict:
    """Evaluate one level (or reuse its finished summary when its command is unchanged)."""
    out = work / level.key
    args = level_command(cfg, level, str(out))
    command = "posevla " + shlex.join(args)
    done = out / "summary.json"
    stamp = out / "command.txt"
    if done.exists() and stamp.exists() and stamp.read_text().strip() == command:
        print(f"[bench-generalization] {level.key}: done before", flush=True)
    else:
        shutil.rmtree(out, ignore_errors=True)           # cut short before, or another command
        out.mkdir(parents=True)
        print(f"[bench-generalization] {level.key}: {command}", flush=True)
        t = time.time()
        with open(work / f"{level.key}.log", "w") as f:
            rc = subprocess.call([sys.executable, "-m", "posevla_ros.cli", *args], stdout=f,
                                 stderr=subprocess.STDOUT, env=env)
        if rc != 0 or not done.exists():
            tail = "".join((work / f"{level.key}.log").read_text().splitlines(keepends=True)[-15:])
            raise RuntimeError(f"level {level.key} failed (rc {rc}); log {work / f'{level.key}.log'}:\n{tail}")
        stamp.write_text(command + "\n")
        print(f"[bench-generalization] {level.key}: {time.time() - t:.0f} s", flush=True)
    s = json.loads(done.read_text())
    return {"axis": level.axis, "level": level.label, "key": level.key, "camera": level.describe(),
            "episodes": s["episodes"],
            "successes": s["successes"], "success_rate": s["success_rate"], "ci95": s["ci95"],
            "median_time_to_success_s": s["time_to_success_s"]["median"], "timeouts": s.get("timeouts"),
            "command": command}


def table_md(rows: list[dict], command: str) -> str:
    lines = [f"Made by: `{command}`", "",
             "| axis | level | setting | success | Wilson 95 % | median time to success |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lo, hi = r["ci95"]
        t = r["median_time_to_success_s"]
        lines.append(f"| {r['axis']} | {r['level']} | {r['camera']} | {r['successes']}/{r['episodes']} | "
                     f"{lo:.0%}-{hi:.0%} | {'-' if t is None else f'{t:.1f} s'} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], png: Path, title: str) -> None:
    """Success per level with its Wilson 95 % interval, grouped by axis; the nominal level's
    rate and interval as a band across the plot."""
    # matplotlib: heavy, only the plots need it
    import matplotlib

    matplotlib.use("Agg", force=True)
    # matplotlib: heavy, only the plots need it
    import matplotlib.pyplot as plt

    rate = np.array([r["successes"] / max(r["episodes"], 1) for r in rows])
    lo = np.array([r["ci95"][0] for r in rows])
    hi = np.array([r["ci95"][1] for r in rows])
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(min(14.0, max(6.0, 0.4 * len(rows) + 2)), 4.8))
    nominal = [i for i, r in enumerate(rows) if r["axis"] == "nominal"]
    if nominal:
        i = nominal[0]
        ax.axhspan(lo[i], hi[i], color="0.85", zorder=0, label="nominal, Wilson 95 %")
        ax.axhline(rate[i], color="0.5", lw=1, zorder=1)
    axes = list(dict.fromkeys(r["axis"] for r in rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(axes):
        sel = [i for i, r in enumerate(rows) if r["axis"] == name]
        ax.errorbar(x[sel], rate[sel], yerr=[rate[sel] - lo[sel], hi[sel] - rate[sel]], fmt="o", capsize=3,
                    color=colors[j % len(colors)], label=name, zorder=3)
    for i in range(1, len(rows)):              # a separator between axes
        if rows[i]["axis"] != rows[i - 1]["axis"]:
            ax.axvline(i - 0.5, color="0.8", lw=0.8, ls=":")
    ax.set_xticks(x, [f"{r['level']}" for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("pick success (Wilson 95 %)")
    n = sorted({r["episodes"] for r in rows})
    ax.set_title(f"{title}: {'/'.join(map(str, n))} episodes per level", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def render_views(levels: list[Level], seed: int, png: Path, tile: int = 160) -> None:
    """What the policy sees at each level: the first frame of episode ``seed``, one tile per
    level (letterboxed to a square, as the model gets it), so that "azimuth -60" has a picture;
    a depth_noise level shows its depth frame (black: no reading)."""
    # matplotlib: heavy, only the plots need it
    import matplotlib

    matplotlib.use("Agg", force=True)
    # matplotlib: heavy, only the plots need it
    import matplotlib.pyplot as plt

    # the sim (MuJoCo): only the --sim sample renders need it
    from posevla_core.sim.mujoco.env import SimEnv

    cols = 8
    rows = (len(levels) + cols - 1) // cols
    fig, axs = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8), squeeze=False)
    for ax in axs.flat:
        ax.axis("off")
    for ax, lv in zip(axs.flat, levels):
        options = scene_options(lv.depth_noise or "", lv.objects or 0, lv.object_scale or 1.0)
        with SimEnv(camera=lv.camera, look=lv.look, **options) as env:
            env.reset(seed, "pick")
            rgb, depth, K = env.render()
        if lv.depth_noise is not None:        # what the sensor lost, in gray: near bright, none black
            z = np.nan_to_num(depth, nan=np.inf)
            lo, hi = np.nanpercentile(depth, 1), np.nanpercentile(depth, 90)   # the table, not the far floor
            rgb = np.repeat((255 * np.clip((hi - z) / max(hi - lo, 1e-6), 0, 1)).astype(np.uint8)[..., None], 3, 2)
        ax.imshow(letterbox(rgb, None, K, tile)[0])
        ax.set_title(f"{lv.axis}\n{lv.label}", fontsize=7)
    fig.suptitle(f"seed {seed}: the first frame at each level", fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def run_suite(cfg: SuiteConfig, work: Path, out: Path, command: str) -> list[dict]:
    """Every level (resumable in ``work``), then the table, results and plot in ``out``."""

    work.mkdir(parents=True, exist_ok=True)
    # a ROS domain of its own: two sim graphs on one domain answer each other's resets
    env = dict(os.environ, ROS_DOMAIN_ID=os.environ.get("POSEVLA_BENCH_DOMAIN", str(30 + os.getpid() % 60)))
    rows = [run_level(work, cfg, lv, env) for lv in cfg.levels]
    out.mkdir(parents=True, exist_ok=True)
    md = table_md(rows, command)
    (out / "table.md").write_text(md)
    (out / "results.json").write_text(json.dumps({
        "command": command, "checkpoint": cfg.checkpoint, "episodes_per_level": cfg.episodes, "seed": cfg.seed,
        "timeout_s": cfg.timeout_s, "task": "pick",
        "nominal_orbit": {"elevation_deg": NOMINAL_ELEVATION_DEG, "distance_m": NOMINAL_DISTANCE_M},
        "rows": rows}, indent=2))
    plot(rows, out / "success.png", f"pick success across cameras, {Path(cfg.checkpoint).name}, seeds {cfg.seed}+")
    render_views(cfg.levels, cfg.seed, out / "views.png")
    print("\n" + md, flush=True)
    return rows


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--checkpoint", default="", help="default: the shipped demo checkpoint")
    ap.add_argument("--episodes", type=int, default=5, help="episodes per level (seeds --seed ..)")
    ap.add_argument("--seed", type=int, default=1000, help="first held-out seed")
    ap.add_argument("--timeout", type=float, default=20.0, help="sim seconds per episode")
    ap.add_argument("--axes", default="", help=f"comma list of axes to run ({', '.join(AXES[1:])}); default all")
    ap.add_argument("--levels", default="", help="comma list of level keys (e.g. azimuth_+45deg,fov_60deg)")
    ap.add_argument("--work", default="runs/bench_generalization", help="per-level runs (reused: resumable)")
    ap.add_argument("--out", default="docs/generalization", help="table.md, results.json, success.png")


def command_of(a: argparse.Namespace) -> str:
    """The command line that reproduces ``a`` (written at the top of the table)."""
    args = ["--episodes", str(a.episodes), "--seed", str(a.seed), "--timeout", f"{a.timeout:g}"]
    args += (["--checkpoint", a.checkpoint] if a.checkpoint else []) + (["--axes", a.axes] if a.axes else [])
    args += (["--levels", a.levels] if a.levels else []) + ["--work", a.work, "--out", a.out]
    return "posevla bench-generalization " + shlex.join(args)


def run(a: argparse.Namespace) -> int:
    try:
        ckpt = str(resolve_checkpoint(a.checkpoint or None))
        levels = select_levels(default_levels(), [x for x in a.axes.split(",") if x],
                               [x for x in a.levels.split(",") if x])
        if a.episodes < 1:
            raise ValueError(f"--episodes {a.episodes}: at least 1")
        cfg = SuiteConfig(checkpoint=ckpt, episodes=a.episodes, seed=a.seed, timeout_s=a.timeout, levels=levels)
        run_suite(cfg, Path(a.work).resolve(), Path(a.out).resolve(), command_of(a))
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"posevla bench-generalization: error: {e}", file=sys.stderr)
        return 1
    print(f"[bench-generalization] wrote {a.out}/table.md, results.json, success.png")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(prog="posevla bench-generalization", description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
