"""`posevla make-data`: sim grounding / motion shards on held-out scene seeds (eval-offline,
train-verifier)."""
from __future__ import annotations

import argparse
import sys

from posevla_core.sim.camera import CameraPlacement
from posevla_core.sim.factory import MUJOCO, check_camera, parse_sim
from posevla_core.sim.mujoco.randomize import DomainRandomization
from posevla_ros.cli.options import add_camera_placement


def add_arguments(md: argparse.ArgumentParser) -> None:
    md.add_argument("--kind", choices=("grounding", "motion"), required=True)
    md.add_argument("--scenes", type=int, default=200)
    md.add_argument("--first-seed", type=int, default=1000,
                    help="scene seeds first_seed.. (training uses >= 100000, so the default is held out)")
    md.add_argument("--width", type=int, default=224)
    md.add_argument("--height", type=int, default=224)
    md.add_argument("--sim", default="mujoco", help="mujoco (our scene) | robosuite:<Task>[:<Arm>]")
    add_camera_placement(md)
    md.add_argument("--randomize", action="store_true",
                    help="our scene: draw camera, lens, light, table color and depth faults per scene "
                         "(DomainRandomization, the data of make checkpoint-wide)")
    md.add_argument("--out", required=True)


def run(a: argparse.Namespace) -> int:
    # torch, mujoco / robosuite
    from posevla_core.config import TokenizerConfig
    from posevla_core.train.pipeline import generate_grounding, generate_motion

    try:
        sim = parse_sim(a.sim)
    except ValueError as e:
        print(f"posevla make-data: error: --sim: {e}", file=sys.stderr)
        return 2
    try:
        camera = check_camera(sim, a.camera, CameraPlacement.parse(a.camera_pose, a.fov))
        randomize = DomainRandomization() if a.randomize else None
        if randomize is not None and sim.backend != MUJOCO:
            raise ValueError("--randomize draws our mujoco scene's camera, light and table per scene; "
                             "robosuite's scenes take --camera / --camera-pose instead")
        if randomize is not None and camera is not None:
            raise ValueError("--randomize draws the camera per scene: give it or --camera / --camera-pose / --fov")
    except ValueError as e:
        print(f"posevla make-data: error: {e}", file=sys.stderr)
        return 2
    if a.kind == "grounding":
        generate_grounding(a.out, a.scenes, first_seed=a.first_seed, width=a.width, height=a.height, sim=sim,
                           randomize=randomize, camera=camera)
    else:
        generate_motion(a.out, a.scenes, TokenizerConfig().waypoint_dt, first_seed=a.first_seed, width=a.width,
                        height=a.height, sim=sim, randomize=randomize, camera=camera)
    print(f"[posevla make-data] {a.scenes} {a.kind} scenes (seeds {a.first_seed}..{a.first_seed + a.scenes - 1}) "
          f"-> {a.out}")
    return 0
