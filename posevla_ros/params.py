"""Parameters: one table per node (name, default, description, range), declaration with
descriptors, and the YAML loading that the launch files and the in-process runner share.

A node calls ``declare_all(self, POLICY_PARAMS)`` in its constructor and then
``read_all(self, POLICY_PARAMS)`` to get a plain dict; everything else in the node works
on that dict, so tests can build the same logic objects without ROS.

Where files live: ``share_dir()`` is the installed ``share/posevla_ros`` on a ROS install
(ament index) and the repository root when running from a checkout. Node defaults live in
``config/policy.yaml`` / ``config/executor.yaml`` (ROS params-file format); a robot lives in
``config/robots/<robot>.yaml`` and is turned into executor parameters by
``robot_executor_params``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "posevla_ros"
REPO_ROOT = Path(__file__).resolve().parent.parent

PANDA_ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
PANDA_FINGER_JOINTS = ["panda_finger_joint1", "panda_finger_joint2"]


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter. ``lo``/``hi`` give a descriptor range for numbers."""

    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    read_only: bool = False


POLICY_PARAMS: list[ParamSpec] = [
    ParamSpec("checkpoint", "", "checkpoint directory; empty = the shipped demo checkpoint "
              "(<share>/checkpoints/demo)", read_only=True),
    ParamSpec("device", "auto", "torch device: auto | cpu | cuda", read_only=True),
    ParamSpec("use_depth", True, "feed the aligned depth image to the model (False: RGB only)"),
    ParamSpec("max_image_age_s", 1.0, "drop frames older than this (seconds, node clock)", 0.0, 3600.0),
    ParamSpec("rate_hz", 2.0, "max inference rate; 0 = as fast as the model runs", 0.0, 1000.0),
    ParamSpec("sync_slop_s", 0.05, "max stamp difference of RGB / depth / CameraInfo in one frame",
              0.0, 10.0),
    ParamSpec("instruction", "", "initial instruction (also set by /posevla/instruction)"),
    ParamSpec("resume_service", "/posevla/resume_policy",
              "service that un-pauses the policy (the executor's /posevla/resume forwards to it)",
              read_only=True),
    ParamSpec("log_throttle_s", 5.0, "throttle period of repeated warnings (seconds)", 0.0, 3600.0),
]

EXECUTOR_PARAMS: list[ParamSpec] = [
    ParamSpec("base_frame", "base_link", "robot base frame of /posevla/target_poses and IK"),
    ParamSpec("use_tf", True, "camera->base from tf2 when tf2_ros imports; else camera_to_base.*"),
    ParamSpec("camera_to_base.translation", [0.0, 0.0, 0.0],
              "static pose of the camera optical frame in base_frame: [x, y, z] meters"),
    ParamSpec("camera_to_base.rotation_xyzw", [0.0, 0.0, 0.0, 1.0],
              "static pose of the camera optical frame in base_frame: quaternion [x, y, z, w]"),
    ParamSpec("camera_pose_topic", "", "PoseStamped of the camera optical frame in base_frame for a camera "
              "that moves (sim: /sim/camera_pose); empty = tf2 / camera_to_base.*", read_only=True),
    ParamSpec("robot_description_file", "posevla://panda", "URDF path (or posevla://<robot>)",
              read_only=True),
    ParamSpec("ee_link", "panda_grasptarget", "end-effector link the waypoints refer to", read_only=True),
    ParamSpec("joint_names", PANDA_ARM_JOINTS, "arm joints, in controller order", read_only=True),
    ParamSpec("gripper_joint_names", PANDA_FINGER_JOINTS, "finger joints of gripper_topic"),
    ParamSpec("gripper_open_position", 0.04, "finger joint position for gripper = 1.0 (open)"),
    ParamSpec("gripper_closed_position", 0.0, "finger joint position for gripper = 0.0 (closed)"),
    ParamSpec("controller_topic", "/arm_controller/joint_trajectory",
              "trajectory_msgs/JointTrajectory topic of the arm controller"),
    ParamSpec("controller_action", "",
              "FollowJointTrajectory action (used instead of the topic when control_msgs imports "
              "and this is set, e.g. /arm_controller/follow_joint_trajectory)"),
    ParamSpec("gripper_topic", "/gripper_controller/joint_trajectory",
              "trajectory_msgs/JointTrajectory topic of the finger joint(s); empty = no gripper"),
    ParamSpec("backend", "joint_trajectory", "joint_trajectory | moveit", read_only=True),
    ParamSpec("moveit_group", "panda_arm", "MoveIt planning group (backend: moveit)", read_only=True),
    ParamSpec("workspace.min", [0.1, -0.6, -0.05], "workspace box min [x, y, z] in base_frame (m)"),
    ParamSpec("workspace.max", [0.85, 0.6, 0.8], "workspace box max [x, y, z] in base_frame (m)"),
    ParamSpec("velocity_scale", 0.3, "fraction of the URDF joint velocity limits used", 0.01, 1.0),
    ParamSpec("max_joint_acceleration", 2.0, "joint acceleration limit (rad/s^2)", 0.01, 100.0),
    ParamSpec("max_joint_jump", 0.6, "max joint change between consecutive points (rad)", 0.01, 10.0),
    ParamSpec("max_prediction_age_s", 2.0, "ignore predictions older than this (seconds)", 0.0, 3600.0),
    ParamSpec("fk_position_tolerance", 0.005, "max FK position error of a sent point (m)", 0.0, 0.1),
    ParamSpec("fk_rotation_tolerance_deg", 3.0, "max FK rotation error of a sent point (deg)", 0.0, 45.0),
    ParamSpec("policy_resume_service", "/posevla/resume_policy",
              "/posevla/resume also calls this service (the policy's un-pause); empty = don't"),
    ParamSpec("log_throttle_s", 5.0, "throttle period of repeated warnings (seconds)", 0.0, 3600.0),
    ParamSpec("execution_mode", "replace",
              "replace: a new prediction replaces the running trajectory (receding horizon); "
              "complete: finish the running trajectory, then act only on predictions made from "
              "images taken after it ended (keyframe plans); chunk: action chunks of the flow head, "
              "stitched into the running trajectory with continuous position and velocity (chunk_*)"),
    ParamSpec("chunk_sample_dt", 0.05, "chunk mode: seconds between sent trajectory points", 0.005, 1.0),
    ParamSpec("chunk_commit_s", 0.1, "chunk mode: keep the running reference this long before blending "
              "in a new chunk (real-time chunking's frozen prefix)", 0.0, 10.0),
    ParamSpec("chunk_blend_s", 0.3, "chunk mode: cross-fade from the running reference to a new chunk "
              "over this long", 0.0, 10.0),
    ParamSpec("settle_time_s", 0.5, "complete mode: wait this long after a trajectory ends", 0.0, 60.0),
    ParamSpec("gripper_dwell_s", 0.8, "hold the arm this long where the gripper opens/closes", 0.0, 10.0),
]

NODE_PARAMS = {"policy_node": POLICY_PARAMS, "executor_node": EXECUTOR_PARAMS}


def _descriptor(spec: ParamSpec):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.lo is not None and isinstance(spec.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.lo), to_value=float(spec.hi))]
    elif spec.lo is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        d.integer_range = [IntegerRange(from_value=int(spec.lo), to_value=int(spec.hi), step=1)]
    return d


def declare_all(node, specs: list[ParamSpec]) -> None:
    """Declare every parameter of ``specs`` on ``node`` with its descriptor."""
    for s in specs:
        node.declare_parameter(s.name, s.default, _descriptor(s))


def read_all(node, specs: list[ParamSpec]) -> dict[str, Any]:
    """Current values of ``specs`` as a plain dict (lists as Python lists)."""
    out = {}
    for s in specs:
        v = node.get_parameter(s.name).value
        out[s.name] = list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v
    return out


def defaults(specs: list[ParamSpec]) -> dict[str, Any]:
    return {s.name: s.default for s in specs}


def coerce(value: Any, default: Any) -> Any:
    """Convert ``value`` (from YAML or a ``-p name=value`` string) to the type of ``default``
    so that it matches the declared parameter type (ints in a float list, "true", "0.5")."""
    if isinstance(value, str) and not isinstance(default, str):
        value = yaml.safe_load(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"expected a bool, got {value!r}")
        return value
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected a list, got {value!r}")
        if default and isinstance(default[0], float):
            return [float(x) for x in value]
        if default and isinstance(default[0], str):
            return [str(x) for x in value]
        return list(value)
    if isinstance(default, str):
        return str(value)
    return value


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: ROS parameter names from nested YAML."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_params_file(path: str | Path, node_name: str) -> dict[str, Any]:
    """Parameters of ``node_name`` in a ROS params file (``node: {ros__parameters: ...}``,
    ``/**`` wildcard included), flattened to dotted names. Missing node -> {}."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    out: dict[str, Any] = {}
    for key in ("/**", "**", node_name, "/" + node_name):
        section = data.get(key)
        if isinstance(section, dict):
            out.update(flatten(section.get("ros__parameters", {}) or {}))
    return out


def share_dir() -> Path:
    """The package's share directory: the repo root in a checkout, else ament's share dir."""
    if (REPO_ROOT / "config").is_dir() and (REPO_ROOT / "package.xml").is_file():
        return REPO_ROOT
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: BLE001 - no ament index: the checkout is all there is
        return REPO_ROOT


def camera_remappings(camera_ns: str) -> list[tuple[str, str]]:
    """Launch remappings from the nodes' /camera/... topics to a camera driver's namespace
    (RealSense-style names: color/image_raw, color/camera_info, aligned_depth_to_color/image_raw)."""
    ns = "/" + camera_ns.strip("/") if camera_ns.strip("/") else ""
    return [(f"/camera/{t}", f"{ns}/{t}") for t in
            ("color/image_raw", "color/camera_info", "aligned_depth_to_color/image_raw")]


def config_path(name: str) -> Path:
    """config/<name> (e.g. 'policy.yaml', 'robots/panda.yaml')."""
    return share_dir() / "config" / name


def default_checkpoint() -> Path:
    return share_dir() / "checkpoints" / "demo"


def resolve_checkpoint(value: str) -> Path:
    """The checkpoint directory for the ``checkpoint`` param; raises a clear error if absent."""
    path = Path(value).expanduser() if value else default_checkpoint()
    if not path.is_dir():
        hint = (" (the shipped demo checkpoint is missing: run `make checkpoint` or pass "
                "checkpoint:=/path/to/ckpt)") if not value else ""
        raise FileNotFoundError(f"checkpoint directory {path} does not exist{hint}")
    return path


def robot_config_path(robot: str) -> Path:
    p = Path(robot)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    path = config_path(f"robots/{robot}.yaml")
    if not path.is_file():
        known = sorted(x.stem for x in config_path("robots").glob("*.yaml"))
        raise FileNotFoundError(f"robot config {path} not found (known robots: {known})")
    return path


def load_robot_config(robot: str) -> dict[str, Any]:
    """The robot config YAML as a dict (a ROS params file is unwrapped to its parameters)."""
    data = yaml.safe_load(robot_config_path(robot).read_text()) or {}
    if isinstance(data, dict) and len(data) == 1:
        only = next(iter(data.values()))
        if isinstance(only, dict) and "ros__parameters" in only:
            return only["ros__parameters"]
    return data


# robot config key -> executor parameter (only keys present in the file are used)
_ROBOT_TO_EXECUTOR = {
    "urdf": "robot_description_file",
    "robot_description_file": "robot_description_file",
    "ee_link": "ee_link",
    "joint_names": "joint_names",
    "arm_joint_names": "joint_names",
    "gripper_joint_names": "gripper_joint_names",
    "finger_joint_names": "gripper_joint_names",
    "gripper_open_position": "gripper_open_position",
    "gripper_closed_position": "gripper_closed_position",
    "base_frame": "base_frame",
    "controller_topic": "controller_topic",
    "arm_controller_topic": "controller_topic",
    "controller_action": "controller_action",
    "gripper_topic": "gripper_topic",
    "gripper_controller_topic": "gripper_topic",
    "moveit_group": "moveit_group",
    "max_joint_jump": "max_joint_jump",
    "velocity_scale": "velocity_scale",
    "max_joint_acceleration": "max_joint_acceleration",
}


def robot_executor_params(robot: str) -> dict[str, Any]:
    """Executor parameters from config/robots/<robot>.yaml (dotted names, typed like the
    declared defaults). Nested sections ``camera_to_base``, ``workspace``, ``controllers``,
    ``gripper`` and ``limits`` are understood; unknown keys are ignored."""
    cfg = flatten(load_robot_config(robot))
    specs = {s.name: s for s in EXECUTOR_PARAMS}
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = key if key in specs else _ROBOT_TO_EXECUTOR.get(key, _ROBOT_TO_EXECUTOR.get(key.split(".")[-1]))
        if name is None or name not in specs:
            continue
        try:
            out[name] = coerce(value, specs[name].default)
        except (TypeError, ValueError):
            continue
    return out


def typed_overrides(specs: list[ParamSpec], values: dict[str, Any], strict: bool = False) -> dict[str, Any]:
    """Keep the entries of ``values`` that name a parameter of ``specs``, typed like it."""
    by_name = {s.name: s for s in specs}
    out = {}
    for k, v in values.items():
        if k in by_name:
            out[k] = coerce(v, by_name[k].default)
        elif k == "use_sim_time":
            out[k] = coerce(v, False)
        elif strict:
            raise KeyError(f"unknown parameter {k!r}")
    return out


def check_finite(name: str, values) -> None:
    if any(not math.isfinite(float(x)) for x in values):
        raise ValueError(f"parameter {name} has non-finite values: {values}")
