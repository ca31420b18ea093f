"""The node graphs, described once: which nodes run, with which parameter files, parameter
values and remappings, for each way of running posevla.

    policy     policy_node + executor_node                        (a real arm, or any camera)
    sim_demo   sim_node + policy_node + executor_node             (closed loop in MuJoCo)
    evaluate   [sim_node] + policy + executor + recorder + evaluator   (sim:=true | false)
    collect    [sim_node] + teleop_node + recorder + evaluator    (collection mode)

Both ways of starting a graph are built from ``build(graph, args)``:
- the launch files (``launch/<graph>.launch.py``) turn each ``NodeSpec`` into a
  ``launch_ros.actions.Node`` with ``NodeSpec.launch_kwargs()`` (posevla_ros.launching.launch_description);
- the in-process runner (``posevla run|demo|evaluate|collect``, posevla_ros.launching.runner) builds the
  node classes with ``NodeSpec.parameters()``: the same files read the same way, then the
  same values.
So launch and CLI cannot disagree (they once did: the launched evaluation ran the executor
in ``replace`` mode without the sim's camera pose and scored 0/5 where the CLI scored 19/20).

No rclpy here: the parameter tables live in posevla_ros.params, a node's spec in
posevla_ros.launching.node_spec. Arguments arrive as strings from launch and as Python values from the CLI;
``typed_args`` makes them one typed dict. Bad arguments are a ValueError with one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from posevla_core.sim.camera import CameraPlacement
from posevla_core.sim.factory import MUJOCO, camera_choice, check_task, parse_sim, with_robot
from posevla_core.sim.mujoco.look import SceneLook
from posevla_core.sim.mujoco.options import DEFAULTS, scene_options
from posevla_ros import params
from posevla_ros.launching.node_spec import NodeSpec, make_spec

SIM_CAMERA_POSE_TOPIC = "/sim/camera_pose"


# ------------------------------------------------------------------ graph arguments
# name -> (default, description). The launch files declare exactly these.
_COMMON = {
    "robot": ("sim_panda", "robot config: config/robots/<robot>.yaml (or a path to a YAML file)"),
    "checkpoint": ("", "Pose-VLA checkpoint directory; empty = the shipped demo checkpoint"),
    "backend": ("joint_trajectory", "joint_trajectory | moveit"),
    "use_depth": (True, "feed the aligned depth image to the model (false: RGB-only ablation)"),
    "rviz": (False, "start rviz2 with config/rviz/posevla.rviz (launch only)"),
}
# the executor's operator safety flags, as launch arguments (also `-p name:=value` in `posevla run`)
_OPERATOR = {
    "dry_run": (False, "plan and publish /posevla/target_poses and markers, send NO motion (first runs on a "
                       "new robot); true here or in the robot config means dry run"),
    "deadman_topic": ("", "std_msgs/Bool heartbeat (true = operator present): the arm moves only while it is "
                          "fresh; empty = the robot config's (none by default)"),
    "deadman_timeout_s": (0.5, "deadman heartbeat freshness (s); going stale holds the arm"),
}
_CAMERA_NS = {"camera_ns": ("/camera", "camera driver namespace (color/image_raw, color/camera_info, "
                                      "aligned_depth_to_color/image_raw)")}
_SIMULATOR = {"simulator": ("mujoco", "sim: mujoco (our table-top scene) | robosuite:<Task> (robosuite:Lift; "
                                     "robot sim_panda then means robosuite_panda)"),
              # where the sim camera stands (posevla_core/sim/camera.py); the executor gets the true
              # pose from /sim/camera_pose either way
              "camera_pose": ("", "sim: the camera's optical frame in the robot base, 'x,y,z,qx,qy,qz,qw'; "
                                  "empty = the nominal pose (mujoco: jittered per episode)"),
              "camera_fov_deg": (0.0, "sim: vertical field of view of the camera (deg); 0 = the scene's (50)"),
              "sim_camera": ("", "sim (robosuite): a camera of robosuite's model, rendered as robosuite has it "
                                 "(agentview, frontview, sideview, birdview, ...); empty = agentview moved to where "
                                 "our scene's camera sits"),
              "scene_look": ("", "sim (mujoco): lights and table color, 'light=0.4,light_color=1:0.75:0.5,"
                                 "light_azimuth=-90,table=0.9:0.9:0.9'; empty = as trained"),
              # what the scene holds and how its depth sensor errs (posevla_core/sim/mujoco/options.py)
              "depth_noise": ("", "sim (mujoco): the depth sensor's faults in every frame, realsense | heavy | "
                                  "field=value,...; empty = the clean depth"),
              "objects": (0, "sim (mujoco): objects on the table per episode, 1-8 (distractors added to the "
                             "episode as drawn); 0 = as drawn (3-4)"),
              "object_scale": (1.0, "sim (mujoco): size factor of the cubes and cylinders, 0.5-1.4; 1 = as trained"),
              "width": (0, "sim: image width (px); 0 = sim_node's (224)"),
              "height": (0, "sim: image height (px); 0 = sim_node's (224)")}
ARGS: dict[str, dict[str, tuple[Any, str]]] = {
    "policy": {**_COMMON, **_CAMERA_NS, **_OPERATOR,
               "use_sim_time": (False, "use /clock"),
               "policy_server": ("", "host:port of a `posevla serve` policy server (a GPU host) that runs the "
                                     "model; empty = policy_node runs it (a flow checkpoint served: add "
                                     "execution_mode:=chunk)"),
               "policy_server_timeout_s": (1.0, "policy_server: per-frame limit (s); set it above the served "
                                                "model's prediction time"),
               "camera_pose_topic": ("", "PoseStamped of a moving camera (sim: /sim/camera_pose); "
                                         "empty = tf2 / the robot config's camera_to_base"),
               "execution_mode": ("replace", "replace (receding horizon) | complete (finish each keyframe "
                                             "plan first) | chunk (flow-head chunks; chosen for a flow checkpoint)")},
    "sim_demo": {**_COMMON, **_OPERATOR,
                 **_SIMULATOR,
                 "task": ("pick", "sim task: a family (pick, put) or an instruction the sim can stage "
                                  "('pick up the red cube')"),
                 "seed": (1000, "episode seed (object layout, camera pose)"),
                 "exit_on_success": (False, "end everything at the episode's first success (unattended runs); "
                                            "false: hold the arm, pause the policy and keep running")},
    "evaluate": {**_COMMON, **_CAMERA_NS, **_OPERATOR,
                 "sim": (True, "true: start sim_node (MuJoCo), resets and success from the sim; "
                               "false: a real arm, the operator resets and marks success"),
                 **_SIMULATOR,
                 "task": ("pick", "sim: a family (pick, put) or an instruction the sim can stage; "
                                  "real arm: the instruction of every episode"),
                 "episodes": (10, "number of episodes"),
                 "absent": (0, "sim: then this many episodes whose instruction names an object not in the scene "
                               "(right: object_found false and no motion)"),
                 "seed": (1000, "seed of the first episode (sim)"),
                 "timeout": (30.0, "episode timeout in seconds (sim time in sim)"),
                 "out": ("runs/eval", "results directory (summary.json, results.jsonl, report.html, "
                                      "rollouts/)"),
                 "execution_mode": ("complete", "executor mode: complete (keyframe plans) | replace | chunk (a flow checkpoint always)"),
                 "keyboard": (False, "real arm: operator keys in the evaluator's terminal "
                                     "(Enter ready, y success, b failure, q quit)")},
    "collect": {**{k: _COMMON[k] for k in ("robot",)}, **_CAMERA_NS,
                "sim": (False, "true: start sim_node (MuJoCo), resets and success from the sim; "
                               "false: a real arm, the operator resets and saves"),
                **_SIMULATOR,
                "teleop": ("keyboard", "keyboard | joy | leader (| scripted: sim expert, in-process only)"),
                "task": ("", "sim: a family or an instruction the sim can stage; real arm: the "
                             "instruction recorded with every episode"),
                "episodes": (10, "demos to save"),
                "seed": (0, "seed of the first episode (sim)"),
                "timeout": (0.0, "episode timeout in seconds; 0 = 30 s for the scripted expert, else 300 s"),
                "out": ("data/demos", "LeRobot dataset directory"),
                "fps": (10.0, "recorded frames per second"),
                "mcap": (False, "also record raw topics as MCAP"),
                "joy_topic": ("/joy", "sensor_msgs/Joy topic (teleop:=joy)"),
                "leader_topic": ("/leader/joint_states", "leader arm joint states (teleop:=leader)")},
}
TELEOP_MODES = ("keyboard", "joy", "leader", "scripted")
EXECUTION_MODES = ("replace", "complete", "chunk")


def typed_args(graph: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (strings from launch or values from the CLI) over the graph's defaults,
    typed like the defaults. Unknown names are an error."""
    if graph not in ARGS:
        raise ValueError(f"unknown graph {graph!r} (known: {', '.join(ARGS)})")
    spec = ARGS[graph]
    out = {k: d for k, (d, _) in spec.items()}
    for k, v in given.items():
        if k not in spec:
            raise ValueError(f"graph {graph!r} has no argument {k!r} (known: {', '.join(spec)})")
        try:
            out[k] = params.coerce(v, spec[k][0])
        except (TypeError, ValueError) as e:
            raise ValueError(f"argument {k}:={v!r}: {e}") from None
    return out


def launch_default(value: Any) -> str:
    """A default as a launch argument string ('true' / 'false' for bools)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


# ------------------------------------------------------------------ the graphs
def _sim_args(a: dict, task: str, sim: bool = True) -> dict:
    """``a`` checked against its simulator (posevla_core.sim.factory: ``mujoco`` | ``robosuite:<Task>``):
    the sim can stage ``task`` (ValueError: one line saying what it can), and the robot config
    is the simulator's (robosuite's Panda: ``robosuite_panda``; ``robot`` may name a robosuite arm,
    select.with_robot)."""

    choice = parse_sim(a.get("simulator", MUJOCO))
    if not sim:
        if choice.backend != MUJOCO:
            raise ValueError(f"simulator {choice}: needs the sim (--sim {choice}, or sim:=true when launched)")
        return a
    check_task(choice, task)
    if a.get("absent") and choice.backend != MUJOCO:
        raise ValueError(f"absent: absent-object episodes are staged in the mujoco scene only, not {choice}")
    choice, robot = with_robot(choice, a["robot"])
    return dict(a, simulator=str(choice), robot=robot)


def _for_head(checkpoint: str, execution_mode: str) -> str:
    """A flow-head checkpoint (posevla_core.policies.flow.modeling) sends action chunks: they always run
    stitched (chunk mode), whatever the graph's default; a token head keeps ``execution_mode``."""
    from posevla_core.paths import head_of, resolve_checkpoint  # config.json only: no torch

    try:
        head = head_of(resolve_checkpoint(checkpoint))
    except FileNotFoundError:       # policy_node reports the missing checkpoint, in one line
        return execution_mode
    return "chunk" if head == "flow" else execution_mode


def _operator_flags(a: dict) -> dict:
    """The executor's operator flags from the graph arguments. They never weaken the robot
    config: ``dry_run`` true here or there is a dry run; the deadman settings override the
    config only when given (not their defaults)."""
    out = {}
    if a.get("dry_run") or (a.get("robot") and params.robot_executor_params(a["robot"], check_urdf=False).get("dry_run")):
        out["dry_run"] = True
    for k in ("deadman_topic", "deadman_timeout_s"):
        if k in a and a[k] != ARGS["policy"][k][0]:
            out[k] = a[k]
    return out


def _policy_pair(a: dict, sim: bool, execution_mode: str, camera_ns: str) -> list[NodeSpec]:
    execution_mode = _for_head(a["checkpoint"], execution_mode)
    if execution_mode not in EXECUTION_MODES:
        raise ValueError(f"execution_mode {execution_mode!r}: use {' | '.join(EXECUTION_MODES)}")
    remap = params.camera_remappings(camera_ns)
    policy = {"use_sim_time": sim, "use_depth": a["use_depth"]}
    if a["checkpoint"]:
        policy["checkpoint"] = a["checkpoint"]
    if a.get("policy_server"):
        policy["policy_server"] = a["policy_server"]
        policy["policy_server_timeout_s"] = a.get("policy_server_timeout_s", ARGS["policy"]["policy_server_timeout_s"][0])
    executor = {"backend": a["backend"], "use_sim_time": sim, "execution_mode": execution_mode,
                **_operator_flags(a)}
    camera = {}       # where the camera is: the executor's transform, and the robot state a policy may read
    if sim:   # the sim moves its camera per episode and publishes where it is
        camera = dict(use_tf=False, camera_pose_topic=SIM_CAMERA_POSE_TOPIC)
    elif a.get("camera_pose_topic"):
        camera = dict(camera_pose_topic=a["camera_pose_topic"])
    return [make_spec("policy_node", {**policy, **camera}, robot=a["robot"], files=("policy.yaml",), remappings=remap),
            make_spec("executor_node", {**executor, **camera}, robot=a["robot"], files=("executor.yaml",))]


def _sim(a: dict, publish_instruction: bool, task: str = "pick", seed: int = 0, **values) -> NodeSpec:
    """sim_node; ``values``: more of its parameters (posevla_ros.params.SIM_PARAMS). The camera arguments
    are checked here (a bad pose or fov: ValueError, one line) and passed only when given."""

    camera = {k: a[k] for k in ("camera_pose", "camera_fov_deg", "sim_camera", "width", "height", "scene_look")
              if a.get(k)}
    placement = CameraPlacement.parse(camera.get("camera_pose"), camera.get("camera_fov_deg"), camera.get("width"),
                                      camera.get("height"))
    camera_choice(a.get("simulator", "mujoco"), camera.get("sim_camera"), placement)   # a name robosuite lacks: sim_node
    SceneLook.parse(camera.get("scene_look"))

    options = {k: a[k] for k in DEFAULTS if k in a and a[k] != DEFAULTS[k]}
    if scene_options(**options) and a.get("simulator", "mujoco") != "mujoco":   # a bad value: ValueError, one line
        raise ValueError(f"{' / '.join(options)}: the mujoco scene only, not {a['simulator']}")
    camera.update(options)
    if "scene_look" in camera and a.get("simulator", "mujoco") != "mujoco":
        raise ValueError(f"scene_look: the mujoco scene only, not {a['simulator']}")
    values = {**camera, **values}
    return make_spec("sim_node", {"sim": a.get("simulator", "mujoco"), "robot": a["robot"],
                              "camera_ns": a.get("camera_ns", "/camera"),
                              "task": task, "seed": seed, "publish_instruction": publish_instruction, **values})


def policy_graph(a: dict) -> list[NodeSpec]:
    return _policy_pair(a, a["use_sim_time"], a["execution_mode"], a["camera_ns"])


def sim_demo_graph(a: dict) -> list[NodeSpec]:
    """One episode staged at start; sim_node publishes its instruction (transient local), so
    the policy acts without anyone typing. At the episode's first success sim_node logs it and
    ends the episode (hold_on_success: the executor holds, the policy pauses), as the evaluator
    does; without that the policy went on acting on the lifted object and only refusals showed."""
    a = _sim_args(a, a["task"])
    return ([_sim(a, True, a["task"], a["seed"], hold_on_success=True, exit_on_success=a["exit_on_success"])]
            + _policy_pair(a, True, "complete", "/camera"))


def _recorder(a: dict, sim: bool, root: str, **values) -> NodeSpec:
    values.update(root=root, use_sim_time=sim, camera_pose_topic=SIM_CAMERA_POSE_TOPIC if sim else "")
    return make_spec("recorder_node", values, robot=a["robot"], files=("recorder.yaml",),
                 remappings=params.camera_remappings(a["camera_ns"]))


def _operator_services(sim: bool) -> dict:
    """Real arm: no sim services; the operator says 'ready' and marks the outcome."""
    return {} if sim else {"reset_service": "", "success_service": ""}


def evaluate_graph(a: dict) -> list[NodeSpec]:
    sim = a["sim"]
    a = _sim_args(a, a["task"], sim)
    if not sim and not a["task"].strip():
        raise ValueError("task: a real arm needs the instruction (task:='pick up the red cube')")
    if a["absent"] and not sim:
        raise ValueError("absent: absent-object episodes need the sim (it stages the scene the instruction does not match)")
    if a["absent"] < 0 or a["episodes"] < 0 or a["episodes"] + a["absent"] < 1:
        raise ValueError(f"episodes ({a['episodes']}) and absent ({a['absent']}) must be >= 0, together >= 1")
    out = str(a["out"])
    camera_ns = "/camera" if sim else a["camera_ns"]
    a = dict(a, camera_ns=camera_ns)
    evaluator = dict(task=a["task"], instruction="" if sim else a["task"], episodes=a["episodes"],
                     absent_episodes=a["absent"], seed=a["seed"], timeout_s=a["timeout"], out=out, checkpoint=a["checkpoint"],
                     use_sim_time=sim, keyboard=bool(a["keyboard"]) and not sim, **_operator_services(sim))
    nodes = _policy_pair(a, sim, a["execution_mode"], camera_ns) + [
        _recorder(a, sim, str(Path(out) / "rollouts"), use_depth=True),
        make_spec("evaluator_node", evaluator, robot=a["robot"], files=("evaluator.yaml",),
              remappings=params.camera_remappings(camera_ns)[:1], tty=not sim)]
    return ([_sim(a, False, a["task"] or "pick")] if sim else []) + nodes   # a robosuite task stages one family


def collect_timeout(a: dict) -> float:
    return float(a["timeout"]) if a["timeout"] > 0 else (30.0 if a["teleop"] == "scripted" else 300.0)


def collect_graph(a: dict) -> list[NodeSpec]:
    """Collection is an evaluation loop that keeps only successes: per episode the sim resets
    (or the operator says 'ready'), recording runs until the sim's success predicate (or
    the operator's 'save') or the timeout; failures are discarded. Teleop's episode keys
    go to the evaluator's operator services."""
    sim, teleop = a["sim"], a["teleop"]
    if teleop not in TELEOP_MODES:
        raise ValueError(f"teleop {teleop!r}: use {' | '.join(TELEOP_MODES)}")
    if teleop == "scripted" and not sim:
        raise ValueError("teleop 'scripted' needs the sim (the expert reads the sim state): --sim, or sim:=true when launched")
    a = _sim_args(a, a["task"] or "pick", sim)
    if not sim and not a["task"].strip():
        raise ValueError("task: a real arm needs the instruction recorded with every episode "
                         "(--task 'pick up the red cube')")
    out = str(a["out"])
    teleop_params = {"mode": "none" if teleop == "scripted" else teleop, "use_sim_time": sim,
                     "episode_services": "evaluator", "joy.topic": a["joy_topic"],
                     "leader.topic": a["leader_topic"]}
    evaluator = dict(task=a["task"] or "pick", instruction="" if sim else a["task"],
                     episodes=3 * int(a["episodes"]) + 2, target_successes=int(a["episodes"]),
                     seed=a["seed"], timeout_s=collect_timeout(a), out=str(Path(out) / "collect_log"),
                     keep_failures=False, record=True, stop_service="", pause_service="", resume_service="",
                     use_sim_time=sim, keyboard=False, **_operator_services(sim))
    if sim:
        a = dict(a, camera_ns="/camera")
    recorder = {"fps": a["fps"], "mcap": a["mcap"]}
    if not sim:
        recorder["instruction"] = a["task"]
    nodes = [make_spec("teleop_node", teleop_params, robot=a["robot"], files=("teleop.yaml",), tty=True),
             _recorder(a, sim, out, **recorder),
             make_spec("evaluator_node", evaluator, robot=a["robot"], files=("evaluator.yaml",),
                   remappings=params.camera_remappings(a["camera_ns"])[:1])]
    return ([_sim(a, False, a["task"] or "pick")] if sim else []) + nodes   # a robosuite task stages one family


GRAPHS: dict[str, Callable[[dict], list[NodeSpec]]] = {
    "policy": policy_graph, "sim_demo": sim_demo_graph, "evaluate": evaluate_graph, "collect": collect_graph}
LAUNCH_FILES = {"policy": "policy.launch.py", "sim_demo": "sim_demo.launch.py",
                "evaluate": "evaluate.launch.py", "collect": "collect_demos.launch.py"}


def rviz_camera_ns(graph: str, given: dict[str, Any]) -> str:
    """The camera namespace rviz2 shows: the graph's ``camera_ns``; a sim's camera is /camera."""
    a = typed_args(graph, given)
    return "/camera" if graph == "sim_demo" or a.get("sim") else a.get("camera_ns", "/camera")


def build(graph: str, args: dict[str, Any] | None = None) -> list[NodeSpec]:
    """The nodes of ``graph`` for ``args`` (see ARGS[graph]); ValueError on bad arguments."""
    return GRAPHS[graph](typed_args(graph, args or {}))
