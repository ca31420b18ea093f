"""`posevla`: one command-line entry point, a thin dispatcher.

Each subcommand parses its own flags and hands them to a function that lives with the
concern it drives (training in posevla_core.train, nodes in posevla_ros.launching.runner, ...).
Imports are lazy so that `posevla --help` is instant and `posevla train` on a GPU box
without ROS never imports rclpy.

Files: config/, launch/ and the shipped checkpoint are found through
``posevla_ros.params.share_dir()`` (works from any directory, after ``make setup``, ``pip
install .`` or colcon); relative ``--out`` / ``--data`` paths are relative to the current
directory. A bad config or a missing file is one line on stderr and exit status 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _graph_args_ok(cmd: str, graph: str, args: dict) -> bool:
    """Check the graph's arguments before anything starts: a bad one (an instruction the sim
    cannot stage, a real arm without an instruction) is one line on stderr."""
    from posevla_ros.launching.graphs import build

    try:
        build(graph, args)
    except (ValueError, FileNotFoundError) as e:
        print(f"posevla {cmd}: error: {e}", file=sys.stderr)
        return False
    return True


def _cmd_run(a: argparse.Namespace) -> int:
    from posevla_ros.launching.graphs import build, node_param_specs
    from posevla_ros.param_schema import parse_override, unknown_key_error
    from posevla_ros.launching.runner import run_graph

    graph = a.graph.replace("-", "_")
    args = {"robot": a.robot, "checkpoint": a.checkpoint or ""}
    if graph == "sim_demo":
        args.update(task=a.task, seed=a.seed, exit_on_success=a.exit_on_success)
    if not _graph_args_ok("run", graph, args):
        return 1
    overrides = dict(parse_override(kv) for kv in a.param)
    known = {"use_sim_time"} | {s.name for spec in build(graph, args) for s in node_param_specs(spec.name)}
    for k in overrides:                   # each -p must name a parameter of some node of the graph
        if k not in known:
            raise unknown_key_error(k, known, f"-p {k}")
    return run_graph(graph, args, overrides=overrides) or 0


def _cmd_train(a: argparse.Namespace) -> int:
    # One flag set for `posevla train` and `accelerate launch -m posevla_core.train`: the
    # arguments go to posevla_core.train's own parser (imported only now: it pulls in torch).
    from posevla_core.train.__main__ import main as train_cli

    return train_cli(a.train_args, prog="posevla train")


def _cmd_fit_bins(a: argparse.Namespace) -> int:
    from posevla_core.train import fit_bins_main, tokens_of

    try:
        fit_bins_main(a.data, a.out, tokens_of(a.tokens), progress=True)
    except ValueError as e:           # unreadable data (DataFormatError), a bad --tokens file: one line
        print(f"posevla fit-bins: error: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_train_verifier(a: argparse.Namespace) -> int:
    from dataclasses import replace

    from posevla_core.train.verifier import VerifierConfig, train_verifier_main

    cfg = replace(VerifierConfig(), **({"steps": a.steps} if a.steps else {}), seed=a.seed)
    try:
        r = train_verifier_main(a.init, a.data, a.out, cfg, verify_threshold=a.verify_threshold)
    except (ValueError, FileNotFoundError) as e:      # unreadable data, a checkpoint that cannot take one
        print(f"posevla train-verifier: error: {e}", file=sys.stderr)
        return 1
    v = r["val"]
    print(f"posevla train-verifier: {r['examples']} examples from {r['scenes']} labeled frames; held-out: "
          f"accuracy {v['val_acc']:.3f}, right pointers rejected {v.get('pointer_false_reject', float('nan')):.3f}, "
          f"wrong pointers accepted {v.get('pointer_false_accept', float('nan')):.3f} at threshold "
          f"{r['verify_threshold']} -> {a.out}")
    return 0


def _cmd_eval_offline(a: argparse.Namespace) -> int:
    from posevla_core.train import eval_offline_main
    from posevla_ros.params import resolve_checkpoint

    from posevla_core.paths import default_checkpoint

    ckpt = resolve_checkpoint(a.checkpoint)
    # beside the checkpoint, except the shipped one: that directory stays as shipped (and may be read-only)
    shipped = ckpt.resolve() == Path(default_checkpoint()).resolve()
    out = a.out or str(Path("runs/eval_offline.json") if shipped else ckpt / "eval_offline.json")
    eval_offline_main(checkpoint=str(ckpt), data_dir=a.data, out_json=out)
    return 0


# --sim: our MuJoCo scene; --sim robosuite:Lift: a robosuite task (posevla_core.sim.factory parses it)
_SIM_OPTION = dict(nargs="?", const="mujoco", default=None, metavar="SIM",
                   help="start the sim (resets and success from the sim): --sim alone = our MuJoCo scene, "
                        "--sim robosuite:Lift = a robosuite task; without it: a real arm")


def _sim_args(a: argparse.Namespace) -> dict:
    """``--sim [SIM]`` as the graphs' ``sim`` (bool) and ``simulator``."""
    return {"sim": a.sim is not None, "simulator": a.sim or "mujoco"}


def _add_camera_placement(p: argparse.ArgumentParser) -> None:
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


def _add_camera_options(p: argparse.ArgumentParser) -> None:
    """The sim camera and scene of a run through the nodes; the executor gets the camera's true pose."""
    _add_camera_placement(p)
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


def _camera_args(a: argparse.Namespace, sim: bool = True) -> dict:
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
        from posevla_core.sim.camera import CameraPlacement
        from posevla_core.sim.factory import check_camera

        check_camera(getattr(a, "sim", None) or "mujoco", given["sim_camera"],
                     CameraPlacement.parse(a.camera_pose, a.fov))
    return given


def _camera_ok(cmd: str, a: argparse.Namespace, sim: bool) -> dict | None:
    try:
        return _camera_args(a, sim)
    except ValueError as e:
        print(f"posevla {cmd}: error: {e}", file=sys.stderr)
        return None


def _cmd_collect(a: argparse.Namespace) -> int:
    from posevla_ros.cli.apps import collect_main

    camera = _camera_ok("collect", a, a.sim is not None)
    if camera is None or not _graph_args_ok("collect", "collect", dict(teleop=a.teleop, task=a.task, robot=a.robot,
                                                                       **_sim_args(a), **camera)):
        return 1
    summary = collect_main(teleop=a.teleop, task=a.task, episodes=a.episodes, out=a.out, seed=a.seed,
                           robot=a.robot, timeout_s=a.timeout, fps=a.fps, camera=camera, **_sim_args(a))
    print(json.dumps({k: summary[k] for k in ("task", "sim", "episodes_saved", "attempts", "out")}))
    return 0 if summary["episodes_saved"] >= a.episodes else 1


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from posevla_ros.cli.apps import evaluate_main
    from posevla_ros.params import resolve_checkpoint

    camera = _camera_ok("evaluate", a, a.sim is not None)
    if camera is None or not _graph_args_ok("evaluate", "evaluate", dict(task=a.task, robot=a.robot, **_sim_args(a),
                                                                         **camera)):
        return 1
    summary = evaluate_main(checkpoint=str(resolve_checkpoint(a.checkpoint)), task=a.task, episodes=a.episodes,
                            out=a.out, seed=a.seed, robot=a.robot, use_depth=not a.no_depth,
                            timeout_s=a.timeout, camera=camera, **_sim_args(a))
    print(json.dumps({k: summary[k] for k in ("task", "episodes", "successes", "success_rate", "ci95")}))
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from posevla_ros.cli.demo import ABSENT_DEFAULT, demo_main

    a.absent = ABSENT_DEFAULT if a.absent is None else a.absent
    camera = _camera_ok("demo", a, True)
    if camera is None or not _graph_args_ok("demo", "evaluate", dict(sim=True, task=a.task, episodes=a.episodes,
                                                                     absent=a.absent, **camera)):
        return 1
    summary = demo_main(episodes=a.episodes, seed=a.seed, out=a.out, task=a.task, checkpoint=a.checkpoint,
                        timeout_s=a.timeout, use_depth=not a.no_depth, absent=a.absent, camera=camera)
    done = summary.get("episodes", 0) + (summary.get("absent") or {}).get("episodes", 0)
    return 0 if done > 0 else 1


def _cmd_bench_generalization(a: argparse.Namespace) -> int:
    from posevla_ros.cli.bench_generalization import main_args

    return main_args(a)


def _cmd_expert(a: argparse.Namespace) -> int:
    from posevla_core.sim.factory import check_task
    from posevla_ros.cli.demo import expert_main

    try:
        check_task(a.sim, a.task)
    except ValueError as e:
        print(f"posevla expert: error: {e}", file=sys.stderr)
        return 2
    expert_main(episodes=a.episodes, seed=a.seed, task=a.task, out=a.out, sim=a.sim)
    return 0


def _cmd_calibrate(a: argparse.Namespace) -> int:
    from posevla_ros.cli.calibrate import cli_main

    return cli_main(a)


def _cmd_make_data(a: argparse.Namespace) -> int:
    from posevla_core.config import TokenizerConfig
    from posevla_core.train.pipeline import generate_grounding, generate_motion

    from posevla_core.sim.camera import CameraPlacement
    from posevla_core.sim.mujoco.randomize import DomainRandomization
    from posevla_core.sim.factory import MUJOCO, check_camera, parse_sim

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


def _cmd_serve(a: argparse.Namespace) -> int:
    # posevla_core only (no rclpy): a GPU host needs no ROS
    from posevla_core.serving.server import main_args

    return main_args(a)


def _cmd_make_checkpoint(a: argparse.Namespace) -> int:
    from posevla_core.train.pipeline import make_checkpoint

    from posevla_ros.params import default_checkpoint

    work = a.work or ("runs/make_checkpoint_wide" if a.wide else "runs/make_checkpoint")
    make_checkpoint(out_dir=a.out or str(default_checkpoint()), work_dir=work, quick=a.quick, seed=a.seed,
                    wide=a.wide)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="posevla", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run nodes in one process (where `ros2 launch` is not available)")
    r.add_argument("graph", choices=["policy", "sim-demo"],
                   help="policy = policy_node + executor_node (launch/policy.launch.py); sim-demo = sim_node + "
                        "policy + executor on one staged episode (launch/sim_demo.launch.py)")
    r.add_argument("--robot", default="sim_panda", help="config/robots/<robot>.yaml")
    r.add_argument("--checkpoint", default=None)
    r.add_argument("--task", default="pick", help="sim-demo: a task family or an instruction the sim can stage")
    r.add_argument("--seed", type=int, default=1000, help="sim-demo: episode seed")
    r.add_argument("--exit-on-success", action="store_true",
                   help="sim-demo: end at the episode's first success (exit status 0) instead of holding the arm")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="override a node parameter, as ROS writes it: -p dry_run:=true (NAME=VALUE works too)")
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser("train", help="train one Pose-VLA stage (small model or PaliGemma)", add_help=False,
                       description="all arguments go to `python -m posevla_core.train`; see `posevla train --help`")
    t.add_argument("train_args", nargs=argparse.REMAINDER)
    t.set_defaults(func=_cmd_train)

    b = sub.add_parser("fit-bins", help="fit percentile position / size bins and rotation references to data (JSON)",
                       description="Fit the data-dependent pose-token fields (tokens.fit_bins) and write them as "
                                   "JSON; `posevla train --bins FILE` puts them into a new model's config.")
    b.add_argument("--data", required=True, nargs="+", help="grounding / motion shards or LeRobot demos (several ok)")
    b.add_argument("--out", required=True, help="bins JSON to write (a TokenizerConfig fragment)")
    b.add_argument("--tokens", default=None,
                   help="the tokenizer the bins are for: a JSON/YAML file of TokenizerConfig fields or a checkpoint "
                        "directory (bin counts, categories and their symmetries); default: the sim demo model's "
                        "(the MuJoCo scene's categories and symmetries, default bin counts)")
    b.set_defaults(func=_cmd_fit_bins)

    tv = sub.add_parser("train-verifier", help="train the object verifier of a small-model checkpoint (frozen model)",
                        description="Give a token-head checkpoint of the small model an object verifier (is what "
                                    "its pointer points at the instructed object?), trained with the rest frozen; "
                                    "writes the whole model to --out. See posevla_core/train/verifier.py.")
    tv.add_argument("--init", required=True, help="small-model token-head checkpoint")
    tv.add_argument("--data", required=True, nargs="+", help="grounding / motion shards and LeRobot demos")
    tv.add_argument("--out", required=True)
    tv.add_argument("--steps", type=int, default=None, help="default: VerifierConfig.steps")
    tv.add_argument("--verify-threshold", type=float, default=None,
                    help="refuse an instruction when P(match) is below this (default: keep the checkpoint's)")
    tv.add_argument("--seed", type=int, default=0)
    tv.set_defaults(func=_cmd_train_verifier)

    e = sub.add_parser("eval-offline", help="metrics of a checkpoint on a dataset")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--out", default=None, help="metrics JSON (default: <checkpoint>/eval_offline.json; "
                                                "runs/eval_offline.json for the shipped checkpoint)")
    e.set_defaults(func=_cmd_eval_offline)

    c = sub.add_parser("collect", help="collect demos (teleop or scripted) into a LeRobot dataset")
    c.add_argument("--sim", **_SIM_OPTION)
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
    _add_camera_options(c)
    c.set_defaults(func=_cmd_collect)

    v = sub.add_parser("evaluate", help="evaluate a checkpoint over K episodes")
    v.add_argument("--sim", **_SIM_OPTION)
    v.add_argument("--checkpoint", default="", help="default: the shipped demo checkpoint")
    v.add_argument("--task", required=True,
                   help="real arm: the instruction of every episode; --sim: a task family (pick, put) or an "
                        "instruction the sim can stage ('pick up the red cube')")
    v.add_argument("--episodes", type=int, default=10)
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=1000, help="--sim: seed of the first episode")
    v.add_argument("--robot", default="sim_panda")
    v.add_argument("--timeout", type=float, default=30.0, help="seconds per episode (sim time in sim)")
    v.add_argument("--no-depth", action="store_true", help="ablation: run the model without depth")
    _add_camera_options(v)
    v.set_defaults(func=_cmd_evaluate)

    d = sub.add_parser("demo", help="closed-loop MuJoCo demo with the shipped checkpoint")
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
    _add_camera_options(d)
    d.set_defaults(func=_cmd_demo)

    bg = sub.add_parser("bench-generalization", help="pick success per camera viewpoint / fov / resolution "
                                                     "(docs/generalization/)")
    from posevla_ros.cli.bench_generalization import add_arguments as _bench_generalization_args

    _bench_generalization_args(bg)
    bg.set_defaults(func=_cmd_bench_generalization)

    x = sub.add_parser("expert", help="the scripted expert on the same held-out seeds (a baseline for demo)")
    x.add_argument("--episodes", type=int, default=10)
    x.add_argument("--seed", type=int, default=1000)
    x.add_argument("--task", default="pick")
    x.add_argument("--out", default="runs/expert")
    x.add_argument("--sim", default="mujoco", help="mujoco (our scene) | robosuite:<Task>[:<Arm>]")
    x.set_defaults(func=_cmd_expert)

    k = sub.add_parser("calibrate", help="hand-eye calibration with a ChArUco board (writes camera_to_base)")
    k.add_argument("--robot", default="sim_panda", help="config/robots/<robot>.yaml or a YAML path")
    k.add_argument("--mode", default="eye-to-hand", choices=["eye-to-hand", "eye-in-hand"],
                   help="eye-to-hand: fixed camera, board on the gripper; eye-in-hand: wrist camera, board fixed")
    k.add_argument("--poses", type=int, default=12, help="number of arm poses (views)")
    k.add_argument("--sim", action="store_true", help="MuJoCo sim with a board; the arm is moved for you")
    k.add_argument("--board", default="5x5", help="ChArUco squares, XxY")
    k.add_argument("--square", type=float, default=0.04, help="square side (m), measured on the print")
    k.add_argument("--marker", type=float, default=0.03, help="marker side (m), measured on the print")
    k.add_argument("--dictionary", default="DICT_5X5_100", help="cv2.aruco dictionary of the board")
    k.add_argument("--out", default="runs/calibrate", help="report, calibration.json and the YAML copy")
    k.add_argument("--write", action="store_true", help="write camera_to_base into the robot YAML in place")
    k.add_argument("--camera-ns", default="/camera", help="camera topics namespace (<ns>/color/image_raw)")
    k.add_argument("--gripper-link", default="", help="eye-in-hand: report the camera in this link (default ee_link)")
    k.add_argument("--seed", type=int, default=0, help="sim episode and pose sampling seed")
    k.set_defaults(func=_cmd_calibrate)

    md = sub.add_parser("make-data", help="sim grounding / motion shards on held-out scene seeds (eval-offline, "
                                          "train-verifier)")
    md.add_argument("--kind", choices=("grounding", "motion"), required=True)
    md.add_argument("--scenes", type=int, default=200)
    md.add_argument("--first-seed", type=int, default=1000,
                   help="scene seeds first_seed.. (training uses >= 100000, so the default is held out)")
    md.add_argument("--width", type=int, default=224)
    md.add_argument("--height", type=int, default=224)
    md.add_argument("--sim", default="mujoco", help="mujoco (our scene) | robosuite:<Task>[:<Arm>]")
    _add_camera_placement(md)
    md.add_argument("--randomize", action="store_true",
                    help="our scene: draw camera, lens, light, table color and depth faults per scene "
                         "(DomainRandomization, the data of make checkpoint-wide)")
    md.add_argument("--out", required=True)
    md.set_defaults(func=_cmd_make_data)

    sv = sub.add_parser("serve", help="serve a checkpoint to policy_node / RemotePolicy clients over a websocket "
                                      "(a GPU host; policy_node's policy_server:=host:port)")
    from posevla_core.serving.server import add_arguments

    add_arguments(sv).set_defaults(func=_cmd_serve)

    m = sub.add_parser("make-checkpoint", help="regenerate data and retrain the shipped checkpoint")
    m.add_argument("--out", default=None, help="default: the shipped checkpoint directory")
    m.add_argument("--work", default=None, help="generated data and stage outputs, reused by a rerun "
                   "(default: runs/make_checkpoint, with --wide runs/make_checkpoint_wide)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--quick", action="store_true", help="tiny data and steps (smoke test)")
    m.add_argument("--wide", action="store_true", help="randomized cameras, lenses, lights, tables and depth "
                   "faults in every training scene (checkpoints/wide; ~85 min on 2 cores)")
    m.set_defaults(func=_cmd_make_checkpoint)
    return p


def main(argv: list[str] | None = None) -> int:
    from posevla_ros.param_schema import ConfigError

    argv = sys.argv[1:] if argv is None else list(argv)
    train = argv[:1] == ["train"]     # delegated whole, so that `posevla train --help` is the trainer's help
    args = argparse.Namespace(cmd="train", train_args=argv[1:], func=_cmd_train) if train \
        else build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError) as e:
        print(f"posevla {args.cmd}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
