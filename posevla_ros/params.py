"""Parameters: one table per node (name, default, description, range), declaration with
descriptors, and the YAML loading that the launch files and the in-process runner share.

Why one module: Every node's parameter table and the loading/typing they share, so launch, CLI
and docs read one source.

A node calls ``declare_all(self, POLICY_PARAMS)`` in its constructor and then
``read_all(self, POLICY_PARAMS)`` to get a plain dict; everything else in the node works
on that dict, so tests can build the same logic objects without ROS.

Where files live: ``share_dir()`` (``posevla_core.paths``) is the checkout, else the
installed ``share/posevla_ros`` (pip, colcon, the venv's CMake install). Node defaults live in
``config/policy.yaml`` / ``config/executor.yaml`` (ROS params-file format); a robot lives in
``config/robots/<robot>.yaml`` and is turned into executor parameters by
``robot_executor_params``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

from posevla_core.paths import share_dir
from posevla_core.sim.mujoco.assets import resolve_robot_description
from posevla_ros.param_schema import ConfigError, ParamSpec, check_min_max, check_value, did_you_mean, unknown_key_error
from posevla_ros.ros_io.topics import CAMERA_STREAMS, TOPIC_PREDICTION, camera_topics

PANDA_ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
PANDA_FINGER_JOINTS = ["panda_finger_joint1", "panda_finger_joint2"]


POLICY_PARAMS: list[ParamSpec] = [
    ParamSpec("checkpoint", "", "checkpoint directory; empty = the shipped demo checkpoint "
              "(<share>/checkpoints/demo)", read_only=True),
    ParamSpec("device", "auto", "torch device: auto | cpu | cuda | cuda:N", read_only=True),
    ParamSpec("policy_server", "", "host:port of a `posevla serve` policy server (a GPU host) whose model "
              "answers instead of one in this process (checkpoint / device are then the server's); "
              "empty = run the model here", read_only=True),
    ParamSpec("policy_server_timeout_s", 1.0, "policy_server: per-frame limit (connecting included); "
              "past it no prediction for that frame and the connection is made afresh", 0.01, 600.0,
              read_only=True),
    ParamSpec("policy_server_wait_s", 30.0, "policy_server: how long the node waits at start for the server "
              "(its handshake says what the model needs) before it gives up; 0 = one try", 0.0, 86400.0,
              read_only=True),
    ParamSpec("decoding", "static-compile", "how the model runs its sequential part: static-compile compiles, "
              "at start, the small model's fixed-shape pose-token decode step or a flow head's Euler steps "
              "(~10-20 s the first time, a few s once inductor's disk cache holds them; the fastest on a CPU, "
              "see README Benchmarks); static = the same step uncompiled; eager = transformers' growing KV "
              "cache. A compilation that fails falls back to the uncompiled step with a warning. PaliGemma "
              "token heads keep their own (eager)", read_only=True, choices=("static-compile", "static", "eager")),
    ParamSpec("inference_threads", 0, "torch's CPU threads for the model this node loads; 0 = half the CPUs "
              "the process may use, at least 1 (the node predicts on a worker thread, where OpenMP with as "
              "many threads as CPUs stops spin-waiting between kernels: on 2 cores a prediction took 2x as "
              "long; see README Benchmarks)", 0, 1024, read_only=True),
    ParamSpec("use_depth", True, "feed the aligned depth image to the model (False: RGB only)"),
    ParamSpec("max_image_age_s", 1.0, "drop frames older than this (seconds, node clock)", 0.0, 3600.0),
    ParamSpec("min_object_depth_support", 0.1, "refuse (no motion) an answer whose grounded object has less "
              "than this share of valid depth pixels around its 2D box center (a black or shiny object the "
              "depth camera does not see: the model's distance to it is then a guess); 0 = never", 0.0, 1.0),
    ParamSpec("rate_hz", 2.0, "max inference rate; 0 = as fast as the model runs", 0.0, 1000.0),
    ParamSpec("sync_slop_s", 0.05, "max stamp difference of RGB / depth / CameraInfo in one frame",
              0.0, 10.0),
    ParamSpec("camera_namespaces", ["/camera"], "RGB-D cameras, each <ns>/color/image_raw, "
              "<ns>/aligned_depth_to_color/image_raw, <ns>/color/camera_info, all synced; the first is "
              "the prediction frame, the others go to the model as extra views", read_only=True, item=str),
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
              "static pose of the camera optical frame in base_frame: [x, y, z] meters", length=3),
    ParamSpec("camera_to_base.rotation_xyzw", [0.0, 0.0, 0.0, 1.0],
              "static pose of the camera optical frame in base_frame: quaternion [x, y, z, w]", length=4),
    ParamSpec("camera_pose_topic", "", "PoseStamped of the camera optical frame in base_frame for a camera "
              "that moves (sim: /sim/camera_pose); empty = tf2 / camera_to_base.*", read_only=True),
    ParamSpec("robot_description_file", "", "URDF file path (or posevla://<robot>); empty = the URDF "
              "published on robot_description_topic (robot_state_publisher's)", read_only=True),
    ParamSpec("robot_description_topic", "/robot_description",
              "std_msgs/String topic (reliable, transient local) of the URDF, read when "
              "robot_description_file is empty", read_only=True),
    ParamSpec("ee_link", "panda_grasptarget", "end-effector link the waypoints refer to", read_only=True),
    ParamSpec("joint_names", PANDA_ARM_JOINTS, "arm joints, in controller order", read_only=True,
              item=str),
    ParamSpec("gripper_joint_names", PANDA_FINGER_JOINTS,
              "finger joints of gripper_topic; [] = an arm without a gripper (no gripper commands)", item=str),
    ParamSpec("gripper_open_position", 0.04, "finger joint position for gripper = 1.0 (open)"),
    ParamSpec("gripper_closed_position", 0.0, "finger joint position for gripper = 0.0 (closed)"),
    ParamSpec("controller_topic", "/arm_controller/joint_trajectory",
              "trajectory_msgs/JointTrajectory topic of the arm controller"),
    ParamSpec("controller_action", "",
              "control_msgs/FollowJointTrajectory action of the arm controller, used instead of "
              "controller_topic when set (e.g. /arm_controller/follow_joint_trajectory); the node "
              "refuses to start if control_msgs does not import"),
    ParamSpec("gripper_action", "",
              "control_msgs/GripperCommand action of the gripper, used instead of gripper_topic when set "
              "(e.g. /robotiq_gripper_controller/gripper_cmd); position = gripper_open/closed_position"),
    ParamSpec("gripper_max_effort", 20.0,
              "GripperCommand max_effort (N or Nm, the gripper's unit): an effort-controlled "
              "gripper_action_controller clamps its effort to it (0 = no force), a position-controlled "
              "one ignores it", 0.0, 1e4),
    ParamSpec("action_timeout_s", 1.0,
              "controller actions: a goal not accepted within this, or a result later than the "
              "trajectory's end + this, means hold (cancel, no further motion from that plan)", 0.01, 60.0),
    ParamSpec("gripper_topic", "/gripper_controller/joint_trajectory",
              "trajectory_msgs/JointTrajectory topic of the finger joint(s); empty = no gripper"),
    ParamSpec("backend", "joint_trajectory", "joint_trajectory | moveit", read_only=True,
              choices=("joint_trajectory", "moveit")),
    ParamSpec("moveit_group", "panda_arm", "MoveIt planning group (backend: moveit)", read_only=True),
    ParamSpec("workspace.min", [0.1, -0.6, -0.05], "workspace box min [x, y, z] in base_frame (m)",
              length=3),
    ParamSpec("workspace.max", [0.85, 0.6, 0.8], "workspace box max [x, y, z] in base_frame (m)",
              length=3),
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
              "stitched into the running trajectory with continuous position and velocity (chunk_*)",
              choices=("replace", "complete", "chunk")),
    ParamSpec("chunk_sample_dt", 0.05, "chunk mode: seconds between sent trajectory points", 0.005, 1.0),
    ParamSpec("chunk_commit_s", 0.1, "chunk mode: keep the running reference this long before blending "
              "in a new chunk (real-time chunking's frozen prefix)", 0.0, 10.0),
    ParamSpec("chunk_blend_s", 0.3, "chunk mode: cross-fade from the running reference to a new chunk "
              "over this long", 0.0, 10.0),
    ParamSpec("settle_time_s", 0.5, "complete mode: wait this long after a trajectory ends", 0.0, 60.0),
    ParamSpec("gripper_dwell_s", 0.8, "hold the arm this long where the gripper opens/closes", 0.0, 10.0),
    ParamSpec("empty_grasp_opening", 0.05,
              "a closed gripper whose measured opening (0 closed .. 1 open, from gripper_joint_names in "
              "/joint_states) stays below this held nothing: the arm holds and the gripper opens again, so "
              "the policy can start the reach over; 0 = off (and off in chunk mode)", 0.0, 1.0),
    ParamSpec("empty_grasp_wait_s", 1.0, "judge a close this long after it was commanded", 0.0, 60.0),
    ParamSpec("dry_run", False, "plan and publish /posevla/target_poses, but send no motion (first "
              "runs on a new robot); read once at start", read_only=True),
    ParamSpec("deadman_topic", "", "std_msgs/Bool heartbeat (true = operator present); motion only while "
              "a true message is fresher than deadman_timeout_s; empty = no deadman", read_only=True),
    ParamSpec("deadman_timeout_s", 0.5, "deadman heartbeat freshness (seconds); going stale stops the arm",
              0.01, 60.0, read_only=True),
]

#: executor parameter specs by name: what other nodes that share a parameter declare
EXECUTOR_SPEC = {s.name: s for s in EXECUTOR_PARAMS}
#: what a node that reads the robot's state at an image declares (posevla_ros.ros_io.robot_state), beside
#: its own ``camera_pose_topic``: the recorder always, policy_node for a model with proprioception
ROBOT_STATE_PARAMS: list[ParamSpec] = [
    ParamSpec("joint_state_slop_s", 0.1, "max |stamp(joint_states) - stamp(image)|", 0.0, 10.0),
] + [EXECUTOR_SPEC[n] for n in ("base_frame", "use_tf", "camera_to_base.translation",
                                "camera_to_base.rotation_xyzw", "robot_description_file", "robot_description_topic",
                                "ee_link", "joint_names",
                                "gripper_joint_names", "gripper_open_position", "gripper_closed_position")]
POLICY_PARAMS += ROBOT_STATE_PARAMS + [EXECUTOR_SPEC["camera_pose_topic"]]

#: sim_node's table as (name, default, description): sim_node declares these untyped, as given
SIM_PARAMS: list[tuple[str, Any, str]] = [
    ("sim", "mujoco", "simulator: mujoco (our Panda table-top scene) | robosuite:<Task>[:<Arm>] (robosuite:Lift, robosuite:Lift:UR5e)"),
    ("robot", "sim_panda", "robot config name (only sim_panda, or a robosuite arm, is simulated)"),
    ("task", "pick", "default task family of /sim/reset with an empty task: pick | put"),
    ("seed", 0, "seed of the first episode (reset at start)"),
    ("width", 224, "image width (px)"),
    ("height", 224, "image height (px)"),
    ("camera_pose", "", "the camera's optical frame in base_frame, 'x,y,z,qx,qy,qz,qw' (the convention of "
                        "camera_to_base and /sim/camera_pose), fixed across episodes; empty = the nominal pose "
                        "(mujoco: jittered per episode; robosuite: where our scene's camera sits)"),
    ("camera_fov_deg", 0.0, "the camera's vertical field of view (deg); 0 = the scene's (50)"),
    ("sim_camera", "", "robosuite: render this camera of robosuite's model as robosuite has it (agentview, "
                       "frontview, sideview, birdview, ...; not with camera_pose / camera_fov_deg); empty = "
                       "agentview moved to where our scene's camera sits. mujoco: empty (its one camera)"),
    ("scene_look", "", "mujoco: lights and table color, 'light=0.4,light_color=1:0.75:0.5,light_azimuth=-90,"
                       "light_elevation=30,table=0.9:0.9:0.9' (posevla_core/sim/mujoco/look.py); empty = as trained"),
    ("depth_noise", "", "mujoco: a depth sensor's faults in every frame, realsense | heavy | field=value,... "
                        "(posevla_core/sim/mujoco/options.py); empty = the clean depth"),
    ("objects", 0, "mujoco: objects on the table per episode, 1-8 (the episode as drawn, distractors added "
                   "or dropped); 0 = as drawn (3-4)"),
    ("object_scale", 1.0, "mujoco: size factor of the cubes and cylinders, 0.5-1.4; 1 = as trained (4.5 cm)"),
    ("image_rate_hz", 10.0, "camera rate (sim time)"),
    ("joint_state_rate_hz", 50.0, "joint state rate (sim time)"),
    ("real_time_factor", 1.0, "sim seconds per wall second"),
    ("physics_chunk_s", 0.01, "sim time advanced per physics chunk (and /clock message)"),
    ("base_frame", "base_link", "robot base frame"),
    ("camera_frame", "camera_color_optical_frame", "optical frame of the images"),
    ("camera_ns", "/camera", "namespace of the camera topics"),
    ("wrist_camera_ns", "", "namespace of the wrist camera's topics (e.g. /wrist_camera); empty = none"),
    ("wrist_camera_frame", "wrist_camera_color_optical_frame", "optical frame of the wrist camera's images"),
    ("mode", "sim", "sim | robot (a hardware stand-in: no /clock, sim services or camera pose)"),
    ("publish_instruction", False, "publish the episode instruction on /posevla/instruction at every reset"),
    ("hold_on_success", False, "at the episode's first success call /posevla/stop and /posevla/pause "
                               "(the robot holds, the policy stops), as the evaluator ends an episode"),
    ("exit_on_success", False, "end the node (and an in-process graph) at the episode's first success"),
    ("arm_topic", "/arm_controller/joint_trajectory", "arm JointTrajectory topic"),
    ("gripper_topic", "/gripper_controller/joint_trajectory", "gripper JointTrajectory topic"),
]

RECORDER_PARAMS: list[ParamSpec] = [
    ParamSpec("root", "data/demos", "dataset directory (LeRobot v3.0); created if absent", read_only=True),
    ParamSpec("repo_id", "posevla/demos", "LeRobot repo_id stored in the dataset", read_only=True),
    ParamSpec("fps", 10.0, "recorded frames per second (subsampled by image stamp)", 0.1, 200.0,
                read_only=True),
    ParamSpec("use_depth", True, "record the aligned depth image"),
    ParamSpec("sync_slop_s", 0.05, "max stamp spread of RGB / depth / CameraInfo", 0.0, 10.0),
    ParamSpec("instruction", "", "instruction when none came on /posevla/instruction"),
    ParamSpec("camera_pose_topic", "/sim/camera_pose",
                "geometry_msgs/PoseStamped of the camera optical frame in base_frame (sim); "
                "empty = tf2 / camera_to_base.* params (real arm)"),
    ParamSpec("max_episode_s", 0.0, "auto-stop (save) an episode after this long; 0 = never", 0.0, 1e6),
    ParamSpec("mcap", False, "also write the raw topics of each episode as MCAP (mcap/ subdir)"),
    ParamSpec("status_period_s", 1.0, "period of /recorder/status", 0.05, 60.0),
    ParamSpec("max_pending_frames", 30, "frames waiting for the writer before new ones are dropped",
                1, 10000),
] + ROBOT_STATE_PARAMS

EVALUATOR_PARAMS: list[ParamSpec] = [
    ParamSpec("task", "pick", "task family passed to the reset service (pick, put, ...)"),
    ParamSpec("instruction", "", "instruction when the reset does not give one (real arm)"),
    ParamSpec("episodes", 10, "number of episodes (0: absent-object episodes only)", 0, 100000),
    ParamSpec("seed", 1000, "seed of the first episode (episode i uses seed + i)", 0, 2**31 - 1),
    ParamSpec("timeout_s", 30.0, "episode timeout, node clock (sim time in sim)", 0.1, 1e5),
    ParamSpec("settle_s", 0.5, "wait after the reset before releasing the robot", 0.0, 60.0),
    ParamSpec("out", "runs/eval", "results directory (summary.json, results.jsonl, report.html)"),
    ParamSpec("checkpoint", "", "checkpoint evaluated (only written into the summary)"),
    ParamSpec("reset_service", "/sim/reset", "ResetEpisode service; '' = the operator resets the scene "
                "and says ready (/evaluator/ready, or Enter with keyboard)"),
    ParamSpec("success_service", "/sim/success", "Trigger success predicate; '' = the operator marks "
                "(/evaluator/success | failure, or keys y / b)"),
    ParamSpec("success_poll_hz", 2.0, "success checks per second", 0.1, 100.0),
    ParamSpec("instruction_period_s", 1.0, "re-publish the instruction this often", 0.05, 60.0),
    ParamSpec("record", True, "record every rollout through the recorder services"),
    ParamSpec("recorder_prefix", "/recorder", "recorder services <prefix>/start|save|discard"),
    ParamSpec("stop_service", "/posevla/stop", "holds the robot between episodes ('' = none)"),
    ParamSpec("pause_service", "/posevla/pause", "pauses the policy between episodes ('' = none)"),
    ParamSpec("resume_service", "/posevla/resume", "releases the robot + policy ('' = none)"),
    ParamSpec("service_timeout_s", 30.0, "wall-clock wait for a service (and its discovery)", 0.1, 3600.0),
    ParamSpec("max_wall_factor", 30.0, "an episode also ends after timeout_s * this in wall time "
                "(guards against a stalled /clock)", 1.0, 1e4),
    ParamSpec("frame_period_s", 0.5, "report frames (GIF, thumbnails) every this many seconds", 0.01, 60.0),
    ParamSpec("keyboard", False, "operator keys in this terminal (Enter ready, y success, b failure, q quit)"),
    ParamSpec("keep_failures", True, "record failed rollouts too (false: discard them)"),
    ParamSpec("target_successes", 0, "> 0: stop after this many successes (episodes = max attempts)",
                0, 100000),
    ParamSpec("absent_episodes", 0, "sim: then this many episodes whose instruction names an object not in the "
                "scene (seeds after the others); right = every prediction object_found false, no motion", 0, 100000),
    ParamSpec("absent_predictions", 3, "an absent episode watches this many predictions", 1, 1000),
    ParamSpec("absent_linger_s", 1.0, "... and this long after them (node clock) for a motion", 0.0, 60.0),
    ParamSpec("motion_tol_rad", 1e-3, "an arm joint moving more than this (rad) in an absent episode is a motion",
                0.0, 1.0),
    ParamSpec("prediction_topic", TOPIC_PREDICTION, "PosePrediction topic watched in absent episodes"),
] + [EXECUTOR_SPEC[n] for n in ("robot_description_file", "ee_link", "joint_names", "gripper_joint_names",
                                  "gripper_open_position", "gripper_closed_position", "controller_topic",
                                  "gripper_topic")]

TELEOP_PARAMS: list[ParamSpec] = [
    ParamSpec("mode", "keyboard", "keyboard | joy | leader | scripted | none", read_only=True),
    ParamSpec("rate_hz", 10.0, "command rate of joy / leader modes", 0.5, 200.0),
    ParamSpec("command_dt", 0.3, "min duration of one teleop motion segment (s)", 0.01, 10.0),
    ParamSpec("max_step_m", 0.05, "max target translation per command (m)", 0.001, 1.0),
    ParamSpec("max_step_rad", 0.3, "max target rotation per command (rad)", 0.001, 3.2),
    ParamSpec("resync_after_s", 1.0, "idle time after which the target snaps to the measured pose", 0.0, 1e4),
    ParamSpec("episode_services", "recorder", "where episode keys go: recorder (/recorder/start|stop|discard) "
                "| evaluator (/evaluator/ready|success|failure|abort) | none", read_only=True),
    ParamSpec("keyboard.linear_step", 0.01, "m per key press", 0.0001, 0.2),
    ParamSpec("keyboard.angular_step", 0.05, "rad per key press", 0.0001, 1.0),
    ParamSpec("joy.topic", "/joy", "sensor_msgs/Joy topic"),
    ParamSpec("joy.axes", [0, 1, 2, 3, 4, 5], "Joy axis index for [x, y, z, roll, pitch, yaw] (-1 unused)"),
    ParamSpec("joy.signs", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "sign per command axis"),
    ParamSpec("joy.max_linear_speed", 0.1, "m/s at full deflection", 0.0, 2.0),
    ParamSpec("joy.max_angular_speed", 0.6, "rad/s at full deflection", 0.0, 6.0),
    ParamSpec("joy.deadzone", 0.1, "axis dead zone", 0.0, 0.99),
    ParamSpec("joy.button_gripper", 0, "button toggling the gripper (-1 none)", -1, 128),
    ParamSpec("joy.button_start", -1, "button starting an episode (-1 none)", -1, 128),
    ParamSpec("joy.button_stop", -1, "button saving the episode (-1 none)", -1, 128),
    ParamSpec("joy.button_discard", 1, "button discarding the episode (-1 none)", -1, 128),
    ParamSpec("leader.topic", "/leader/joint_states", "leader arm sensor_msgs/JointState topic"),
    ParamSpec("leader.joint_names", [""], "leader joints driving joint_names in order ([''] = same names)"),
    ParamSpec("leader.signs", [0.0], "sign per leader joint ([0.0] = all +1)"),
    ParamSpec("leader.offsets", [0.0], "offset per leader joint (rad) ([0.0] = none)"),
    ParamSpec("leader.gripper_joint", "", "leader joint driving the gripper ('' = keys/buttons)"),
    ParamSpec("leader.gripper_closed", 0.0, "leader gripper joint value when closed"),
    ParamSpec("leader.gripper_open", 0.04, "leader gripper joint value when open"),
] + [s for s in EXECUTOR_PARAMS if s.name not in ("policy_resume_service", "max_prediction_age_s")]

#: every node's declared parameters, by node name (posevla_ros.nodes.NODE_NAMES)
NODE_PARAMS: dict[str, list[ParamSpec]] = {
    "policy_node": POLICY_PARAMS, "executor_node": EXECUTOR_PARAMS,
    "sim_node": [ParamSpec(n, d, desc) for n, d, desc in SIM_PARAMS], "recorder_node": RECORDER_PARAMS,
    "evaluator_node": EVALUATOR_PARAMS, "teleop_node": TELEOP_PARAMS}


def _descriptor(spec: ParamSpec):
    """Description, read-only flag and range for ``ros2 param describe``. Typing is dynamic:
    rclpy types an empty list as BYTE_ARRAY (and rcl an empty YAML list as NOT_SET), which a
    statically typed string-array parameter refuses; ``read_all`` checks the types instead."""
    # ROS: graphs and the CLI read these tables without rclpy
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    d = ParameterDescriptor(description=spec.description, read_only=spec.read_only, dynamic_typing=True)
    if spec.lo is not None and isinstance(spec.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.lo), to_value=float(spec.hi))]
    elif spec.lo is not None and isinstance(spec.default, int) and not isinstance(spec.default, bool):
        d.integer_range = [IntegerRange(from_value=int(spec.lo), to_value=int(spec.hi), step=1)]
    return d


def declare_all(node, specs: list[ParamSpec]) -> None:
    """Declare every parameter of ``specs`` on ``node`` with its descriptor; an override that
    rclpy refuses (out of range) becomes a one-line ConfigError."""
    # ROS: graphs and the CLI read these tables without rclpy
    from rclpy.exceptions import InvalidParameterValueException

    for s in specs:
        try:
            node.declare_parameter(s.name, s.default, _descriptor(s))
        except InvalidParameterValueException as e:   # say it the way read_all would
            given = getattr(node, "_parameter_overrides", {}).get(s.name)
            try:
                check_value(s, given.value if given is not None else None)
            except ConfigError as ce:
                raise ConfigError(f"{node.get_name()}: {ce}") from None
            raise ConfigError(f"{node.get_name()}: parameter {s.name}: {e}".replace("\n", " ")) from None


# parameters rclpy itself declares or reads on every node
_RCLPY_PARAMS = ("use_sim_time", "start_type_description_service", "start_parameter_event_publisher")


def read_all(node, specs: list[ParamSpec]) -> dict[str, Any]:
    """Current values of ``specs`` as a plain dict, each checked against its spec
    (``check_value``; workspace min < max). An override (``-p``, ``--params-file``, launch
    ``parameters``) that names no declared parameter is an error, with a "did you mean"."""
    where = node.get_name()
    declared = set(getattr(node, "_parameters", {}))
    for name in getattr(node, "_parameter_overrides", {}):
        if name not in declared and name not in _RCLPY_PARAMS and not name.startswith("qos_overrides."):
            raise unknown_key_error(name, [s.name for s in specs], where)
    out = {}
    for s in specs:
        v = node.get_parameter(s.name).value
        v = list(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else v
        try:
            out[s.name] = check_value(s, v)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    check_min_max(out, where)
    return out


def defaults(specs: list[ParamSpec]) -> dict[str, Any]:
    return {s.name: s.default for s in specs}


def coerce(value: Any, default: Any) -> Any:
    """``value`` (from YAML or a ``-p name=value`` string) typed like ``default``; raises
    ConfigError for a value of another type ("maybe" for a bool, "1.5 rad" for a float)."""
    return check_value(ParamSpec("value", default, ""), value)


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


def camera_remappings(camera_ns: str) -> list[tuple[str, str]]:
    """Launch remappings from the nodes' /camera/... topics to a camera driver's namespace
    (RealSense-style names: color/image_raw, color/camera_info, aligned_depth_to_color/image_raw)."""
    ns = "/" + camera_ns.strip("/") if camera_ns.strip("/") else ""
    return [(camera_topics()[k], f"{ns}/{CAMERA_STREAMS[k]}") for k in ("rgb", "info", "depth")]


def config_path(name: str) -> Path:
    """config/<name> (e.g. 'policy.yaml', 'robots/sim_panda.yaml')."""
    return share_dir() / "config" / name


def robot_config_path(robot: str) -> Path:
    """config/robots/<robot>.yaml, or ``robot`` itself when it is a YAML file path."""
    p = Path(robot).expanduser()
    if p.suffix in (".yaml", ".yml"):
        if p.is_file():
            return p.resolve()
        raise FileNotFoundError(f"robot config {p} not found")
    path = config_path(f"robots/{robot}.yaml")
    if not path.is_file():
        known = sorted(x.stem for x in config_path("robots").glob("*.yaml"))
        raise FileNotFoundError(f"robot config {path} not found (known robots: {known})")
    return path


def load_robot_config(robot: str) -> dict[str, Any]:
    """The robot config YAML as a dict (a ROS params file is unwrapped to its parameters)."""
    path = robot_config_path(robot)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"robot config {path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if isinstance(data, dict) and len(data) == 1:
        only = next(iter(data.values()))
        if isinstance(only, dict) and "ros__parameters" in only:
            data = only["ros__parameters"]
    if not isinstance(data, dict):
        raise ConfigError(f"robot config {path}: expected a mapping of keys to values, got {data!r}")
    return data


# robot config aliases -> executor parameter. Executor parameter names (dotted for nested
# sections: camera_to_base.translation, workspace.min) are accepted as they are, and the
# sections ``limits``, ``gripper`` and ``controllers`` only group keys (limits.max_joint_jump).
_ROBOT_TO_EXECUTOR = {
    "urdf": "robot_description_file",
    "arm_joint_names": "joint_names",
    "finger_joint_names": "gripper_joint_names",
    "arm_controller_topic": "controller_topic",
    "gripper_controller_topic": "gripper_topic",
}
_ROBOT_SECTIONS = ("limits", "gripper", "controllers")
_NOT_FROM_ROBOT = {"policy_resume_service", "log_throttle_s"}   # node settings, not robot facts


def _robot_key(key: str, specs: dict) -> str | None:
    section, _, tail = key.partition(".")
    if section in _ROBOT_SECTIONS and tail and "." not in tail:
        key = tail
    name = _ROBOT_TO_EXECUTOR.get(key, key)
    return name if name in specs and name not in _NOT_FROM_ROBOT else None


def robot_executor_params(robot: str, check_urdf: bool = True) -> dict[str, Any]:
    """Executor parameters from config/robots/<robot>.yaml (dotted names, typed like the
    declared ones). Strict, because this is safety configuration: an unknown key (with a
    "did you mean"), a value of the wrong type or list length, a workspace min >= max, or
    (``check_urdf``) a joint or ``ee_link`` missing from the URDF raises a one-line
    ConfigError. A relative ``robot_description_file`` is relative to the YAML file."""
    path = robot_config_path(robot)
    where = f"robot config {path}"
    specs = {s.name: s for s in EXECUTOR_PARAMS}
    out: dict[str, Any] = {}
    for key, value in flatten(load_robot_config(robot)).items():
        name = _robot_key(key, specs)
        if name is None:
            known = [k for k in specs if k not in _NOT_FROM_ROBOT] + list(_ROBOT_TO_EXECUTOR)
            raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, known)}")
        try:
            out[name] = check_value(specs[name], value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    desc = out.get("robot_description_file")
    if desc and "://" not in desc and not Path(desc).expanduser().is_absolute():
        out["robot_description_file"] = str((path.parent / desc).resolve())
    merged = dict(defaults(EXECUTOR_PARAMS), **out)
    check_min_max(merged, where)
    if check_urdf:
        check_robot_description(merged, where)
    return out


def check_robot_description(p: dict[str, Any], where: str = "executor_node") -> None:
    """``joint_names``, ``gripper_joint_names`` and ``ee_link`` of the executor params ``p``
    must exist in the URDF ``robot_description_file`` (parsed as XML; no kinematics built).
    An empty ``robot_description_file`` means the URDF comes from ``robot_description_topic``
    at run time: it is checked when it arrives (``check_urdf_text``)."""

    if not p["robot_description_file"]:
        return
    try:
        urdf = resolve_robot_description(p["robot_description_file"])
        root = ET.parse(urdf).getroot()
    except (FileNotFoundError, ValueError, ET.ParseError) as e:
        raise ConfigError(f"{where}: robot_description_file {p['robot_description_file']!r}: {e}") from None
    _check_urdf_names(p, root, str(urdf), where)


def check_urdf_text(p: dict[str, Any], text: str, source: str, where: str = "executor_node") -> None:
    """The check of ``check_robot_description`` on URDF text (a /robot_description message)."""

    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ConfigError(f"{where}: {source}: not a URDF ({e})") from None
    if root.tag != "robot":
        raise ConfigError(f"{where}: {source}: not a URDF (root element <{root.tag}>, expected <robot>)")
    _check_urdf_names(p, root, source, where)


def _check_urdf_names(p: dict[str, Any], root, urdf: str, where: str) -> None:
    joints = [j.get("name") for j in root.findall("joint")]
    frames = [x.get("name") for x in root.findall("link")] + joints
    for key in ("joint_names", "gripper_joint_names"):
        for j in p[key]:
            if j not in joints:
                raise ConfigError(f"{where}: {key}: joint {j!r} is not in {urdf}{did_you_mean(j, joints)}")
    if len(set(p["joint_names"])) != len(p["joint_names"]) or not p["joint_names"]:
        raise ConfigError(f"{where}: joint_names must name each arm joint once, got {p['joint_names']}")
    if p["ee_link"] not in frames:
        raise ConfigError(f"{where}: ee_link {p['ee_link']!r} is not a link of {urdf}"
                          f"{did_you_mean(p['ee_link'], frames)}")


def typed_overrides(specs: list[ParamSpec], values: dict[str, Any], strict: bool = False) -> dict[str, Any]:
    """Keep the entries of ``values`` that name a parameter of ``specs``, typed like it."""
    by_name = {s.name: s for s in specs}
    out = {}
    for k, v in values.items():
        if k in by_name:
            out[k] = check_value(by_name[k], v)
        elif k == "use_sim_time":
            out[k] = coerce(v, False)
        elif strict:
            raise KeyError(f"unknown parameter {k!r}{did_you_mean(k, by_name)}")
    return out
