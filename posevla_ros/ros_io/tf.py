"""camera optical frame -> robot base frame.

With ``use_tf`` true and tf2_ros importable (every ROS install) the transform comes from
a real ``tf2_ros.Buffer`` + ``TransformListener`` at the prediction's stamp (publish your
hand-eye result as a static transform ``base_link -> camera_color_optical_frame``).
Otherwise (``use_tf`` false, or no tf2_ros as in the wheel-based venv) it is the static
``camera_to_base.translation`` / ``camera_to_base.rotation_xyzw`` parameters: the pose of
the camera optical frame in the base frame, i.e. T_base_camera. The static path cannot
check frame names; it assumes every prediction is in that one calibrated camera frame.

A third source, for cameras that move between episodes (the sim jitters its camera per seed):
``camera_pose_topic`` (geometry_msgs/PoseStamped of the optical frame in base_frame). When
set, the latest pose received there is used, and until one arrives there is no transform
(so the executor does not move).
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.time import Time

from posevla_core.geometry import se3
from posevla_ros.logic.safety import static_transform

try:
    import tf2_ros

    HAVE_TF2 = True
except ImportError:  # wheel-based venv: documented static fallback
    tf2_ros = None
    HAVE_TF2 = False


def transform_msg_to_matrix(tf_msg) -> np.ndarray:
    """geometry_msgs/Transform -> 4x4."""
    t, r = tf_msg.translation, tf_msg.rotation
    return se3.make_T([t.x, t.y, t.z], [r.x, r.y, r.z, r.w])


class CameraToBase:
    """``lookup(camera_frame, stamp) -> (T_base_camera or None, reason)``; never raises."""

    def __init__(self, node=None, base_frame: str = "base_link", use_tf: bool = True,
                 translation=(0.0, 0.0, 0.0), rotation_xyzw=(0.0, 0.0, 0.0, 1.0)) -> None:
        self.base_frame = base_frame
        self.static_T = static_transform(translation, rotation_xyzw)
        self.uses_tf = bool(use_tf and HAVE_TF2 and node is not None)
        self._buffer = self._listener = None
        self.topic_T: np.ndarray | None = None
        self.uses_topic = False
        if self.uses_tf:
            self._buffer = tf2_ros.Buffer()
            self._listener = tf2_ros.TransformListener(self._buffer, node)

    @property
    def source(self) -> str:
        if self.uses_topic:
            return "camera pose topic"
        return "tf2" if self.uses_tf else "static camera_to_base params"

    def subscribe(self, node, topic: str) -> None:
        """Take the camera pose from a PoseStamped topic (see the module docstring)."""

        self.uses_topic = True
        node.create_subscription(PoseStamped, topic, self._on_pose, 10)

    def _on_pose(self, msg) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        T = se3.make_T([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])
        if np.all(np.isfinite(T)) and abs(np.linalg.det(T[:3, :3]) - 1.0) < 1e-3:
            self.topic_T = T

    def lookup(self, camera_frame: str, stamp=None) -> tuple[np.ndarray | None, str]:
        if self.uses_topic:
            T = self.topic_T
            return (None, "no camera pose received on the camera pose topic yet") if T is None else (T.copy(), "")
        if not self.uses_tf:
            return self.static_T.copy(), ""

        try:
            when = Time.from_msg(stamp) if stamp is not None else Time()
            ts = self._buffer.lookup_transform(self.base_frame, camera_frame, when)
        except Exception as e:  # noqa: BLE001 - tf2 raises several exception types
            return None, f"no transform {self.base_frame} <- {camera_frame}: {e}"
        return transform_msg_to_matrix(ts.transform), ""

    @classmethod
    def from_params(cls, node, p: dict) -> "CameraToBase":
        c = cls(node, p["base_frame"], p["use_tf"], p["camera_to_base.translation"],
                p["camera_to_base.rotation_xyzw"])
        if node is not None and p.get("camera_pose_topic"):
            c.subscribe(node, p["camera_pose_topic"])
        return c
