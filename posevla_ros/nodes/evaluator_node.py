"""evaluator_node: K closed-loop episodes per task, success rate, report.

The episode loop and media are posevla_ros.logic.evaluation (no ROS), its IO over ROS services and
topics posevla_ros.ros_io.evaluation_io; this node wires them:
- reset: ``/sim/reset`` (posevla_ros/srv/ResetEpisode: seed, task -> instruction); on a real
  arm (``reset_service: ''``) the operator resets the scene and says ready:
  ``/evaluator/ready`` (std_srvs/Trigger) or Enter / n with ``keyboard: true``;
- outcome: ``/sim/success`` (Trigger: success = predicate true), or the operator's mark on a
  real arm: ``/evaluator/success`` / ``/evaluator/failure`` or keys y / b; no mark before
  ``timeout_s`` (node clock: sim time in sim) is a timeout;
- ``/evaluator/abort`` (or key q) ends the run after the current episode; the report is
  written for the episodes done;
- the robot is held between episodes (``/posevla/stop``, ``/posevla/pause``) and released
  with ``/posevla/resume``; the instruction goes out on ``/posevla/instruction``
  (reliable + transient local), every rollout is recorded through ``/recorder/start`` and
  ``/recorder/save`` (typed: the dataset episode index comes back as a field).
Results: ``<out>/results.jsonl``, ``<out>/summary.json``, ``<out>/report.html`` with plots,
thumbnails and a GIF (``posevla_ros.logic.report``), rollouts in ``<out>/rollouts`` (LeRobot).

The graph around it (sim or real) is posevla_ros.launching.graphs ("evaluate", "collect").
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Callable

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from posevla_ros import params
from posevla_ros.logic.evaluation import AbsentWatch, EvaluationLoop, LoopConfig, MediaCollector, finish
from posevla_ros.logic.operator_input import OPERATOR_SERVICES, OperatorInput, read_operator_keys
from posevla_ros.logic.report import absent_line
from posevla_ros.logic.workers import KeyedThrottle
from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.main import run_node
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.evaluation_io import RosEpisodeIO
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION, TOPIC_JOINT_STATES
from posevla_ros.srv import ResetEpisode, SaveEpisode

TOPIC_RGB = "/camera/color/image_raw"
TOPIC_RECORDER_STATUS = "/recorder/status"




try:
    from rclpy.node import Node as _RosNode
except ImportError:  # pragma: no cover
    _RosNode = object


class EvaluatorNode(_RosNode):
    """See the module docstring. The episodes run on a thread started by ``start()`` (or at
    construction with ``autostart``); ``done`` is set when the report is written and
    ``summary`` holds it. The executor spins in another thread (any executor kind)."""

    def __init__(self, node_name: str = "evaluator_node", autostart: bool = True, fk=None,
                 on_hold: Callable[[], None] | None = None, on_release: Callable[[], None] | None = None,
                 **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        params.declare_all(self, params.EVALUATOR_PARAMS)
        self.p = p = params.read_all(self, params.EVALUATOR_PARAMS)
        if fk is None:
            try:
                # kinematics (pinocchio, scipy): only the end-effector plots need it, and only without a given fk
                from posevla_ros.logic.planning import load_kinematics

                fk = load_kinematics(p).fk
            except Exception as e:  # noqa: BLE001 - plots then show joints only
                self.get_logger().warn(f"no kinematics for end-effector plots: {e}")
        self.media = MediaCollector(p["frame_period_s"], fk=fk)
        self.summary: dict | None = None
        self.done = threading.Event()
        self.closing = threading.Event()
        self.operator = OperatorInput()
        self._refusals = KeyedThrottle(self.get_logger(), 5.0)
        self.recorder_instruction = ""                  # written by the executor thread, read by the loop
        self.on_hold, self.on_release = on_hold, on_release      # in-process drivers (scripted expert)
        self._g = ReentrantCallbackGroup()

        def client(srv_type, name):
            return self.create_client(srv_type, name, callback_group=self._g) if name else None

        self.cli_reset = client(ResetEpisode, p["reset_service"])
        self.cli_success = client(Trigger, p["success_service"])
        self.cli_stop = client(Trigger, p["stop_service"])
        self.cli_pause = client(Trigger, p["pause_service"])
        self.cli_resume = client(Trigger, p["resume_service"])
        pre = p["recorder_prefix"].rstrip("/")

        self.cli_rec = {k: client(Trigger, f"{pre}/{k}") for k in ("start", "discard")} if p["record"] else {}
        self.cli_save = client(SaveEpisode, f"{pre}/save") if p["record"] else None
        self.pub_instruction = self.create_publisher(String, TOPIC_INSTRUCTION, INSTRUCTION_QOS)
        self.create_subscription(Image, TOPIC_RGB, self._on_image, qos_profile_sensor_data)
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joint_state, QoSProfile(depth=10))
        self.create_subscription(String, TOPIC_RECORDER_STATUS, self._on_recorder_status, QoSProfile(depth=10))
        self.watcher = AbsentWatch(p["joint_names"], lambda: self.get_clock().now().nanoseconds * 1e-9)
        if p["absent_episodes"]:        # what an absent episode is judged by: predictions, commands, joints

            self.create_subscription(PosePrediction, p["prediction_topic"], self._on_absent_prediction,
                                     QoSProfile(depth=10))
            for topic in {p["controller_topic"], p["gripper_topic"]} - {""}:
                self.create_subscription(JointTrajectory, topic, self.watcher.on_trajectory, QoSProfile(depth=10))
        for what in OPERATOR_SERVICES:
            self.create_service(Trigger, f"/evaluator/{what}", self._operator_srv(what))
        cfg = LoopConfig(task=p["task"], episodes=p["episodes"], seed=p["seed"], timeout_s=p["timeout_s"],
                         settle_s=p["settle_s"], success_poll_hz=p["success_poll_hz"],
                         instruction_period_s=p["instruction_period_s"], record=p["record"],
                         max_wall_factor=p["max_wall_factor"], default_instruction=p["instruction"],
                         keep_failures=p["keep_failures"], target_successes=p["target_successes"],
                         absent_episodes=p["absent_episodes"], absent_predictions=p["absent_predictions"],
                         absent_linger_s=p["absent_linger_s"], motion_tol_rad=p["motion_tol_rad"])
        self.loop = EvaluationLoop(RosEpisodeIO(self), cfg, log=self.get_logger().info)
        self._thread: threading.Thread | None = None
        self.get_logger().info(f"evaluator_node: {cfg.episodes} episodes of {cfg.task!r} from seed {cfg.seed}, "
                               f"timeout {cfg.timeout_s} s, reset via {p['reset_service'] or 'operator'}, "
                               f"success via {p['success_service'] or 'operator'}, out {p['out']}")
        if autostart:
            self.start()

    # ---- callbacks: hand data on
    def _on_image(self, msg) -> None:
        t = conv.stamp_to_sec(msg.header.stamp)
        if not self.media.wants_frame(t):
            return
        try:
            self.media.add_frame(t, conv.image_to_rgb(msg))
        except ValueError:
            pass

    def _on_absent_prediction(self, msg) -> None:
        self.watcher.on_prediction(conv.stamp_to_sec(msg.header.stamp), msg.instruction, msg.object_found)

    def _on_joint_state(self, msg) -> None:
        q = conv.joint_vector(msg, self.p["joint_names"])
        if q is not None:
            self.watcher.on_joints(q)
        if not self.media.active:
            return
        if q is not None:
            g = conv.gripper_opening(msg, self.p["gripper_joint_names"],
                                self.p["gripper_open_position"], self.p["gripper_closed_position"])
            self.media.add_joints(conv.stamp_to_sec(msg.header.stamp), q, g)

    def _on_recorder_status(self, msg) -> None:
        try:
            self.recorder_instruction = json.loads(msg.data).get("last_instruction", "")
        except ValueError:
            pass

    def _operator_srv(self, what: str):
        def handler(_req, resp):
            resp.success, resp.message = self.operator_event(what)
            return resp
        return handler

    def operator_event(self, what: str) -> tuple[bool, str]:
        """ready | success | failure | abort, from a key or a service (any thread). Returns
        (taken, why): "ready" counts only while the loop waits for it, a mark only while an
        episode runs."""
        if what == "ready":
            ok, why = self.operator.set_ready()
        elif what == "abort":
            self.loop.abort()
            ok, why = True, "aborting after the current episode; the report is written"
        else:
            ok, why = self.operator.mark(what)
        if ok:
            self.get_logger().info(f"operator {what}: {why}")
        else:                                   # the caller is told; retries must not flood the log
            self._refusals(f"operator_{what}", f"operator {what} refused: {why}")
        return ok, why

    # ---- run
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="evaluator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self.p["keyboard"]:
                threading.Thread(target=self._keys, name="evaluator-keys", daemon=True).start()
            records = self.loop.run()
            absent = self.loop.absent_summary()
            self.summary = finish(self.p["out"], records, self.p["task"], self.media.media,
                                  checkpoint=self.p["checkpoint"], seed=self.p["seed"],
                                  timeout_s=self.p["timeout_s"], **({"absent": absent} if absent else {}))
            s = self.summary
            self.get_logger().info(f"evaluation done: {s['successes']}/{s['episodes']} "
                                   f"(rate {s['success_rate']:.2f}, Wilson 95% [{s['ci95'][0]:.2f}, "
                                   f"{s['ci95'][1]:.2f}]){absent_line(s)}; report "
                                   f"{Path(self.p['out']) / 'report.html'}")
        except Exception as e:  # noqa: BLE001
            self.get_logger().error(f"evaluation failed: {e!r}")
        finally:
            self.done.set()

    def _keys(self) -> None:
        read_operator_keys(self.done.is_set, self.operator_event)

    def destroy_node(self):
        self.closing.set()              # service waits give up: nobody spins for their answers now
        self.loop.abort()
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(EvaluatorNode, argv, done=lambda n: n.done.is_set(),
                    exit_code=lambda n: 0 if n.summary is not None else 1)


if __name__ == "__main__":
    sys.exit(main())
