"""policy_node: camera(s) (RGB, depth, CameraInfo) + instruction -> Pose-VLA -> PosePrediction.

Cameras: ``camera_namespaces`` (default ["/camera"]); each namespace gives
<ns>/color/image_raw, <ns>/aligned_depth_to_color/image_raw and <ns>/color/camera_info
(``topics.camera_topics``). The FIRST camera is the prediction frame (the published header is
its image's); the others (e.g. a wrist camera) go to the model as ``views``. A model that
takes fewer cameras (``PosePolicy.max_cameras``) is refused at start.

Data flow: all image topics of all cameras (sensor-data QoS) are paired by stamp in one set
(``timesync.subscribe_synced``: message_filters.ApproximateTimeSynchronizer when it
imports; else ``timesync.StampSync``, which keeps the last few messages per topic and emits
a set whose stamps lie within ``sync_slop_s`` of each other). A synced frame is only handed to a ``LatestWorker``:
decoding and inference run on that thread, the newest frame wins, frames older than
``max_image_age_s`` are dropped. With ``policy_server`` (host:port of ``posevla serve``) the
model runs there (``posevla_core.serving.client.RemotePolicy``, the same predict and Prediction); a
server that is down, slower than ``policy_server_timeout_s`` or restarting means no prediction
for that frame, a throttled log line, and a fresh connection on the next. A model that reads the robot's state (a flow expert with
proprioception) gets it at the image's stamp from /joint_states and the camera pose
(``robot_state.RobotStateAt``, as the recorder computes its observations; the robot config's
kinematics); without one it does not predict. ``inference.PolicyCore`` (no ROS) turns one raw frame into
a prediction; the node publishes it with the image's frame_id and stamp plus rviz markers.
A ``<no_object>`` answer (the instruction names an object that is not in view) goes out with
``object_found`` false and no waypoints (``conversions.prediction_to_msg``), logged once.

Services: ``/posevla/pause`` and ``resume_service`` (default ``/posevla/resume_policy``;
the executor's ``/posevla/resume`` calls it, so one ``/posevla/resume`` resumes both nodes
without two servers on one name).
"""
from __future__ import annotations

import collections
import sys
import threading
import traceback

from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from posevla_ros import params
from posevla_ros.launching.runner import SHUTDOWN
from posevla_ros.logic.inference import FrameError, PolicyCore, RawFrame, load_model
from posevla_ros.logic.workers import KeyedThrottle, LatestWorker
from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.main import run_node
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.markers import prediction_markers
from posevla_ros.ros_io.robot_state import RobotStateAt
from posevla_ros.ros_io.timesync import HAVE_MESSAGE_FILTERS, subscribe_synced
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION, TOPIC_PREDICTION, camera_topics

TOPIC_RGB, TOPIC_DEPTH, TOPIC_INFO = (camera_topics()[k] for k in ("rgb", "depth", "info"))   # the default camera
TOPIC_MARKERS = "/posevla/markers"
SRV_PAUSE = "/posevla/pause"


class PolicyNode(Node):
    """See the module docstring. ``model``: an already-built PoseVLA-like object
    (``predict(rgb, depth, K, instruction)``) instead of loading ``checkpoint``.

    Threads: the executor thread(s) run the subscription and service callbacks, which only
    store the instruction / pause flag or hand a frame to the worker; the worker thread
    runs ``_process``. What both touch (instruction, pause flag, the outcome counters)
    is read and written under ``self._lock``."""

    def __init__(self, model=None, node_name: str = "policy_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        params.declare_all(self, params.POLICY_PARAMS)
        self.p = params.read_all(self, params.POLICY_PARAMS)
        self._log = KeyedThrottle(self.get_logger(), self.p["log_throttle_s"])
        namespaces = self.p["camera_namespaces"]
        if not namespaces:
            raise ValueError("camera_namespaces is empty; give at least one camera (e.g. ['/camera'])")
        cams = [camera_topics(ns) for ns in namespaces]       # ValueError on an empty name
        if len({c["rgb"] for c in cams}) < len(cams):
            raise ValueError(f"camera_namespaces {namespaces} names a camera twice")
        self._own_model = model is None
        if model is None:   # clear error if missing; with policy_server the server's model (serving.RemotePolicy)
            model = load_model(self.p["checkpoint"], self.p["device"], self.p["policy_server"],
                               self.p["policy_server_timeout_s"], self.p["policy_server_wait_s"],
                               self.get_logger(), SHUTDOWN.is_set, self.p["decoding"], self.p["inference_threads"])
        if len(cams) > getattr(model, "max_cameras", 1):
            if self._own_model and hasattr(model, "close"):
                model.close()
            raise ValueError(f"camera_namespaces has {len(cams)} cameras {namespaces}, but the "
                             f"{getattr(model, 'architecture', '') or 'loaded'} model takes at most "
                             f"{getattr(model, 'max_cameras', 1)}")
        self.core = PolicyCore(model, self.p["use_depth"], self.p["max_image_age_s"],
                               self.p["min_object_depth_support"])
        # a model with proprioception reads the robot at each image, computed as the recorder does
        # (a URDF file is loaded now, so a bad one fails at start in one line; else /robot_description)
        self.robot = RobotStateAt(self, self.p) if self.core.needs_state else None
        self._lock = threading.Lock()
        self._instruction = self.p["instruction"]
        self._paused = False
        # the worker's outcome per finished frame ("published", a FrameError key, "model_error")
        # and the stamp of the last frame it finished: what tests wait on instead of quiet periods
        self._outcomes: collections.Counter = collections.Counter()
        self._last_done = None
        self._closing = threading.Event()   # set by destroy_node, before the worker is stopped
        self._absent_logged_for: str | None = None   # worker thread only: see _note_object_found

        self.pub_pred = self.create_publisher(PosePrediction, TOPIC_PREDICTION, QoSProfile(depth=10))
        self.pub_markers = self.create_publisher(MarkerArray, TOPIC_MARKERS, QoSProfile(depth=10))
        self.create_subscription(String, TOPIC_INSTRUCTION, self._on_instruction, INSTRUCTION_QOS)
        self.create_service(Trigger, SRV_PAUSE, self._on_pause)
        self.create_service(Trigger, self.p["resume_service"], self._on_resume)

        rate = self.p["rate_hz"]
        self.worker = LatestWorker(self._process, "posevla-policy", 1.0 / rate if rate > 0 else 0.0,
                                   on_error=self._on_worker_error)
        streams = []
        for c in cams:      # per camera: rgb, info[, depth] (the order _on_frame splits by)
            streams += [(Image, c["rgb"]), (CameraInfo, c["info"])]
            streams += [(Image, c["depth"])] if self.p["use_depth"] else []
        self._per_camera = len(streams) // len(cams)
        self._sync = subscribe_synced(self, streams, self.p["sync_slop_s"], self._on_frame, qos_profile_sensor_data)
        self.get_logger().info(
            f"policy_node ready: sync={'message_filters' if HAVE_MESSAGE_FILTERS else 'StampSync'}, "
            f"images={'cv_bridge' if conv.HAVE_CV_BRIDGE else 'posevla_core.image'}, "
            f"use_depth={self.p['use_depth']}, rate_hz={rate}, cameras={namespaces}"
            + (f", robot state from /joint_states + {self.robot.camera_source}" if self.robot else ""))

    @property
    def instruction(self) -> str:
        with self._lock:
            return self._instruction

    def outcomes(self) -> dict[str, int]:
        """How the worker finished each frame so far: {"published": n, "<FrameError key>": n,
        "model_error": n} (a copy)."""
        with self._lock:
            return dict(self._outcomes)

    def last_done_stamp(self):
        """(sec, nanosec) of the last synced frame the node finished with, whatever the
        outcome (published, refused, paused); or None."""
        with self._lock:
            return self._last_done

    # callbacks (executor thread): hand data on, nothing else
    def _on_instruction(self, msg) -> None:
        with self._lock:
            self._instruction = msg.data

    def _on_frame(self, *msgs) -> None:
        n = self._per_camera
        first, *views = [RawFrame(*msgs[i:i + n]) for i in range(0, len(msgs), n)]
        frame = RawFrame(first.rgb, first.info, first.depth, views)
        with self._lock:
            paused = self._paused
        if paused:
            self._done(frame, "paused")
        else:
            self.worker.submit(frame)

    def _on_pause(self, _req, resp):
        with self._lock:
            self._paused = True
        resp.success, resp.message = True, "policy paused"
        return resp

    def _on_resume(self, _req, resp):
        with self._lock:
            self._paused = False
        resp.success, resp.message = True, "policy resumed"
        return resp

    def _live(self) -> bool:
        """False once the node is being destroyed or its context shut down. Ctrl-C shuts the
        context down from rclpy's signal handling while the worker may be mid-frame; then
        its results are dropped quietly. (Reads the context handle directly: ``Context.ok()``
        takes the context lock, which ``Context.shutdown`` holds while it destroys nodes.)"""
        if self._closing.is_set():
            return False
        try:
            return bool(self.context.handle.ok())
        except Exception:  # noqa: BLE001 - a destroyed handle: not live
            return False

    # worker thread (and _on_frame for frames that arrive while paused)
    def _done(self, frame: RawFrame, outcome: str) -> None:
        with self._lock:
            self._outcomes[outcome] += 1
            self._last_done = (frame.rgb.header.stamp.sec, frame.rgb.header.stamp.nanosec)

    def _process(self, frame: RawFrame) -> None:
        with self._lock:
            paused, instruction = self._paused, self._instruction
        if paused:      # paused while the frame waited
            return self._done(frame, "paused")
        now = self.get_clock().now().nanoseconds * 1e-9
        try:
            state, why = self.robot.at(frame.rgb.header) if self.robot is not None else (None, "")
            res = self.core.run(frame, instruction, now, state, why)
        except FrameError as e:
            if self._live():
                self._log(e.key, str(e))
            return self._done(frame, e.key)
        except Exception as e:  # noqa: BLE001 - a failing model must not stop the node
            if self._live():
                self._log("model_error", f"model failed, no prediction: {e!r}\n{traceback.format_exc()}", "error")
            return self._done(frame, "model_error")
        self._note_object_found(res.prediction, res.instruction)
        msg = conv.prediction_to_msg(res.prediction, res.header, res.instruction, res.inference_ms)
        try:
            self.pub_pred.publish(msg)
            self.pub_markers.publish(prediction_markers(msg))
        except _rclpy.RCLError:
            if self._live():
                raise
            return self._done(frame, "shutdown")
        self._done(frame, "published")

    def _note_object_found(self, pred, instruction: str) -> None:
        """Log a ``<no_object>`` answer once per stretch of them for one instruction (the
        prediction still goes out, with ``object_found`` false and no waypoints)."""
        if pred.found:
            self._absent_logged_for = None
        elif self._absent_logged_for != instruction and self._live():
            self._absent_logged_for = instruction
            what = f"'{pred.category}'" if pred.category else "the instruction's object"
            self.get_logger().warn(f"{what} is not in view (<no_object>) for {instruction!r}: "
                                   f"publishing object_found=false with no waypoints, not moving")

    def _on_worker_error(self, exc: BaseException, tb: str) -> None:
        if self._live():
            self._log("worker_error", f"frame handling failed: {exc!r}\n{tb}", "error")

    def destroy_node(self):
        # also for a constructor that raised half way (no policy server, a bad URDF): rclpy's
        # context destroys every node it made, built or not
        if hasattr(self, "worker"):
            self._closing.set()
            self.worker.stop()
        core = getattr(self, "core", None)
        if getattr(self, "_own_model", False) and hasattr(getattr(core, "model", None), "close"):
            core.model.close()          # a policy server's connection
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(PolicyNode, argv)


if __name__ == "__main__":
    sys.exit(main())
