"""recorder_node: synced RGB-D + CameraInfo + joint states + camera extrinsics + instruction
-> LeRobot v3.0 episodes (``posevla_core.data.LeRobotWriter``), optionally raw topics as MCAP
(the cameras, /joint_states, the instruction and, when a policy runs, /posevla/prediction
with every PosePrediction field, ``object_found`` / ``box`` / ``object_size`` included).

Data flow: color image, depth and CameraInfo are paired by stamp (``timesync.subscribe_synced``,
or message_filters on a ROS install); each synced set gets the /joint_states message
nearest in time (within ``joint_state_slop_s``) and the latest camera pose, and is handed to
ONE writer thread. Everything that touches the dataset (decode, FK, add_frame, save,
discard) runs on that thread in arrival order, so ROS callbacks stay instant and the writer
is never used concurrently.

The ROS-free parts: posevla_ros.logic.recording (``EpisodeRecorder``: observations -> LeRobot
frames, ``SerialWorker``, the writer) and posevla_ros.ros_io.mcap (raw topics as MCAP).

Services (std_srvs/Trigger, for operators and teleop keys): ``/recorder/start``,
``/recorder/stop`` (save), ``/recorder/discard``; ``/recorder/save``
(posevla_ros/srv/SaveEpisode) saves like ``stop`` and answers the dataset episode index and
frame count as typed fields (the evaluator's way). Status: JSON std_msgs/String on ``/recorder/status`` every
``status_period_s`` plus a log line per episode.

Crash safety is the writer's contract: a saved episode is on disk for good; after a SIGKILL
the episode in progress is either complete or absent (see posevla_core.data).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from posevla_ros import params
from posevla_ros.logic.recording import EpisodeRecorder, Observation, SerialWorker, make_writer
from posevla_ros.logic.workers import KeyedThrottle
from posevla_ros.msg import PosePrediction
from posevla_ros.nodes.main import run_node
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.mcap import McapEpisodeWriter
from posevla_ros.ros_io.robot_state import RobotStateAt
from posevla_ros.ros_io.timesync import subscribe_synced
from posevla_ros.ros_io.topics import INSTRUCTION_QOS, TOPIC_INSTRUCTION, TOPIC_JOINT_STATES, TOPIC_PREDICTION
from posevla_ros.srv import SaveEpisode

TOPIC_RGB = "/camera/color/image_raw"
TOPIC_DEPTH = "/camera/aligned_depth_to_color/image_raw"
TOPIC_INFO = "/camera/color/camera_info"
TOPIC_STATUS = "/recorder/status"
SRV_START, SRV_STOP, SRV_DISCARD = "/recorder/start", "/recorder/stop", "/recorder/discard"
SRV_SAVE = "/recorder/save"          # posevla_ros/srv/SaveEpisode: /recorder/stop with the episode index




# ---------------------------------------------------------------------------- node
try:
    from rclpy.node import Node as _RosNode
except ImportError:  # pragma: no cover - posevla_core-only installs
    _RosNode = object


class RecorderNode(_RosNode):
    """See the module docstring. ``writer`` / ``fk``: prebuilt objects (tests, runner)."""

    def __init__(self, writer=None, fk=None, node_name: str = "recorder_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        params.declare_all(self, params.RECORDER_PARAMS)
        self.p = p = params.read_all(self, params.RECORDER_PARAMS)
        self._log = KeyedThrottle(self.get_logger(), 5.0)
        self.robot = RobotStateAt(self, p, fk)      # /joint_states and the camera pose, at an image's stamp
        Path(p["root"]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if writer is None:
            writer = make_writer(str(Path(p["root"]).expanduser()), p["fps"], p["repo_id"], p["use_depth"])
        self.writer = writer
        self.core = EpisodeRecorder(writer, self.robot.ee_pose, p["fps"], p["use_depth"], p["max_episode_s"])
        self.worker = SerialWorker(max_pending=p["max_pending_frames"],
                                   on_error=lambda e: self._log("write", f"recording a frame failed: {e!r}", "error"))
        self._instruction = p["instruction"]
        self.mcap = McapEpisodeWriter(Path(p["root"]).expanduser() / "mcap") if p["mcap"] else None

        self.pub_status = self.create_publisher(String, TOPIC_STATUS, QoSProfile(depth=10))
        self.create_subscription(String, TOPIC_INSTRUCTION, self._on_instruction, INSTRUCTION_QOS)
        streams = [(Image, TOPIC_RGB), (CameraInfo, TOPIC_INFO)]
        if p["use_depth"]:
            streams.append((Image, TOPIC_DEPTH))
        self._sync = subscribe_synced(self, streams, p["sync_slop_s"], self._on_frame, qos_profile_sensor_data)
        if self.mcap is not None:
            for t, n in streams + [(JointState, TOPIC_JOINT_STATES), (String, TOPIC_INSTRUCTION),
                                   (PosePrediction, TOPIC_PREDICTION)]:
                tname = f"{t.__module__.split('.')[0]}/msg/{t.__name__}"
                self.create_subscription(t, n, lambda data, n=n, tname=tname: self._on_raw(n, tname, data),
                                         qos_profile_sensor_data if t in (Image, CameraInfo) else QoSProfile(depth=50),
                                         raw=True)
        self.create_service(Trigger, SRV_START, self._srv(self.start))
        self.create_service(Trigger, SRV_STOP, self._srv(self.stop))
        self.create_service(Trigger, SRV_DISCARD, self._srv(self.discard))

        self.create_service(SaveEpisode, SRV_SAVE, self._on_save)
        self.create_timer(p["status_period_s"], self._publish_status)
        self.get_logger().info(f"recorder_node ready: dataset {p['root']} at {p['fps']} fps, camera pose from "
                               f"{self.robot.camera_source}, mcap={p['mcap']}")

    # ---- callbacks: hand data on
    def _on_instruction(self, msg) -> None:
        self._instruction = msg.data

    def _on_raw(self, topic: str, tname: str, data: bytes) -> None:
        if self.core.recording:
            t = self.get_clock().now().nanoseconds
            self.worker.post(lambda: self.mcap.write(topic, tname, data, t))

    def _on_frame(self, rgb, info, depth=None) -> None:
        if not self.core.recording:
            return
        T_cam, reason = self.robot.camera_pose_at(rgb.header)
        if T_cam is None:
            self._log("no_transform" if not self.p["camera_pose_topic"] else "unsynced", f"not recording: {reason}")
            return
        js = self.robot.joint_state_at(conv.stamp_to_sec(rgb.header.stamp))
        if js is None:
            self._log("unsynced", "not recording a frame: no joint state within joint_state_slop_s of the image")
            return
        self.worker.post(lambda: self._record(rgb, info, depth, js, T_cam))

    def _srv(self, fn):
        def handler(_req, resp):
            try:
                resp.message, resp.success = fn(), True
            except Exception as e:  # noqa: BLE001 - reported to the caller
                resp.message, resp.success = str(e), False
            (self.get_logger().info if resp.success else self.get_logger().warn)(resp.message)
            return resp
        return handler

    # ---- writer thread
    def _record(self, rgb, info, depth, js, T_cam) -> None:
        img = conv.image_to_rgb(rgb)
        K = conv.camera_info_to_K(info, img.shape[1], img.shape[0])
        d = conv.image_to_depth(depth) if depth is not None else None
        q, g = self.robot.joints(js)
        if q is None:
            raise ValueError(f"joint_states lack {self.p['joint_names']}")
        obs = Observation(conv.stamp_to_sec(rgb.header.stamp), img, d, K, q, g, T_cam)
        self.core.add(obs)
        if self.core.should_autostop():
            idx = self.core.stop()
            self._close_mcap(True)
            self.get_logger().info(f"max_episode_s reached: saved episode {idx}")

    def _close_mcap(self, keep: bool) -> None:
        if self.mcap is not None:
            self.mcap.close(keep)

    # ---- episode control (any thread; runs on the writer thread)
    def start(self, instruction: str | None = None) -> str:
        text = instruction if instruction is not None else self._instruction

        def op():
            msg = self.core.start(text)
            if self.mcap is not None:
                self.mcap.open(len(self.core.saved) + self.core.discarded)
            return msg
        return self.worker.call(op)

    def save(self) -> tuple[int, int]:
        """Save the episode being recorded: (dataset episode index, frames). RuntimeError
        with the reason when there is nothing to save."""
        def op():
            n = self.core.frames + (1 if self.core._pending is not None else 0)
            idx = self.core.stop()
            self._close_mcap(True)
            return idx, n
        return self.worker.call(op, timeout=300.0)

    def stop(self) -> str:
        idx, n = self.save()
        return f"saved episode {idx} ({n} frames)"

    def _on_save(self, _req, resp):
        try:
            resp.episode_index, resp.frames = self.save()
            resp.success, resp.message = True, f"saved episode {resp.episode_index} ({resp.frames} frames)"
        except Exception as e:  # noqa: BLE001 - reported to the caller
            resp.success, resp.message, resp.episode_index, resp.frames = False, str(e), -1, 0
        (self.get_logger().info if resp.success else self.get_logger().warn)(resp.message)
        return resp

    def discard(self) -> str:
        def op():
            self.core.discard()
            self._close_mcap(False)
            return "discarded the episode"
        return self.worker.call(op)

    def status(self) -> dict:
        s = self.core.status()
        s.update(dropped=self.worker.dropped if self.worker else 0, root=self.p["root"],
                 last_instruction=self._instruction)
        return s

    def _publish_status(self) -> None:
        self.pub_status.publish(String(data=json.dumps(self.status())))

    def close(self) -> None:
        """Finish: discard an unsaved episode, close the writer (idempotent)."""
        def op():
            if self.core.recording:
                self.core.discard()
                self._close_mcap(False)
            if hasattr(self.writer, "close"):
                self.writer.close()
        if self.worker is not None:
            try:
                self.worker.call(op, timeout=120.0)
            finally:
                self.worker.stop()
                self.worker = None

    def destroy_node(self):
        self.close()
        return super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    return run_node(RecorderNode, argv)


if __name__ == "__main__":
    sys.exit(main())
