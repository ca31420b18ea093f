"""The robot at an image's stamp, read off ROS topics: one home for what the recorder writes
as ``observation.*`` and what a model with proprioception reads (policy_node).

- joint state: the /joint_states message nearest the image stamp, within ``joint_state_slop_s``;
- camera pose: a moving camera's PoseStamped topic (``camera_pose_topic``, the sim's
  /sim/camera_pose: the newest pose stamped no later than the image + slop, so after a reset
  that moves the camera a frame never gets the previous pose), else tf2 at the image stamp,
  else the static ``camera_to_base.*`` parameters (``tf.CameraToBase``);
- end effector: FK of the arm joints (``kinematics.RobotKinematics``, pinocchio), gripper
  opening 0 closed .. 1 open from the finger joints (``conversions.gripper_opening``).

Why both nodes share it: a policy trained on recorded demos must see its state computed the
same way at run time, from the same topics and the same robot config.
"""
from __future__ import annotations

import collections
import threading
from typing import Callable

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState

from posevla_core.policies.flow.codec import robot_state
from posevla_ros.ros_io import conversions as conv
from posevla_ros.ros_io.robot_description import RobotModel
from posevla_ros.ros_io.tf import CameraToBase
from posevla_ros.ros_io.timesync import nearest
from posevla_ros.ros_io.topics import TOPIC_JOINT_STATES


class RobotStateAt:
    """Buffers /joint_states and the camera pose topic of ``node``; answers for one image stamp.
    ``p``: the node's parameters (``params.ROBOT_STATE_PARAMS`` + ``camera_pose_topic``); ``fk``:
    q -> 4x4 base-frame end-effector pose (default: the robot model's, ``robot_description.RobotModel``:
    a URDF file, else /robot_description). Thread safe: callbacks append under a lock, any thread
    may ask."""

    def __init__(self, node, p: dict, fk: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.p, self._fk = p, fk
        # the URDF for FK: robot_description_file, else /robot_description (may arrive later)
        self.model = RobotModel(node, p) if fk is None else None
        self._lock = threading.Lock()
        self._joint_msgs: collections.deque = collections.deque(maxlen=200)
        self._cam_poses: collections.deque = collections.deque(maxlen=50)   # (stamp s, T_base_cam)
        self.camera_to_base = CameraToBase(node, p["base_frame"], p["use_tf"], p["camera_to_base.translation"],
                                           p["camera_to_base.rotation_xyzw"])
        node.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joint_state, QoSProfile(depth=50))
        if p["camera_pose_topic"]:
            node.create_subscription(PoseStamped, p["camera_pose_topic"], self._on_camera_pose, QoSProfile(depth=10))

    @property
    def camera_source(self) -> str:
        return self.p["camera_pose_topic"] or self.camera_to_base.source

    @property
    def fk(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """q -> 4x4 base-frame end-effector pose; None while the robot model has not arrived."""
        if self._fk is not None:
            return self._fk
        kin = self.model.kinematics
        return None if kin is None else kin.fk

    def ee_pose(self, q) -> np.ndarray:
        """FK of ``q``; RuntimeError (saying why) while there is no robot model."""
        fk = self.fk
        if fk is None:
            raise RuntimeError(self.model.reason)
        return np.asarray(fk(q), dtype=float)

    def _on_joint_state(self, msg) -> None:
        with self._lock:
            self._joint_msgs.append(msg)

    def _on_camera_pose(self, msg) -> None:
        T = conv.msg_to_pose(msg.pose).matrix()
        with self._lock:
            self._cam_poses.append((conv.stamp_to_sec(msg.header.stamp), T))

    def joint_state_at(self, t: float):
        """The /joint_states message nearest ``t`` (s) within ``joint_state_slop_s``, or None."""
        with self._lock:
            msgs = list(self._joint_msgs)
        best = nearest(((conv.stamp_to_sec(m.header.stamp), m) for m in msgs), t, self.p["joint_state_slop_s"])
        return None if best is None else best[1]

    def camera_pose_at(self, header) -> tuple[np.ndarray | None, str]:
        """(T_base_cam at the image ``header``, or None with the reason)."""
        if self.p["camera_pose_topic"]:
            t = conv.stamp_to_sec(header.stamp)
            with self._lock:
                poses = [(ts, T) for ts, T in self._cam_poses if ts <= t + self.p["joint_state_slop_s"]]
            if not poses:
                return None, f"no camera pose yet on {self.p['camera_pose_topic']}"
            return max(poses, key=lambda e: e[0])[1], ""
        return self.camera_to_base.lookup(header.frame_id, header.stamp)

    def joints(self, js) -> tuple[np.ndarray | None, float]:
        """(arm joint positions in ``joint_names`` order or None when some are missing, gripper
        opening 0 closed .. 1 open; 1.0 for an arm whose fingers are not in the message)."""
        p = self.p
        g = conv.gripper_opening(js, p["gripper_joint_names"], p["gripper_open_position"],
                                 p["gripper_closed_position"])
        return conv.joint_vector(js, p["joint_names"]), 1.0 if g is None else g

    def at(self, header) -> tuple[dict | None, str]:
        """(``codec.robot_state`` at the image ``header``, or None with the reason)."""
        js = self.joint_state_at(conv.stamp_to_sec(header.stamp))
        if js is None:
            return None, f"no {TOPIC_JOINT_STATES} within joint_state_slop_s ({self.p['joint_state_slop_s']} s) of the image"
        T_cam, reason = self.camera_pose_at(header)
        if T_cam is None:
            return None, reason
        q, g = self.joints(js)
        if self.fk is None:
            return None, self.model.reason
        if q is None:
            return None, f"{TOPIC_JOINT_STATES} lacks {list(self.p['joint_names'])}"
        if not (np.all(np.isfinite(q)) and np.isfinite(g)):
            return None, f"{TOPIC_JOINT_STATES} has non-finite positions at the image"
        return robot_state(np.asarray(self.fk(q), float), g, T_cam), ""
