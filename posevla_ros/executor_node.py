"""executor_node: PosePrediction (camera frame) -> base frame -> safety -> IK -> trajectory.

``ExecutorCore`` (no ROS) does the work for one prediction: object found, staleness, finiteness,
camera->base, workspace box, then ``backends.plan_joint_path`` (IK within limits, joint
jumps, FK of every point vs its target <= 5 mm / 3 deg, timing). The node only moves data:
the prediction callback hands the message to a newest-wins worker thread, which looks up
the transform (``tf.CameraToBase``), runs the core, publishes ``/posevla/target_poses`` and
sends the plan through the backend. Every refusal is logged (throttled) with its reason and
sends nothing.

Operator safety: ``dry_run`` plans and publishes ``/posevla/target_poses`` but sends no
motion. With ``deadman_topic`` set (std_msgs/Bool), motion is sent only while a ``true``
heartbeat is fresher than ``deadman_timeout_s``; when it goes stale or turns false while a
trajectory runs, the arm holds its measured position. An arm without a gripper
(``gripper_joint_names: []`` or ``gripper_topic: ""``) gets no gripper commands and no
gripper dwell; the predicted gripper values are ignored.

Services: ``/posevla/stop`` (hold the measured position, ignore predictions) and
``/posevla/resume`` (accept predictions again; also calls the policy's
``policy_resume_service`` so one call resumes the whole pipeline).
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from posevla_ros import backends
from posevla_ros import conversions as conv
from posevla_ros import params as P
from posevla_ros import safety
from posevla_ros.msg import PosePrediction
from posevla_ros.runner import KeyedThrottle, LatestWorker
from posevla_ros.tf import CameraToBase
from posevla_ros.topics import TOPIC_PREDICTION

TOPIC_JOINT_STATES = "/joint_states"
TOPIC_TARGET_POSES = "/posevla/target_poses"
SRV_STOP = "/posevla/stop"
SRV_RESUME = "/posevla/resume"


@dataclass
class ExecResult:
    ok: bool
    reason: str = ""
    key: str = ""                                       # log-throttle group of the reason
    targets: list = field(default_factory=list)         # base-frame 4x4 per waypoint (if transformed)
    plan: backends.JointPlan | None = None


def load_kinematics(p: dict):
    from posevla_core.kinematics import RobotKinematics

    return RobotKinematics(p["robot_description_file"], p["ee_link"], list(p["joint_names"]))


class ExecutorCore:
    """ROS-free executor logic. ``kin``: a RobotKinematics; ``p``: executor params dict."""

    def __init__(self, kin, p: dict) -> None:
        self.kin, self.p = kin, p
        self.limits = safety.SafetyLimits.from_params(p)
        vel = np.asarray(kin.velocity_limits, dtype=float) * float(p["velocity_scale"])
        acc = np.full(len(vel), float(p["max_joint_acceleration"]))
        self.motion = backends.MotionLimits(vel, acc)
        self.gate = safety.SafetyGate()
        self.deadman = safety.Deadman(p["deadman_timeout_s"]) if p.get("deadman_topic") else None
        self.has_gripper = bool(p["gripper_joint_names"]) and bool(p["gripper_topic"])

    def process(self, pred, T_base_cam: np.ndarray | None, q_current, age_s: float,
                tf_reason: str = "", gripper_dwell: bool = True) -> ExecResult:
        """pred: core Prediction in the camera frame; returns targets and (if ok) a plan.
        ``gripper_dwell`` False: one plan point per waypoint (chunk mode times them itself)."""
        checks = [("stopped", self.gate.check()),
                  ("deadman", self.deadman.check() if self.deadman is not None else None),
                  ("object_not_found", safety.check_object_found(pred)),
                  ("stale", safety.check_stale(age_s, self.limits)),
                  ("non_finite", safety.check_prediction_finite(pred)),
                  ("no_transform", (tf_reason or "no camera->base transform") if T_base_cam is None
                   else safety.check_transform(T_base_cam))]
        for key, reason in checks:
            if reason:
                return ExecResult(False, reason, key)
        targets = [T_base_cam @ w.pose.matrix() for w in pred.waypoints]
        reason = safety.check_workspace(np.array([T[:3, 3] for T in targets]), self.limits)
        if reason:
            return ExecResult(False, reason, "workspace", targets)
        if q_current is None:
            return ExecResult(False, f"no joint state yet for {list(self.p['joint_names'])} "
                                     f"(subscribe {TOPIC_JOINT_STATES})", "no_joint_states", targets)
        plan = backends.plan_joint_path(self.kin, targets, [w.gripper for w in pred.waypoints],
                                        np.asarray(q_current, dtype=float), self.limits, self.motion,
                                        pred.waypoint_dt, list(self.p["joint_names"]))
        if not plan.ok:
            return ExecResult(False, plan.reason, "plan", targets, plan)
        if self.has_gripper and gripper_dwell:   # no gripper: its predicted values mean nothing, no dwell
            plan = backends.add_gripper_dwell(plan, float(self.p.get("gripper_dwell_s", 0.0)))
        return ExecResult(True, "", "", targets, plan)


class MotionWindow:
    """When the last sent plan runs, shared by three threads under one lock: the worker
    (starts it after a send, asks it in complete mode), the stop / resume services (clear
    it) and the deadman timer (ends it when it holds the arm).

    ``busy`` (complete mode, node clock): from the send to the plan's end + settle time; a
    clock earlier than the send jumped back (sim reset, bag loop) and clears it.
    ``moving`` (monotonic wall time): until the trajectory's last point, for the deadman.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy_since = self._busy_until = -1.0
        self._moving_until = -1.0

    def start(self, now: float, duration_s: float, settle_s: float) -> None:
        with self._lock:
            self._busy_since, self._busy_until = now, now + duration_s + settle_s
            self._moving_until = time.monotonic() + duration_s

    def clear(self) -> None:
        """A stop or resume: the held plan is over."""
        with self._lock:
            self._busy_since = self._busy_until = -1.0

    def busy(self, now: float, stamp_s: float) -> bool:
        """Complete mode: True while the last plan runs or when the image predates its end."""
        with self._lock:
            if self._busy_until <= 0:
                return False
            if now < self._busy_since:
                self._busy_since = self._busy_until = -1.0
                return False
            return now < self._busy_until or stamp_s < self._busy_until

    def take_moving(self) -> bool:
        """True (once) when a trajectory may still be running; the deadman then holds the arm."""
        with self._lock:
            moving, self._moving_until = self._moving_until >= 0, -1.0
            return moving


def joint_state_positions(msg, joint_names) -> np.ndarray | None:
    """Positions of ``joint_names`` from a JointState (None if any is missing / not finite)."""
    idx = {n: i for i, n in enumerate(msg.name)}
    try:
        q = np.array([msg.position[idx[n]] for n in joint_names], dtype=float)
    except (KeyError, IndexError):
        return None
    return q if np.all(np.isfinite(q)) else None


class ExecutorNode(Node):
    """See the module docstring. ``kinematics``: an already-built RobotKinematics (optional)."""

    def __init__(self, kinematics=None, node_name: str = "executor_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        P.declare_all(self, P.EXECUTOR_PARAMS)
        self.p = P.read_all(self, P.EXECUTOR_PARAMS)
        if kinematics is None:
            P.check_robot_description(self.p, self.get_name())   # one clear line, before pinocchio
        self._log = KeyedThrottle(self.get_logger(), self.p["log_throttle_s"])
        self.core = ExecutorCore(kinematics if kinematics is not None else load_kinematics(self.p), self.p)
        self.camera_to_base = CameraToBase.from_params(self, self.p)
        self.backend = backends.make_backend(self, self.p)
        self._q_lock = threading.Lock()
        self._q: np.ndarray | None = None
        self.sent = 0
        self.dry_run_plans = 0
        self.last_result: ExecResult | None = None
        self.motion = MotionWindow()
        # ---- chunk mode (flow-head action chunks, stitched without seams): chunk_executor.py
        self.chunks = None
        if self.p["execution_mode"] == "chunk":
            from posevla_ros.chunk_executor import ChunkExecution

            self.chunks = ChunkExecution(self.core, self.p)

        self.pub_targets = self.create_publisher(PoseArray, TOPIC_TARGET_POSES, QoSProfile(depth=10))
        self.create_subscription(PosePrediction, TOPIC_PREDICTION, self._on_prediction, QoSProfile(depth=10))
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joint_state, QoSProfile(depth=10))
        if self.core.deadman is not None:
            self.create_subscription(Bool, self.p["deadman_topic"], self._on_deadman, QoSProfile(depth=10))
            self.create_timer(min(0.05, self.p["deadman_timeout_s"] / 4), self._watch_deadman)
        self.create_service(Trigger, SRV_STOP, self._on_stop)
        self.create_service(Trigger, SRV_RESUME, self._on_resume)
        self._policy_resume = (self.create_client(Trigger, self.p["policy_resume_service"])
                               if self.p["policy_resume_service"] else None)
        self.worker = LatestWorker(self._process, "posevla-executor",
                                   on_error=lambda e, tb: self._log("error", f"executor error: {e!r}\n{tb}", "error"))
        self.get_logger().info(f"executor_node ready: backend={self.backend.name} "
                               f"({self.backend.transport}), camera->base from {self.camera_to_base.source}"
                               + (", gripper: none" if not self.core.has_gripper else "")
                               + (", DRY RUN: no motion is sent" if self.p["dry_run"] else "")
                               + (f", deadman on {self.p['deadman_topic']}" if self.core.deadman else ""))

    # callbacks: hand data on
    def _on_prediction(self, msg) -> None:
        self.worker.submit(msg)

    def _on_joint_state(self, msg) -> None:
        q = joint_state_positions(msg, self.p["joint_names"])
        if q is not None:
            with self._q_lock:
                self._q = q

    def _on_deadman(self, msg) -> None:
        self.core.deadman.beat(bool(msg.data))

    def _watch_deadman(self) -> None:
        """Stop a running trajectory as soon as the deadman goes stale or is released."""
        if self.core.deadman.check() is None or not self.motion.take_moving():
            return
        self.backend.hold(self.joint_positions())
        self.get_logger().warn(f"deadman: {self.core.deadman.check()}: holding position")

    def _on_stop(self, _req, resp):
        self.core.gate.stop()
        self.backend.hold(self.joint_positions())
        self.motion.clear()
        if self.chunks is not None:
            self.chunks.reset()
        resp.success, resp.message = True, "stopped: holding position, predictions ignored"
        self.get_logger().warn("STOP requested: holding position")
        return resp

    def _on_resume(self, _req, resp):
        self.core.gate.resume()
        self.motion.clear()
        if self.chunks is not None:
            self.chunks.reset()
        if self._policy_resume is not None and self._policy_resume.service_is_ready():
            self._policy_resume.call_async(Trigger.Request())
        resp.success, resp.message = True, "resumed"
        self.get_logger().info("resume requested")
        return resp

    def joint_positions(self) -> np.ndarray | None:
        with self._q_lock:
            return None if self._q is None else self._q.copy()

    # worker thread
    def _process(self, msg) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        if self.p["execution_mode"] == "complete" and self.motion.busy(now, conv.stamp_to_sec(msg.header.stamp)):
            return  # still executing, or the image predates the end of the last motion
        pred = conv.msg_to_prediction(msg)
        age = now - conv.stamp_to_sec(msg.header.stamp)
        if msg.header.frame_id == self.p["base_frame"]:     # base-frame waypoints (a base-frame chunk)
            T, tf_reason = np.eye(4), ""
        else:
            T, tf_reason = self.camera_to_base.lookup(msg.header.frame_id, msg.header.stamp)
        if self.chunks is not None:
            res = self.chunks.process(pred, T, self.joint_positions(), age, tf_reason, now,
                                      conv.stamp_to_sec(msg.header.stamp))
        else:
            res = self.core.process(pred, T, self.joint_positions(), age, tf_reason)
        self.last_result = res
        if res.targets:
            arr = PoseArray()
            arr.header.frame_id = self.p["base_frame"]
            arr.header.stamp = msg.header.stamp
            arr.poses = [conv.matrix_to_pose_msg(T_) for T_ in res.targets]
            self.pub_targets.publish(arr)
        if not res.ok:
            self._log(res.key, f"no motion: {res.reason}")
            return
        if self.core.gate.stopped:  # a stop that came in while planning
            return
        if self.p["dry_run"]:
            self.dry_run_plans += 1
            self._log("dry_run", "dry_run: a plan was made and NOT sent", "info")
            return
        if self.core.deadman is not None and self.core.deadman.check():   # released while planning
            return
        self.backend.send(res.plan)
        self.sent += 1
        if res.plan.times is not None and len(res.plan.times):
            self.motion.start(now, float(res.plan.times[-1]), float(self.p["settle_time_s"]))

    def destroy_node(self):
        self.worker.stop()
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    from posevla_ros.node_main import run_node

    return run_node(ExecutorNode, argv)


if __name__ == "__main__":
    sys.exit(main())
