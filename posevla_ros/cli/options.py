"""Flags and checks that several `posevla` commands share: ``--sim [SIM]``, the sim camera and
scene flags (placement, image size, look, depth faults, objects), and the graph-argument check
that turns a bad argument into one line on stderr before anything starts."""
from __future__ import annotations

import argparse
import sys

from posevla_core.sim.factory import check_camera
from posevla_ros.launching.graphs import build

# --sim: our MuJoCo scene; --sim robosuite:Lift: a robosuite task (posevla_core.sim.factory parses it)
SIM_OPTION = dict(nargs="?", const="mujoco", default=None, metavar="SIM",
                  help="start the sim (resets and success from the sim): --sim alone = our MuJoCo scene, "
                       "--sim robosuite:Lift = a robosuite task; without it: a real arm")


def sim_args(a: argparse.Namespace) -> dict:
    """``--sim [SIM]`` as the graphs' ``sim`` (bool) and ``simulator``."""
    return {"sim": a.sim is not None, "simulator": a.sim or "mujoco"}


def graph_args_ok(cmd: str, graph: str, args: dict) -> bool:
    """Check the graph's arguments before anything starts: a bad one (an instruction the sim
    cannot stage, a real arm without an instruction) is one line on stderr."""
    try:
        build(graph, args)
    except (ValueError, FileNotFoundError) as e:
        print(f"posevla {cmd}: error: {e}", file=sys.stderr)
        return False
    return True


def add_camera_placement(p: argparse.ArgumentParser) -> None:
    """--camera-pose / --fov / --camera: where the sim camera stands (posevla_core/sim/camera.py)."""
    p.add_argument("--camera-pose", default="", metavar="X,Y,Z,QX,QY,QZ,QW",
                   help="sim: the camera's optical frame (x right, y down, z forward) in the robot base, as in "
                        "camera_to_base and /sim/camera_pose (write --camera-pose=-0.1,... when it starts with "
                        "a minus); default: the nominal pose, jittered per episode")
    p.add_argument("--fov", type=float, default=0.0, metavar="DEG",
                   help="sim: the camera's vertical field of view; default: the scene's (50)")
    p.add_argument("--camera", default="", metavar="NAME",
                   help="sim robosuite: render this camera of robosuite's model as robosuite has it (agentview, "
                        "frontview, sideview, birdview, ...; a bad name lists them); default: agentview moved to "
                        "where our scene's camera sits")


def add_camera_options(p: argparse.ArgumentParser) -> None:
    """The sim camera and scene of a run through the nodes; the executor gets the camera's true pose."""
    add_camera_placement(p)
    p.add_argument("--width", type=int, default=0, help="sim: image width (px); default 224")
    p.add_argument("--height", type=int, default=0, help="sim: image height (px); default 224")
    p.add_argument("--look", default="", metavar="KEY=VALUE,...",
                   help="sim: lights and table color (posevla_core/sim/mujoco/look.py), e.g. "
                        "light=0.4,light_color=1:0.75:0.5,light_azimuth=-90,table=0.9:0.9:0.9; default: as trained")
    p.add_argument("--depth-noise", default="", metavar="LEVEL",
                   help="sim: the depth sensor's faults in every frame (posevla_core/sim/mujoco/options.py): realsense, "
                        "heavy, or field=value,...; default: the clean depth")
    p.add_argument("--objects", type=int, default=0, metavar="N",
                   help="sim: N objects on the table per episode, 1-8 (distractors added to the episode as "
                        "drawn); default: as drawn (3-4)")
    p.add_argument("--object-scale", type=float, default=1.0, metavar="S",
                   help="sim: size factor of the cubes and cylinders, 0.5-1.4; default 1 (4.5 cm)")


def camera_args(a: argparse.Namespace, sim: bool = True) -> dict:
    """The camera flags as graph arguments (only those given); ValueError (one line) when they
    are given without the sim."""
    given = {k: v for k, v in (("camera_pose", a.camera_pose), ("camera_fov_deg", a.fov), ("sim_camera", a.camera),
                               ("width", a.width), ("height", a.height), ("scene_look", a.look),
                               ("depth_noise", a.depth_noise), ("objects", a.objects)) if v}
    if a.object_scale != 1.0:
        given["object_scale"] = a.object_scale
    if given and not sim:
        raise ValueError("--camera / --camera-pose / --fov / --width / --height / --look / --depth-noise / --objects / "
                         "--object-scale stage the sim's camera and scene: they need --sim")
    if given.get("sim_camera"):      # the name against the simulator's model, before anything starts
        from posevla_core.sim.camera import CameraPlacement  # scipy (~0.5 s): only when a camera is named

        check_camera(getattr(a, "sim", None) or "mujoco", given["sim_camera"],
                     CameraPlacement.parse(a.camera_pose, a.fov))
    return given


def camera_ok(cmd: str, a: argparse.Namespace, sim: bool) -> dict | None:
    """``camera_args``, or None after one line on stderr."""
    try:
        return camera_args(a, sim)
    except ValueError as e:
        print(f"posevla {cmd}: error: {e}", file=sys.stderr)
        return None
