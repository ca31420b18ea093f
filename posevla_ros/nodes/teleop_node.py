"""teleop_node: drive the arm by hand (keyboard, joystick / SpaceMouse, leader arm) or by the
sim's scripted expert, through the SAME safety checks and controller path as the policy.

Every command becomes a base-frame end-effector target (+ gripper) and goes through
``planning.ExecutorCore.plan_targets`` (workspace box, finite values, IK within joint limits, joint
jumps, FK match, timing) and the executor's backend (``backends.make_backend``:
JointTrajectory topic / FollowJointTrajectory action / MoveIt). A refused target moves
nothing, is logged, and the Cartesian target snaps back to the last accepted one.

Modes (param ``mode``):
- ``keyboard``: keys in this terminal (raw mode, see ``teleop.KEY_HELP``); one key = one step.
- ``joy``: sensor_msgs/Joy on ``joy.topic`` (axis / button mapping in config/teleop.yaml),
  velocities integrated at ``rate_hz``.
- ``leader``: a leader arm's sensor_msgs/JointState on ``leader.topic`` (remap it); the
  follower tracks FK(leader) at ``rate_hz``.
- ``none``: only the Python API (``send_targets``: the sim expert in ``posevla collect --sim
  --teleop scripted``, posevla_ros.logic.teleop_drivers.ExpertDriver).
Episode keys / buttons (start, stop = save, discard, quit) call std_srvs/Trigger services,
chosen by ``episode_services`` (``EPISODE_SERVICES``): the recorder's directly, or the
evaluator's operator services when an evaluator runs the episodes (collect graphs).

The ROS-free parts are posevla_ros.logic.teleop (input mapping) and posevla_ros.logic.teleop_drivers.
"""
from __future__ import annotations

import sys
import threading

import numpy as np
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState, Joy
from std_srvs.srv import Trigger

from posevla_ros import params
from posevla_ros.logic import teleop
from posevla_ros.logic.planning import ExecutorCore
from posevla_ros.logic.teleop_drivers import TeleopCore
from posevla_ros.logic.workers import KeyedThrottle
from posevla_ros.nodes.main import run_node
from posevla_ros.ros_io import backends, conversions as conv
from posevla_ros.ros_io.robot_description import RobotModel
from posevla_ros.ros_io.topics import TOPIC_JOINT_STATES

# episode event -> Trigger service, per ``episode_services``
EPISODE_SERVICES = {
    "recorder": {"start": "/recorder/start", "stop": "/recorder/stop", "discard": "/recorder/discard"},
    "evaluator": {"start": "/evaluator/ready", "stop": "/evaluator/success", "success": "/evaluator/success",
                  "discard": "/evaluator/failure", "failure": "/evaluator/failure", "quit": "/evaluator/abort"},
    "none": {},
}




try:
    from rclpy.node import Node as _RosNode
except ImportError:  # pragma: no cover
    _RosNode = object


class TeleopNode(_RosNode):
    """See the module docstring. ``kinematics``: a prebuilt RobotKinematics (optional)."""

    def __init__(self, kinematics=None, node_name: str = "teleop_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        params.declare_all(self, params.TELEOP_PARAMS)
        self.p = p = params.read_all(self, params.TELEOP_PARAMS)
        p["max_prediction_age_s"] = 0.0          # SafetyLimits reads it; teleop targets have no age
        self._log = KeyedThrottle(self.get_logger(), p["log_throttle_s"])
        executor = ExecutorCore(None, p)
        # the URDF: robot_description_file, else /robot_description; no commands move the arm before it
        self.robot = RobotModel(self, p, kinematics, on_ready=executor.set_kinematics)
        executor.set_kinematics(self.robot.kinematics)
        self.backend = backends.make_backend(self, p)
        self.core = TeleopCore(executor, self.backend.send, lambda q: self.robot.kinematics.fk(q), p["workspace.min"],
                               p["workspace.max"], p["command_dt"], p["max_step_m"], p["max_step_rad"],
                               p["resync_after_s"])
        self._lock = threading.Lock()             # guards self.core
        self._stop = threading.Event()
        self._joy: tuple[list, list] | None = None
        self._leader = None
        self.mode = p["mode"]
        if self.mode not in ("keyboard", "joy", "leader", "scripted", "none"):
            raise ValueError(f"unknown teleop mode {self.mode!r} (keyboard | joy | leader | scripted | none)")
        if p["episode_services"] not in EPISODE_SERVICES:
            raise ValueError(f"episode_services {p['episode_services']!r}: use {' | '.join(EPISODE_SERVICES)}")
        self._episode_clients = {ev: self.create_client(Trigger, name)
                                 for ev, name in EPISODE_SERVICES[p["episode_services"]].items()}
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joint_state, QoSProfile(depth=10))
        self._threads: list[threading.Thread] = []
        if self.mode == "keyboard":
            self.keys = teleop.KeyboardMapper(p["keyboard.linear_step"], p["keyboard.angular_step"])
            self._spawn(self._keyboard_loop, "teleop-keys")
            self.get_logger().info(teleop.KEY_HELP)
        elif self.mode == "joy":
            b = {"gripper": p["joy.button_gripper"], "start": p["joy.button_start"],
                 "stop": p["joy.button_stop"], "discard": p["joy.button_discard"]}
            self.joy = teleop.JoyMapper(teleop.JoyConfig(list(p["joy.axes"]), list(p["joy.signs"]), p["joy.max_linear_speed"],
                                               p["joy.max_angular_speed"], p["joy.deadzone"], b))
            self.create_subscription(Joy, p["joy.topic"], self._on_joy, QoSProfile(depth=10))
            self._spawn(self._rate_loop, "teleop-joy")
        elif self.mode == "leader":
            names = [n for n in p["leader.joint_names"] if n] or list(p["joint_names"])
            signs = p["leader.signs"] if any(p["leader.signs"]) else None
            offsets = p["leader.offsets"] if len(p["leader.offsets"]) == len(names) else None
            self.leader = teleop.LeaderMapper(teleop.LeaderConfig(names, signs, offsets, p["leader.gripper_joint"],
                                                        p["leader.gripper_closed"], p["leader.gripper_open"]))
            self.create_subscription(JointState, p["leader.topic"], self._on_leader, QoSProfile(depth=10))
            self._spawn(self._rate_loop, "teleop-leader")
        self.get_logger().info(f"teleop_node ready: mode={self.mode}, backend={self.backend.transport}")

    def _spawn(self, fn, name) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # ---- callbacks: hand data on
    def _on_joint_state(self, msg) -> None:
        q = conv.joint_vector(msg, self.p["joint_names"])
        if q is not None and self._have_model():
            with self._lock:
                self.core.set_joint_state(q)

    def _on_joy(self, msg) -> None:
        self._joy = (list(msg.axes), list(msg.buttons))

    def _on_leader(self, msg) -> None:
        self._leader = (list(msg.name), list(msg.position))

    # ---- input threads
    def _keyboard_loop(self) -> None:
        with teleop.RawTerminal() as term:
            while not self._stop.is_set():
                k = term.read_key(0.1)
                if k:
                    self.handle_command(self.keys.map(k))

    def _rate_loop(self) -> None:
        period = 1.0 / self.p["rate_hz"]
        while not self._stop.wait(period):
            if self.mode == "joy" and self._joy is not None:
                axes, buttons = self._joy
                self.handle_command(self.joy.map(axes, buttons, period))
            elif self.mode == "leader" and self._leader is not None:
                q, g, why = self.leader.map(*self._leader)
                if q is None:
                    self._log("leader", why)
                    continue
                if not self._have_model():
                    continue
                with self._lock:
                    res = self.core.follow(q, g)
                if res is not None and not res.ok:
                    self._log(res.key or "refused", f"no motion: {res.reason}")

    def _have_model(self) -> bool:
        """True once the robot model is there; else log why (throttled) and move nothing."""
        if self.robot.kinematics is not None:
            return True
        self._log("no_robot_model", f"no motion: {self.robot.reason}")
        return False

    def handle_command(self, cmd: teleop.TeleopCommand):
        """Apply one command (any thread); episode events go to the episode services."""
        with self._lock:
            res = self.core.apply(cmd) if self._have_model() else None
        if res is not None and not res.ok:
            self._log(res.key or "refused", f"no motion: {res.reason}")
        for ev in cmd.events:
            self._episode_event(ev)
            if ev == "quit":
                self._stop.set()
        return res

    def _episode_event(self, what: str) -> None:
        cli = self._episode_clients.get(what)
        if cli is None:
            return
        if not cli.service_is_ready():
            self.get_logger().warn(f"episode service {cli.srv_name} is not available")
            return
        fut = cli.call_async(Trigger.Request())
        fut.add_done_callback(lambda f: self.get_logger().info(
            f"{cli.srv_name}: {f.result().message if f.result() else f.exception()}"))

    # ---- Python API (scripted mode, tests)
    def send_targets(self, targets, grippers, dt: float | None = None):
        with self._lock:
            return self.core.send_targets(list(targets), list(grippers), dt)

    def joint_positions(self) -> np.ndarray | None:
        with self._lock:
            return None if self.core.q is None else self.core.q.copy()

    @property
    def quit_requested(self) -> bool:
        return self._stop.is_set()

    def destroy_node(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(TeleopNode, argv, done=lambda n: n.quit_requested)


if __name__ == "__main__":
    sys.exit(main())
