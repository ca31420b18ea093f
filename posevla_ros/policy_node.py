"""policy_node: camera (RGB, depth, CameraInfo) + instruction -> Pose-VLA -> PosePrediction.

Data flow: the three image topics (sensor-data QoS) are paired by stamp
(message_filters.ApproximateTimeSynchronizer when it imports; else ``StampSync`` below,
which keeps the last few messages per topic and emits the newest set whose stamps lie
within ``sync_slop_s`` of each other). A synced frame is only handed to a ``LatestWorker``:
decoding and inference run on that thread, the newest frame wins, frames older than
``max_image_age_s`` are dropped. ``PolicyCore`` (no ROS) turns one raw frame into a
prediction; the node publishes it with the image's frame_id and stamp plus rviz markers.

Services: ``/posevla/pause`` and ``resume_service`` (default ``/posevla/resume_policy``;
the executor's ``/posevla/resume`` calls it, so one ``/posevla/resume`` resumes both nodes
without two servers on one name).
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from posevla_ros import conversions as conv
from posevla_ros import params as P
from posevla_ros.markers import prediction_markers
from posevla_ros.msg import PosePrediction
from posevla_ros.runner import KeyedThrottle, LatestWorker

try:
    import message_filters  # real ROS install

    HAVE_MESSAGE_FILTERS = True
except ImportError:  # wheel-based venv: StampSync
    message_filters = None
    HAVE_MESSAGE_FILTERS = False

TOPIC_RGB = "/camera/color/image_raw"
TOPIC_DEPTH = "/camera/aligned_depth_to_color/image_raw"
TOPIC_INFO = "/camera/color/camera_info"
TOPIC_INSTRUCTION = "/posevla/instruction"
TOPIC_PREDICTION = "/posevla/prediction"
TOPIC_MARKERS = "/posevla/markers"
SRV_PAUSE = "/posevla/pause"


class FrameError(Exception):
    """A frame that cannot be used (bad encoding, size mismatch, stale, no instruction).
    ``key`` groups the log throttle."""

    def __init__(self, key: str, msg: str) -> None:
        super().__init__(msg)
        self.key = key


class StampSync:
    """Fallback approximate time sync (documented; used only without message_filters).

    ``add(i, msg)`` stores msg in stream i's queue (``queue_size`` newest kept). After each
    add, the newest combination with one message per stream whose stamps span at most
    ``slop_s`` is passed to ``callback(*msgs)`` and everything up to it is discarded, so a
    set is emitted once. Greedy on the newest stamp of the triggering stream: O(queue^2)."""

    def __init__(self, n_streams: int, slop_s: float, callback: Callable, queue_size: int = 10) -> None:
        self.slop_s, self._cb = slop_s, callback
        self._q = [collections.deque(maxlen=queue_size) for _ in range(n_streams)]
        self._lock = threading.Lock()

    def add(self, index: int, msg) -> None:
        with self._lock:
            t = conv.stamp_to_sec(msg.header.stamp)
            self._q[index].append((t, msg))
            match = self._match(index, t, msg)
            if match is None:
                return
            for q, (tm, _) in zip(self._q, match):
                while q and q[0][0] <= tm:
                    q.popleft()
        self._cb(*[m for _, m in match])

    def _match(self, index, t, msg):
        picked = []
        for j, q in enumerate(self._q):
            if j == index:
                picked.append((t, msg))
                continue
            best = min(q, key=lambda e: abs(e[0] - t), default=None)
            if best is None or abs(best[0] - t) > self.slop_s:
                return None
            picked.append(best)
        stamps = [p[0] for p in picked]
        return picked if max(stamps) - min(stamps) <= self.slop_s else None


@dataclass
class RawFrame:
    rgb: Any            # sensor_msgs/Image
    info: Any           # sensor_msgs/CameraInfo
    depth: Any = None   # sensor_msgs/Image or None


@dataclass
class PolicyResult:
    prediction: Any     # posevla_core.types.Prediction
    header: Any         # the rgb image's header
    instruction: str
    inference_ms: float


class PolicyCore:
    """ROS-free: decode one raw frame, check it, run the model. Raises FrameError on bad or
    stale input; model exceptions propagate (the node logs them and keeps running)."""

    def __init__(self, model, use_depth: bool = True, max_image_age_s: float = 1.0) -> None:
        self.model, self.use_depth, self.max_image_age_s = model, use_depth, max_image_age_s

    def decode(self, frame: RawFrame):
        try:
            rgb = conv.image_to_rgb(frame.rgb)
        except Exception as e:  # noqa: BLE001 - any malformed buffer
            raise FrameError("bad_rgb", f"unusable color image: {e}") from e
        try:
            K = conv.camera_info_to_K(frame.info, rgb.shape[1], rgb.shape[0])
        except Exception as e:  # noqa: BLE001
            raise FrameError("bad_camera_info", f"unusable CameraInfo: {e}") from e
        depth = None
        if self.use_depth:
            if frame.depth is None:
                raise FrameError("no_depth", "use_depth is true but no depth image came with the frame")
            try:
                depth = conv.image_to_depth(frame.depth)
            except Exception as e:  # noqa: BLE001
                raise FrameError("bad_depth", f"unusable depth image: {e}") from e
            if depth.shape != rgb.shape[:2]:
                raise FrameError("bad_depth", f"depth {depth.shape} is not aligned to color {rgb.shape[:2]}")
        return rgb, depth, K

    def check_age(self, frame: RawFrame, now_s: float) -> None:
        age = now_s - conv.stamp_to_sec(frame.rgb.header.stamp)
        if self.max_image_age_s > 0 and age > self.max_image_age_s:
            raise FrameError("stale", f"dropping a frame {age:.3f} s old (max_image_age_s "
                                      f"{self.max_image_age_s})")

    def run(self, frame: RawFrame, instruction: str, now_s: float) -> PolicyResult:
        if not instruction.strip():
            raise FrameError("no_instruction", f"no instruction yet (publish std_msgs/String on "
                                               f"{TOPIC_INSTRUCTION})")
        self.check_age(frame, now_s)
        rgb, depth, K = self.decode(frame)
        t0 = time.perf_counter()
        pred = self.model.predict(rgb, depth, K, instruction)
        ms = (time.perf_counter() - t0) * 1000.0
        if not getattr(pred, "valid", True):
            raise FrameError("invalid_prediction", f"the model produced no usable prediction "
                                                   f"(clipped: {getattr(pred, 'clipped', [])})")
        return PolicyResult(pred, frame.rgb.header, instruction, ms)


def load_model(checkpoint: str, device: str):
    from posevla_core.model import PoseVLA

    return PoseVLA.from_pretrained(str(P.resolve_checkpoint(checkpoint)), device=device)


class PolicyNode(Node):
    """See the module docstring. ``model``: an already-built PoseVLA-like object
    (``predict(rgb, depth, K, instruction)``) instead of loading ``checkpoint``."""

    def __init__(self, model=None, node_name: str = "policy_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        P.declare_all(self, P.POLICY_PARAMS)
        self.p = P.read_all(self, P.POLICY_PARAMS)
        self._log = KeyedThrottle(self.get_logger(), self.p["log_throttle_s"])
        if model is None:
            model = load_model(self.p["checkpoint"], self.p["device"])  # clear error if missing
        self.core = PolicyCore(model, self.p["use_depth"], self.p["max_image_age_s"])
        self._instruction = self.p["instruction"]
        self._paused = False
        self.published = 0

        self.pub_pred = self.create_publisher(PosePrediction, TOPIC_PREDICTION, QoSProfile(depth=10))
        self.pub_markers = self.create_publisher(MarkerArray, TOPIC_MARKERS, QoSProfile(depth=10))
        from posevla_ros.qos import subscribe_instruction

        subscribe_instruction(self, self._on_instruction)
        self.create_service(Trigger, SRV_PAUSE, self._on_pause)
        self.create_service(Trigger, self.p["resume_service"], self._on_resume)

        rate = self.p["rate_hz"]
        self.worker = LatestWorker(self._process, "posevla-policy", 1.0 / rate if rate > 0 else 0.0,
                                   on_error=self._on_model_error)
        streams = [(Image, TOPIC_RGB), (CameraInfo, TOPIC_INFO)]
        if self.p["use_depth"]:
            streams.append((Image, TOPIC_DEPTH))
        if HAVE_MESSAGE_FILTERS:
            subs = [message_filters.Subscriber(self, t, n, qos_profile=qos_profile_sensor_data)
                    for t, n in streams]
            self._sync = message_filters.ApproximateTimeSynchronizer(
                subs, queue_size=10, slop=self.p["sync_slop_s"])
            self._sync.registerCallback(self._on_frame)
        else:
            self._sync = StampSync(len(streams), self.p["sync_slop_s"], self._on_frame)
            for i, (t, n) in enumerate(streams):
                self.create_subscription(t, n, lambda m, i=i: self._sync.add(i, m), qos_profile_sensor_data)
        self.get_logger().info(
            f"policy_node ready: sync={'message_filters' if HAVE_MESSAGE_FILTERS else 'StampSync'}, "
            f"images={'cv_bridge' if conv.HAVE_CV_BRIDGE else 'posevla_core.image'}, "
            f"use_depth={self.p['use_depth']}, rate_hz={rate}")

    # callbacks: hand data on, nothing else
    def _on_instruction(self, msg) -> None:
        self._instruction = msg.data

    def _on_frame(self, rgb, info, depth=None) -> None:
        if not self._paused:
            self.worker.submit(RawFrame(rgb, info, depth))

    def _on_pause(self, _req, resp):
        self._paused, resp.success, resp.message = True, True, "policy paused"
        return resp

    def _on_resume(self, _req, resp):
        self._paused, resp.success, resp.message = False, True, "policy resumed"
        return resp

    # worker thread
    def _process(self, frame: RawFrame) -> None:
        if self._paused:
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        try:
            res = self.core.run(frame, self._instruction, now)
        except FrameError as e:
            self._log(e.key, str(e))
            return
        msg = conv.prediction_to_msg(res.prediction, res.header, res.instruction, res.inference_ms)
        self.pub_pred.publish(msg)
        self.pub_markers.publish(prediction_markers(msg))
        self.published += 1

    def _on_model_error(self, exc: BaseException, tb: str) -> None:
        self._log("model_error", f"model failed, no prediction: {exc!r}\n{tb}", "error")

    def destroy_node(self):
        self.worker.stop()
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    from posevla_ros.node_main import run_node

    return run_node(PolicyNode, argv)


if __name__ == "__main__":
    sys.exit(main())
