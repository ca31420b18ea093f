"""`posevla calibrate`: hand-eye calibration of a robot's camera over ROS topics.

Why one module: The whole `posevla calibrate` session (config, ROS listener, arm motion, solve,
YAML write) reads top to bottom.

    posevla calibrate --robot sim_panda --mode eye-to-hand --poses 12 --sim     # MuJoCo, arm moved for you
    posevla calibrate --robot myarm --mode eye-to-hand --poses 15           # real arm: you move it

It listens to ``<camera_ns>/color/image_raw`` + ``<camera_ns>/color/camera_info`` and
``/joint_states``, collects one view per arm pose (the image, the intrinsics and the
gripper pose from forward kinematics of the measured joints), solves with
posevla_core.calibration.hand_eye (ChArUco board, cv2.calibrateHandEye), prints the residual
report, writes ``camera_to_base`` into a copy of the robot YAML (or the YAML itself with
``--write``) and prints the ``static_transform_publisher`` command.

Who moves the arm:
- ``--sim``: this command starts the MuJoCo sim (sim_node, in this process) with a
  ChArUco plate in the scene and sends the arm through planned poses as
  JointTrajectory messages on the robot's ``controller_topic``.
- a real robot: the operator moves the arm (teach pendant, hand guiding, teleop) and
  presses Enter at each pose. This command never moves a real arm: it does not know
  where the board or the camera is, so it cannot plan poses that are both safe and
  useful ("unsure" means "do not move").
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from tqdm.auto import tqdm
from trajectory_msgs.msg import JointTrajectory

from posevla_core.calibration.board import CalibrationError, CharucoBoardSpec, detect_board
from posevla_core.calibration.hand_eye import CalibrationView, solve_hand_eye
from posevla_core.calibration.pose_plan import plan_arm_poses
from posevla_core.geometry import se3
from posevla_core.geometry.kinematics import RobotKinematics
from posevla_core.geometry.trajectory import time_parameterize
from posevla_core.sim.mujoco.calibration_rig import sim_pose_plan
from posevla_ros.launching.runner import close_graph, spin_nodes
from posevla_ros.params import EXECUTOR_PARAMS, defaults, robot_config_path, robot_executor_params
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.robot_description import RobotModel
from posevla_ros.ros_io.topics import TOPIC_JOINT_STATES


@dataclass
class CalibrateConfig:
    """Every knob of `posevla calibrate` (the CLI flags map 1:1)."""

    robot: str = "sim_panda"                      # config/robots/<robot>.yaml or a YAML path
    mode: str = "eye-to-hand"                 # eye-to-hand (fixed camera) | eye-in-hand (wrist camera)
    poses: int = 12                           # views to collect
    sim: bool = False                         # start the MuJoCo sim with a board and move the arm
    board: CharucoBoardSpec = field(default_factory=CharucoBoardSpec)
    out: str = "runs/calibrate"               # report, calibration.json, the YAML copy
    write: bool = False                       # edit the robot YAML in place
    camera_ns: str = "/camera"
    gripper_link: str = ""                    # eye-in-hand result frame; "" = the robot's ee_link
    seed: int = 0                             # sim episode + pose sampling
    settle_timeout_s: float = 10.0            # robot-clock s after a trajectory's end to wait for the arm to stop
    topic_timeout_s: float = 20.0             # first image / joint state

    def __post_init__(self) -> None:
        if self.mode not in ("eye-to-hand", "eye-in-hand"):
            raise CalibrationError(f"--mode must be eye-to-hand or eye-in-hand, got {self.mode!r}")
        if self.poses < 3:
            raise CalibrationError(f"--poses must be >= 3 (hand-eye needs 3 views at least; 10-20 is usual), "
                                   f"got {self.poses}")


# ----------------------------------------------------------------------------- YAML out
def write_camera_to_base(src: Path, dst: Path, T: np.ndarray, note: str) -> None:
    """Copy the robot YAML ``src`` to ``dst`` with its ``camera_to_base`` block replaced
    (appended if absent). A text edit on purpose: comments and the order of every other
    key survive. The result is parsed back and checked."""

    pos, quat = se3.split_T(T)
    block = [f"camera_to_base:                             # {note}",
             f"  translation: [{', '.join(f'{x:.6f}' for x in pos)}]",
             f"  rotation_xyzw: [{', '.join(f'{x:.6f}' for x in quat)}]"]
    lines = src.read_text().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("camera_to_base:")), None)
    if start is None:
        lines += block
    else:
        end = start + 1
        while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
            end += 1
        while end > start + 1 and not lines[end - 1].strip():   # keep blank lines after the block
            end -= 1
        lines[start:end] = block
    text = "\n".join(lines) + "\n"
    before, after = yaml.safe_load(src.read_text()) or {}, yaml.safe_load(text)
    got = after.get("camera_to_base", {})
    if not (np.allclose(got.get("translation"), np.round(pos, 6)) and np.allclose(got.get("rotation_xyzw"),
                                                                                np.round(quat, 6))):
        raise CalibrationError(f"could not write camera_to_base into {src}: unexpected layout of that block")
    if {k: v for k, v in before.items() if k != "camera_to_base"} != \
            {k: v for k, v in after.items() if k != "camera_to_base"}:
        raise CalibrationError(f"writing camera_to_base would change other keys of {src}; edit it by hand")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(dst)


def static_transform_command(T: np.ndarray, frame_id: str, child_frame_id: str) -> str:
    """The tf2_ros command that publishes ``T`` (child in frame_id) as a static transform."""
    (x, y, z), (qx, qy, qz, qw) = se3.split_T(T)
    return (f"ros2 run tf2_ros static_transform_publisher --x {x:.6f} --y {y:.6f} --z {z:.6f} "
            f"--qx {qx:.6f} --qy {qy:.6f} --qz {qz:.6f} --qw {qw:.6f} "
            f"--frame-id {frame_id} --child-frame-id {child_frame_id}")


# ----------------------------------------------------------------------------- ROS side
class CalibrationListener:
    """The node's subscriptions and the controller publisher; callbacks only store the
    latest messages (the main thread waits on them)."""

    def __init__(self, node, camera_ns: str, controller_topic: str) -> None:
        from sensor_msgs.msg import CameraInfo, Image, JointState  # ROS messages: optional, heavy

        ns = "/" + camera_ns.strip("/") if camera_ns.strip("/") else ""
        self.node = node
        self.cond = threading.Condition()
        self.image = self.info = self.joints = None
        node.create_subscription(Image, f"{ns}/color/image_raw", lambda m: self._set("image", m), 2)
        node.create_subscription(CameraInfo, f"{ns}/color/camera_info", lambda m: self._set("info", m), 2)
        node.create_subscription(JointState, TOPIC_JOINT_STATES, lambda m: self._set("joints", m), 20)
        self.truth = None
        try:   # the sim's true camera pose (for the --sim comparison only)

            node.create_subscription(PoseStamped, "/sim/camera_pose", lambda m: self._set("truth", m), 2)
        except ImportError:
            pass
        self.pub = node.create_publisher(JointTrajectory, controller_topic, 10)

    def _set(self, name: str, msg) -> None:
        with self.cond:
            setattr(self, name, msg)
            self.cond.notify_all()

    def wait_for(self, pred, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CalibrationError(f"no {what} within {timeout:.0f} s")
                self.cond.wait(min(left, 0.2))


def _stamp(msg) -> float:
    return conv.stamp_to_sec(msg.header.stamp)


def _joint_vector(msg, names: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """The arm's positions and (when the message has them all) velocities from a JointState."""
    q = conv.joint_vector(msg, names)
    if q is None:
        missing = [n for n in names if n not in msg.name]
        raise CalibrationError(f"/joint_states lacks joints {missing} of the robot config (has {list(msg.name)})"
                               if missing else f"/joint_states has non-finite positions of joints {names}")
    return q, conv.joint_vector(msg, names, "velocity")


def _move(lst: CalibrationListener, names, q_now, q_target, limits: dict, kin) -> float:
    """Send one JointTrajectory to ``q_target``, timed within the robot's limits; returns
    the /joint_states-clock time at which it ends."""
    vmax = kin.velocity_limits * float(limits.get("velocity_scale", 0.3))
    amax = float(limits.get("max_joint_acceleration", 2.0))
    t_end = float(time_parameterize(np.stack([q_now, q_target]), vmax, amax, min_dt=1.0)[-1])
    t0 = _stamp(lst.joints)
    lst.pub.publish(conv.joint_trajectory_msg(names, np.asarray([q_target]), np.array([t_end])))
    return t0 + t_end


def _wait_still(lst: CalibrationListener, names, not_before: float, cfg) -> None:
    """Wait until the joints stop (velocities ~0 for 0.2 s) at or after ``not_before``. Time
    is the /joint_states stamps' clock (sim time in the sim, which may run slower than the
    wall): give up ``settle_timeout_s`` later in that clock, or when joint states stop."""
    state = {"still_since": None, "gave_up": False, "seen": _stamp(lst.joints), "wall": time.monotonic()}

    def settled() -> bool:
        t = _stamp(lst.joints)
        if t > state["seen"]:
            state["seen"], state["wall"] = t, time.monotonic()
        elif time.monotonic() - state["wall"] > cfg.topic_timeout_s:
            raise CalibrationError(f"/joint_states stopped for {cfg.topic_timeout_s:.0f} s")
        if t < not_before:
            return False
        if t > not_before + cfg.settle_timeout_s:
            state["gave_up"] = True
            return True
        _, v = _joint_vector(lst.joints, names)
        if v is not None and np.max(np.abs(v)) > 0.005:
            state["still_since"] = None
            return False
        state["still_since"] = t if state["still_since"] is None else state["still_since"]
        return t - state["still_since"] >= 0.2
    lst.wait_for(settled, float("inf"), "settled arm")
    if state["gave_up"]:
        lst.node.get_logger().warn(f"arm still moving after {cfg.settle_timeout_s:.0f} s; using the pose it reached")


def _grab(lst: CalibrationListener, names, kin, after: float, cfg: CalibrateConfig) -> tuple[CalibrationView, dict]:
    """One view: the first image stamped at or after ``after`` (the arm was still then),
    its CameraInfo and the latest joint state -> FK gripper pose + board detection."""
    lst.wait_for(lambda: lst.image is not None and lst.info is not None and _stamp(lst.image) >= after,
                 cfg.topic_timeout_s, f"image on {cfg.camera_ns}/color/image_raw")
    with lst.cond:
        img, info, js, truth = lst.image, lst.info, lst.joints, lst.truth
    q, _ = _joint_vector(js, names)
    rgb = conv.image_to_rgb(img)
    K = conv.camera_info_to_K(info, rgb.shape[1], rgb.shape[0])
    view = CalibrationView(T_base_gripper=kin.fk(q), joints=q)
    extra = {"camera_frame": img.header.frame_id or info.header.frame_id}
    if truth is not None:
        p, o = truth.pose.position, truth.pose.orientation
        extra["T_true"] = se3.make_T([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])
    try:
        view.detection = detect_board(rgb, K, np.asarray(info.d, float), cfg.board)
    except CalibrationError as e:
        view.rejected = str(e)
    return view, extra


def _sim_node(cfg: CalibrateConfig, context):
    """sim_node in this process, its env built with the ChArUco plate, 640x480 images."""
    from rclpy.parameter import Parameter  # rclpy, mujoco: optional, heavy

    # the sim (MuJoCo) and sim_node: only `posevla calibrate --sim` needs them
    from posevla_core.sim.mujoco.env import SimEnv
    from posevla_ros.nodes.sim_node import SimNode

    env = SimEnv(640, 480, calibration=cfg.mode, board=cfg.board)
    params = [Parameter("width", value=640), Parameter("height", value=480), Parameter("seed", value=cfg.seed),
              Parameter("image_rate_hz", value=5.0), Parameter("camera_ns", value=cfg.camera_ns)]
    return SimNode("calibration_sim", env=env, context=context, parameter_overrides=params)


def calibrate_main(cfg: CalibrateConfig, input_fn=input) -> dict:
    """Collect ``cfg.poses`` views, solve, write the results. Returns the summary dict."""
    import rclpy  # rclpy, pinocchio: optional, heavy

    robot_cfg = dict(defaults(EXECUTOR_PARAMS), **robot_executor_params(cfg.robot))   # validated
    missing = [k for k in ("ee_link", "joint_names") if not robot_cfg.get(k)]
    if missing:
        raise CalibrationError(f"robot config {robot_config_path(cfg.robot)} lacks {missing}")
    if cfg.sim and robot_cfg["robot_description_file"] != "posevla://panda":
        raise CalibrationError(f"--sim simulates the Panda only; robot {cfg.robot!r} is "
                               f"{robot_cfg['robot_description_file'] or 'read from ' + robot_cfg['robot_description_topic']}")
    names = list(robot_cfg["joint_names"])
    kin = (RobotKinematics(robot_cfg["robot_description_file"], robot_cfg["ee_link"], names)
           if robot_cfg["robot_description_file"] else None)     # else: /robot_description, below
    base_frame = robot_cfg.get("base_frame", "base_link")
    controller_topic = robot_cfg.get("controller_topic", "/arm_controller/joint_trajectory")
    limits = robot_cfg          # velocity_scale / max_joint_acceleration (flattened from limits:)

    context = rclpy.Context()
    rclpy.init(context=context)
    nodes: list = []
    stop = threading.Event()
    spinner = None
    views: list[CalibrationView] = []
    extras: list[dict] = []
    t_start = time.monotonic()
    try:
        if cfg.sim:
            nodes.append(_sim_node(cfg, context))
        node = Node("posevla_calibrate", context=context)
        nodes.append(node)
        lst = CalibrationListener(node, cfg.camera_ns, controller_topic)
        model = RobotModel(node, robot_cfg, kin)      # the config's URDF file, else /robot_description
        spinner = threading.Thread(target=spin_nodes, args=(nodes, stop.is_set, context), daemon=True)
        spinner.start()
        lst.wait_for(lambda: model.kinematics is not None, cfg.topic_timeout_s, model.source)
        kin = model.kinematics
        gripper_link = cfg.gripper_link or robot_cfg["ee_link"]
        if not kin.model.existFrame(gripper_link):
            raise CalibrationError(f"--gripper-link {gripper_link!r} is not a link of {kin.urdf_path}")
        lst.wait_for(lambda: lst.joints is not None, cfg.topic_timeout_s, "/joint_states")
        lst.wait_for(lambda: lst.image is not None and lst.info is not None, cfg.topic_timeout_s,
                     f"image + camera_info on {cfg.camera_ns}/color/")
        q_now, _ = _joint_vector(lst.joints, names)
        targets = None
        if cfg.sim:
            plan = sim_pose_plan(cfg.mode, kin, q_now)
            with tqdm(total=cfg.poses, desc="planning poses (IK)", unit="pose") as bar:
                targets = plan_arm_poses(kin, plan, cfg.poses, q_now, seed=cfg.seed,
                                         progress=lambda k: bar.update(k - bar.n))
        else:
            print(f"[calibrate] {cfg.mode}: move the arm to {cfg.poses} poses in turn; at each the board "
                  f"must be fully in view, seen from a different direction (tilt 15-40 deg between poses).")
        bar = tqdm(total=cfg.poses, desc="collecting views", unit="view")
        while len(views) < cfg.poses:
            k = len(views)
            if targets is not None:
                t_end = _move(lst, names, q_now, targets[k], limits, kin)
            else:
                bar.clear()
                input_fn(f"[calibrate] pose {k + 1}/{cfg.poses}: move the arm, let it stop, press Enter ")
                t_end = _stamp(lst.joints)
            _wait_still(lst, names, t_end, cfg)
            view, extra = _grab(lst, names, kin, _stamp(lst.joints), cfg)
            q_now = view.joints
            if targets is None and view.detection is None:   # the operator can fix it: ask again
                bar.write(f"[calibrate] {view.rejected}: move the arm so that the whole board is in view")
                continue
            views.append(view)
            extras.append(extra)
            bar.set_postfix_str(f"{view.detection.n_corners} corners" if view.detection else "no board")
            bar.update(1)
        bar.close()
    finally:
        stop.set()
        if spinner is not None:
            spinner.join(timeout=5.0)
        close_graph(nodes, context)

    print("[calibrate] solving (Tsai, Park, Horaud, Andreff, Daniilidis, then least-squares refinement)")
    result = solve_hand_eye(views, cfg.mode)
    print(result.report())
    summary = result.summary()
    summary.update({"robot": cfg.robot, "base_frame": base_frame, "gripper_link": robot_cfg["ee_link"],
                    "board": cfg.board.__dict__, "poses": cfg.poses, "sim": cfg.sim,
                    "seconds": round(time.monotonic() - t_start, 1)})
    camera_frame = next((e["camera_frame"] for e in extras if e.get("camera_frame")), "camera_color_optical_frame")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    X = result.T
    if cfg.sim:
        err = _sim_error(cfg.mode, X, [views[i] for i in result.used], [extras[i] for i in result.used])
        if err:
            summary.update(err)
            print(f"[calibrate] sim ground truth: error {err['sim_error_mm']:.2f} mm, {err['sim_error_deg']:.3f} deg")
    if cfg.mode == "eye-in-hand" and gripper_link != robot_cfg["ee_link"]:
        # express the camera in another link of the hand (e.g. the flange): same joints, rigid offset
        q = views[result.used[0]].joints
        X = se3.inv_T(kin.fk_link(q, gripper_link)) @ kin.fk(q) @ X
        pos, quat = se3.split_T(X)
        summary.update(gripper_link=gripper_link, translation=pos.tolist(), rotation_xyzw=quat.tolist())
    if cfg.mode == "eye-to-hand":
        src = robot_config_path(cfg.robot)
        dst = src if cfg.write else out / src.name
        note = f"optical frame in {base_frame}: hand-eye calibration ({len(result.used)} views, {result.method})"
        write_camera_to_base(src, dst, X, note)
        summary["yaml"] = str(dst)
        print(f"[calibrate] camera_to_base written to {dst}" + ("" if cfg.write else
                                                                 f" (a copy; --write edits {src} in place)"))
        cmd = static_transform_command(X, base_frame, camera_frame)
    else:
        pos, quat = se3.split_T(X)
        print(f"[calibrate] camera optical frame in {summary['gripper_link']}: translation "
              f"{np.round(pos, 6).tolist()} rotation_xyzw {np.round(quat, 6).tolist()}")
        cmd = static_transform_command(X, summary["gripper_link"], camera_frame)
    summary["static_transform_command"] = cmd
    print(f"[calibrate] publish it with:\n  {cmd}")
    (out / "calibration.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "report.txt").write_text(result.report() + "\n")
    print(f"[calibrate] wrote {out / 'calibration.json'} and {out / 'report.txt'}")
    return summary


def _sim_error(mode: str, X: np.ndarray, views: list[CalibrationView], extras: list[dict]) -> dict:
    """Distance of the result from the sim's true camera pose (/sim/camera_pose): the
    camera in base (eye-to-hand) or in the gripper, averaged over the views (eye-in-hand)."""
    truths = []
    for v, e in zip(views, extras):
        if "T_true" in e:
            truths.append(e["T_true"] if mode == "eye-to-hand" else se3.inv_T(v.T_base_gripper) @ e["T_true"])
    if not truths:
        return {}
    T = truths[0] if mode == "eye-to-hand" else truths[len(truths) // 2]
    return {"sim_error_mm": 1000.0 * float(np.linalg.norm(X[:3, 3] - T[:3, 3])),
            "sim_error_deg": float(np.degrees(se3.rotation_angle(X[:3, :3], T[:3, :3])))}


def parse_board(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CalibrationError(f"--board must look like 5x7 (squares across x down), got {text!r}") from None
    return x, y


def add_arguments(k: argparse.ArgumentParser) -> None:
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


def run(a: argparse.Namespace) -> int:
    """The `posevla calibrate` subcommand."""
    try:
        sx, sy = parse_board(a.board)
        board = CharucoBoardSpec(squares_x=sx, squares_y=sy, square_length=a.square, marker_length=a.marker,
                                 dictionary=a.dictionary)
        cfg = CalibrateConfig(robot=a.robot, mode=a.mode, poses=a.poses, sim=a.sim, board=board, out=a.out,
                              write=a.write, camera_ns=a.camera_ns, gripper_link=a.gripper_link, seed=a.seed)
        calibrate_main(cfg)
    except (ValueError, FileNotFoundError) as e:   # CalibrationError is a ValueError
        print(f"posevla calibrate: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("posevla calibrate: interrupted, nothing written", file=sys.stderr)
        return 1
    return 0
