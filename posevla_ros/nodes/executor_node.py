"""executor_node: PosePrediction (camera frame) -> base frame -> safety -> IK -> trajectory.

``planning.ExecutorCore`` (no ROS) does the work for one prediction: object found, staleness,
finiteness, camera->base, workspace box, then ``joint_path.plan_joint_path`` (IK within limits,
joint jumps, FK of every point vs its target <= 5 mm / 3 deg, timing); ``planning.MotionWindow``
says when ``execution_mode: complete`` takes the next prediction. The node only moves data:
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

Empty grasps: while a sent plan holds the gripper closed and, ``empty_grasp_wait_s`` after the
close, the measured finger opening is below ``empty_grasp_opening`` (the fingers met), the
arm is held where it is and the gripper opens (``planning.EmptyGraspWatch``); the next
prediction then starts the reach over. Not in chunk mode.

The robot model (URDF): ``robot_description_file``, else the URDF published on
``robot_description_topic`` (``/robot_description``, transient local, as robot_state_publisher
does; ``robot_description.RobotModel``). Until one that names the configured joints and
``ee_link`` has arrived, every prediction is refused (``no_robot_model``).

Services: ``/posevla/stop`` (hold the measured position, ignore predictions) and
``/posevla/resume`` (accept predictions again; also calls the policy's
``policy_resume_service`` so one call resumes the whole pipeline).
"""
from __future__ import annotations

import sys
import threading

import numpy as np
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from posevla_ros import params
from posevla_ros.logic.chunk_execution import ChunkExecution
from posevla_ros.logic.planning import EmptyGraspWatch, ExecResult, ExecutorCore, MotionWindow
from posevla_ros.logic.workers import KeyedThrottle, LatestWorker
from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.main import run_node
from posevla_ros.ros_io import backends, conversions as conv
from posevla_ros.ros_io.robot_description import RobotModel
from posevla_ros.ros_io.tf import CameraToBase
from posevla_ros.ros_io.topics import TOPIC_JOINT_STATES, TOPIC_PREDICTION

TOPIC_TARGET_POSES = "/posevla/target_poses"
SRV_STOP = "/posevla/stop"
SRV_RESUME = "/posevla/resume"


class ExecutorNode(Node):
    """See the module docstring. ``kinematics``: an already-built RobotKinematics (optional)."""

    def __init__(self, kinematics=None, node_name: str = "executor_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        params.declare_all(self, params.EXECUTOR_PARAMS)
        self.p = params.read_all(self, params.EXECUTOR_PARAMS)
        self._log = KeyedThrottle(self.get_logger(), self.p["log_throttle_s"])
        self.core = ExecutorCore(None, self.p)
        # the URDF: robot_description_file, else /robot_description (robot_state_publisher's)
        self.robot = RobotModel(self, self.p, kinematics, on_ready=self.core.set_kinematics)
        self.core.set_kinematics(self.robot.kinematics)
        self.camera_to_base = CameraToBase.from_params(self, self.p)
        self.backend = backends.make_backend(self, self.p)
        self._q_lock = threading.Lock()
        self._q: np.ndarray | None = None
        self._opening: float | None = None
        self.sent = 0
        self.empty_grasps = 0
        self._send_lock = threading.Lock()      # the worker's plans and the empty-grasp timer's
        self.dry_run_plans = 0
        self.last_result: ExecResult | None = None
        self.motion = MotionWindow()
        # ---- chunk mode (flow-head action chunks, stitched without seams): logic/chunk_execution.py
        self.chunks = None
        if self.p["execution_mode"] == "chunk":
            self.chunks = ChunkExecution(self.core, self.p)
        self.grasp_watch = EmptyGraspWatch(self.p["empty_grasp_opening"] if self.core.has_gripper
                                           and self.chunks is None else 0.0, self.p["empty_grasp_wait_s"])

        self.pub_targets = self.create_publisher(PoseArray, TOPIC_TARGET_POSES, QoSProfile(depth=10))
        self.create_subscription(PosePrediction, TOPIC_PREDICTION, self._on_prediction, QoSProfile(depth=10))
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joint_state, QoSProfile(depth=10))
        if self.core.deadman is not None:
            self.create_subscription(Bool, self.p["deadman_topic"], self._on_deadman, QoSProfile(depth=10))
            self.create_timer(min(0.05, self.p["deadman_timeout_s"] / 4), self._watch_deadman)
        if self.grasp_watch.enabled:
            self.create_timer(0.05, self._watch_grasp)
        self.create_service(Trigger, SRV_STOP, self._on_stop)
        self.create_service(Trigger, SRV_RESUME, self._on_resume)
        self._policy_resume = (self.create_client(Trigger, self.p["policy_resume_service"])
                               if self.p["policy_resume_service"] else None)
        self.worker = LatestWorker(self._process, "posevla-executor",
                                   on_error=lambda e, tb: self._log("error", f"executor error: {e!r}\n{tb}", "error"))
        self.get_logger().info(f"executor_node ready: backend={self.backend.name} "
                               f"({self.backend.transport}), camera->base from {self.camera_to_base.source}, "
                               f"robot model from {self.robot.source}"
                               + (", gripper: none" if not self.core.has_gripper else "")
                               + (", DRY RUN: no motion is sent" if self.p["dry_run"] else "")
                               + (f", deadman on {self.p['deadman_topic']}" if self.core.deadman else ""))

    # callbacks: hand data on
    def _on_prediction(self, msg) -> None:
        self.worker.submit(msg)

    def _on_joint_state(self, msg) -> None:
        q = conv.joint_vector(msg, self.p["joint_names"])
        g = conv.gripper_opening(msg, self.p["gripper_joint_names"], self.p["gripper_open_position"],
                            self.p["gripper_closed_position"])
        with self._q_lock:
            if q is not None:
                self._q = q
            if g is not None:
                self._opening = g

    def _on_deadman(self, msg) -> None:
        self.core.deadman.beat(bool(msg.data))

    def _watch_deadman(self) -> None:
        """Stop a running trajectory as soon as the deadman goes stale or is released."""
        if self.core.deadman.check() is None or not self.motion.take_moving():
            return
        self.backend.hold(self.joint_positions())
        self.get_logger().warn(f"deadman: {self.core.deadman.check()}: holding position")

    def _watch_grasp(self) -> None:
        """An empty close (EmptyGraspWatch): hold the arm, open the gripper."""
        now = self.get_clock().now().nanoseconds * 1e-9
        with self._q_lock:
            opening = self._opening
        if not self.grasp_watch.check(opening, now):
            return
        q = self.joint_positions()
        if (q is None or self.core.gate.stopped or self.p["dry_run"]
                or (self.core.deadman is not None and self.core.deadman.check())):
            return
        plan = self.core.open_gripper_plan(q)
        with self._send_lock:
            self.backend.send(plan)
            self.empty_grasps += 1
            self.motion.start(now, float(plan.times[-1]), float(self.p["settle_time_s"]))
        self.get_logger().warn(f"empty grasp: the gripper closed to {opening:.3f} of its opening (below "
                               f"empty_grasp_opening {self.p['empty_grasp_opening']}): holding the arm, "
                               f"opening the gripper to try again")

    def _on_stop(self, _req, resp):
        self.core.gate.stop()
        self.grasp_watch.clear()
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
        self.core.no_model_reason = self.robot.reason
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
        with self._send_lock:
            self.backend.send(res.plan)
            self.sent += 1
            self.grasp_watch.sent(res.plan, now)
            if res.plan.times is not None and len(res.plan.times):
                self.motion.start(now, float(res.plan.times[-1]), float(self.p["settle_time_s"]))

    def destroy_node(self):
        if hasattr(self, "worker"):      # a constructor that stopped on a config error made none
            self.worker.stop()
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(ExecutorNode, argv)


if __name__ == "__main__":
    sys.exit(main())
