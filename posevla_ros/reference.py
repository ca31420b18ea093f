"""docs/reference.md: every launch argument, node, topic, service, action and parameter,
written from the tables the code runs on, so the reference cannot drift from the code.

    python -m posevla_ros.reference             # rewrite docs/reference.md
    python -m posevla_ros.reference --check     # exit 1 when docs/reference.md is out of date

Launch arguments come from ``graphs.ARGS``, the nodes from ``posevla_ros.nodes.NODE_NAMES`` (the
``*_node.py`` files), parameters from each node's ``ParamSpec`` table (``params.NODE_PARAMS``), and
the ROS interfaces from ``INTERFACES`` below. A test builds
policy_node and executor_node and compares what they really advertise with ``INTERFACES``, and
another regenerates this file and compares it with docs/reference.md.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from posevla_ros import params
from posevla_ros.launching import graphs
from posevla_ros.nodes import NODE_NAMES


@dataclass(frozen=True)
class Interface:
    """One ROS interface of a node. ``name`` is a topic/service/action name, or
    ``param:<parameter>`` when a parameter names it; ``when`` says when it exists."""

    kind: str       # publishes | subscribes | service | client | action client
    name: str
    type: str
    what: str
    when: str = ""


_CAM = "<ns> in camera_namespaces"
INTERFACES: dict[str, list[Interface]] = {
    "policy_node": [
        Interface("subscribes", "<ns>/color/image_raw", "sensor_msgs/Image", "RGB (rgb8, bgr8, rgba8, bgra8, mono8)", _CAM),
        Interface("subscribes", "<ns>/aligned_depth_to_color/image_raw", "sensor_msgs/Image",
                  "depth aligned to color: 16UC1 mm or 32FC1 m; 0 / NaN = no reading", _CAM + ", use_depth"),
        Interface("subscribes", "<ns>/color/camera_info", "sensor_msgs/CameraInfo", "intrinsics K of the RGB image", _CAM),
        Interface("subscribes", "/posevla/instruction", "std_msgs/String",
                  "the instruction (reliable, transient local, depth 1)"),
        Interface("subscribes", "/joint_states", "sensor_msgs/JointState", "the robot's state at each image",
                  "a checkpoint with proprioception"),
        Interface("subscribes", "param:camera_pose_topic", "geometry_msgs/PoseStamped",
                  "a moving camera's optical frame in base_frame", "set, and a checkpoint with proprioception"),
        Interface("subscribes", "param:robot_description_topic", "std_msgs/String", "the URDF (transient local)",
                  "robot_description_file empty, and a checkpoint with proprioception"),
        Interface("publishes", "/posevla/prediction", "posevla_ros/msg/PosePrediction",
                  "object, box, 6-DoF pose, waypoints in the camera optical frame"),
        Interface("publishes", "/posevla/markers", "visualization_msgs/MarkerArray", "the prediction for rviz2"),
        Interface("service", "/posevla/pause", "std_srvs/srv/Trigger", "stop predicting"),
        Interface("service", "param:resume_service", "std_srvs/srv/Trigger", "predict again (/posevla/resume_policy)"),
    ],
    "executor_node": [
        Interface("subscribes", "/posevla/prediction", "posevla_ros/msg/PosePrediction", "what to do"),
        Interface("subscribes", "/joint_states", "sensor_msgs/JointState", "the arm's measured joints (IK seed, hold)"),
        Interface("subscribes", "param:robot_description_topic", "std_msgs/String",
                  "the URDF, as robot_state_publisher publishes it (reliable, transient local)",
                  "robot_description_file empty"),
        Interface("subscribes", "param:camera_pose_topic", "geometry_msgs/PoseStamped",
                  "a moving camera's optical frame in base_frame", "set"),
        Interface("subscribes", "param:deadman_topic", "std_msgs/Bool", "operator heartbeat: motion only while fresh",
                  "set"),
        Interface("subscribes", "/tf, /tf_static", "tf2_msgs/TFMessage", "base_frame -> camera optical frame",
                  "use_tf and tf2_ros importable"),
        Interface("publishes", "/posevla/target_poses", "geometry_msgs/PoseArray",
                  "the prediction's waypoints in base_frame (also in dry_run)"),
        Interface("publishes", "param:controller_topic", "trajectory_msgs/JointTrajectory", "the checked arm trajectory",
                  "backend joint_trajectory, controller_action empty"),
        Interface("publishes", "param:gripper_topic", "trajectory_msgs/JointTrajectory",
                  "finger joint positions on the arm's time line", "gripper_topic and gripper_joint_names set, "
                                                                    "gripper_action empty"),
        Interface("action client", "param:controller_action", "control_msgs/action/FollowJointTrajectory",
                  "the checked arm trajectory as a goal; stop cancels it; no answer in time = hold", "set"),
        Interface("action client", "param:gripper_action", "control_msgs/action/GripperCommand",
                  "open / close at the plan's gripper switches", "set"),
        Interface("service", "/posevla/stop", "std_srvs/srv/Trigger", "hold position, ignore predictions"),
        Interface("service", "/posevla/resume", "std_srvs/srv/Trigger", "accept predictions again (and resume the policy)"),
        Interface("client", "param:policy_resume_service", "std_srvs/srv/Trigger", "the policy's resume", "set"),
    ],
    "sim_node": [
        Interface("publishes", "/clock", "rosgraph_msgs/Clock", "sim time", "mode sim"),
        Interface("publishes", "<camera_ns>/color/image_raw", "sensor_msgs/Image", "rendered RGB (rgb8)"),
        Interface("publishes", "<camera_ns>/aligned_depth_to_color/image_raw", "sensor_msgs/Image", "rendered depth (32FC1 m)"),
        Interface("publishes", "<camera_ns>/color/camera_info", "sensor_msgs/CameraInfo", "the camera's K"),
        Interface("publishes", "/joint_states", "sensor_msgs/JointState", "arm and finger joints"),
        Interface("publishes", "/sim/camera_pose", "geometry_msgs/PoseStamped", "the camera's true pose in base_link"),
        Interface("publishes", "/posevla/instruction", "std_msgs/String", "the staged episode's instruction",
                  "publish_instruction"),
        Interface("subscribes", "param:arm_topic", "trajectory_msgs/JointTrajectory", "arm commands"),
        Interface("subscribes", "param:gripper_topic", "trajectory_msgs/JointTrajectory", "finger commands"),
        Interface("service", "/sim/reset", "posevla_ros/srv/ResetEpisode", "stage an episode (seed, task)", "mode sim"),
        Interface("service", "/sim/success", "std_srvs/srv/Trigger", "the task's success predicate", "mode sim"),
        Interface("client", "/posevla/stop, /posevla/pause", "std_srvs/srv/Trigger",
                  "end the episode at its first success: the executor holds, the policy pauses", "hold_on_success"),
    ],
    "recorder_node": [
        Interface("subscribes", "/camera/color/image_raw, /camera/aligned_depth_to_color/image_raw, "
                                "/camera/color/camera_info", "sensor_msgs/Image, CameraInfo", "the frames recorded"),
        Interface("subscribes", "/posevla/instruction", "std_msgs/String", "the episode's task text"),
        Interface("subscribes", "/joint_states", "sensor_msgs/JointState", "observation.state"),
        Interface("publishes", "/recorder/status", "std_msgs/String", "recording state"),
        Interface("service", "/recorder/start, /recorder/stop, /recorder/discard", "std_srvs/srv/Trigger",
                  "episode control"),
        Interface("service", "/recorder/save", "posevla_ros/srv/SaveEpisode", "end the episode and keep it"),
    ],
    "evaluator_node": [
        Interface("publishes", "/posevla/instruction", "std_msgs/String", "each episode's instruction"),
        Interface("subscribes", "/camera/color/image_raw", "sensor_msgs/Image", "frames for the report"),
        Interface("subscribes", "/joint_states", "sensor_msgs/JointState", "plots"),
        Interface("subscribes", "/recorder/status", "std_msgs/String", "the recorder's state"),
        Interface("service", "/evaluator/ready, /evaluator/success, /evaluator/failure, /evaluator/abort",
                  "std_srvs/srv/Trigger", "the operator's marks (real arm)"),
        Interface("client", "param:reset_service, param:success_service", "ResetEpisode, Trigger",
                  "the sim's reset and success", "set"),
    ],
    "teleop_node": [
        Interface("subscribes", "/joint_states", "sensor_msgs/JointState", "the arm's joints"),
        Interface("subscribes", "param:joy.topic", "sensor_msgs/Joy", "gamepad", "mode joy"),
        Interface("subscribes", "param:leader.topic", "sensor_msgs/JointState", "leader arm", "mode leader"),
        Interface("publishes", "param:controller_topic, param:gripper_topic", "trajectory_msgs/JointTrajectory",
                  "checked teleop motions (the executor's checks)"),
    ],
}

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "docs" / "reference.md"


def _cell(value) -> str:
    text = graphs.launch_default(value) if not isinstance(value, list) else "[" + ", ".join(map(str, value)) + "]"
    text = text.replace("|", "\\|")
    return f"`{text}`" if text else '`""`'


def _text(text: str) -> str:
    """Free text in a table cell: '|' escaped, '<ns>'-style placeholders kept visible."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _type(spec) -> str:
    if isinstance(spec.default, list):
        return f"{spec.item_type.__name__}[]" + (f" ({spec.length})" if spec.length else "")
    return type(spec.default).__name__


def _limits(spec) -> str:
    if spec.choices:
        return " \\| ".join(map(str, spec.choices))
    if spec.lo is not None:
        return f"{spec.lo} .. {spec.hi}"
    return ""


def _name(name: str) -> str:
    return ", ".join(f"`{n.strip()}`" if not n.strip().startswith("param:") else f"(parameter `{n.strip()[6:]}`)"
                     for n in name.split(","))


def render() -> str:
    """The whole of docs/reference.md."""
    out = ["# Reference: launch arguments, nodes, topics, services, actions, parameters", "",
           "Generated by `python -m posevla_ros.reference` from the tables the code runs on (a test keeps it "
           "current). Topic and service names are the defaults; every topic is remappable. Frames and "
           "message fields: [design](architecture.md), [messages](messages.md).", ""]
    out += ["## Launch files", "",
            "`ros2 launch posevla_ros <file> name:=value ...`; the same graph runs in one process with the "
            "`posevla` command beside it (`-p name:=value` sets any node parameter there).", ""]
    for graph, args in graphs.ARGS.items():
        out += [f"### {graphs.LAUNCH_FILES[graph]}", "", "| argument | default | meaning |", "|---|---|---|"]
        out += [f"| `{k}` | {_cell(d)} | {_text(desc)} |" for k, (d, desc) in args.items()]
        out.append("")
    out += ["## Nodes", "",
            "Executables: `ros2 run posevla_ros <node>` (or `python -m posevla_ros.nodes.<node>`), with "
            "`--ros-args -p name:=value --params-file FILE -r from:=to`. Unknown or mistyped parameters stop "
            "the node with one line.", ""]
    for node in NODE_NAMES:
        out += [f"### {node}", "", "| interface | name | type | what | when |", "|---|---|---|---|---|"]
        out += [f"| {i.kind} | {_name(i.name)} | `{i.type}` | {_text(i.what)} | {_text(i.when) or 'always'} |"
                for i in INTERFACES[node]]
        out += ["", "| parameter | type | default | range | read-only | meaning |", "|---|---|---|---|---|---|"]
        for s in params.NODE_PARAMS[node]:
            out.append(f"| `{s.name}` | {_type(s)} | {_cell(s.default)} | {_limits(s)} | "
                       f"{'yes' if s.read_only else ''} | {_text(s.description)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m posevla_ros.reference", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(DEFAULT_PATH))
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when they differ")
    a = ap.parse_args(argv)
    text, path = render(), Path(a.out)
    if a.check:
        same = path.is_file() and path.read_text() == text
        print(f"{path}: {'up to date' if same else 'OUT OF DATE: run python -m posevla_ros.reference'}")
        return 0 if same else 1
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
