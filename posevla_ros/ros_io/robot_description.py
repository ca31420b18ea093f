"""Where a node's robot kinematics come from: a URDF file, or the URDF that the robot's own
stack publishes on ``/robot_description``.

ROS users publish their URDF with robot_state_publisher (std_msgs/String, RELIABLE +
TRANSIENT_LOCAL, so a node that starts later still gets it), and the driver and MoveIt read it
from there. ``RobotModel`` does the same when ``robot_description_file`` is empty: it
subscribes to ``robot_description_topic`` and, once a description arrives whose joints and
``ee_link`` match the node's parameters, builds the pinocchio kinematics from the text
(``RobotKinematics.from_xml``: no meshes are opened). A file (``robot_description_file``, or
``posevla://<robot>`` for the sim) is loaded at start, as before.

Until a usable description is there, ``kinematics`` is None and ``reason`` says why; the
executor then plans nothing ("unsure means do not move"). A description that does not fit the
parameters (a joint or ``ee_link`` missing) is logged in one line and not used; a later one that
fits is. A new valid description replaces the old one (robot_state_publisher republishes when
its parameter changes).
"""
from __future__ import annotations

import threading
from typing import Callable

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from posevla_core.geometry.kinematics import RobotKinematics
from posevla_ros import params
from posevla_ros.logic.planning import load_kinematics


def description_qos():
    """robot_state_publisher's QoS for /robot_description: reliable, transient local, depth 1."""

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class RobotModel:
    """The robot's kinematics for ``node`` with parameters ``p`` (``robot_description_file``,
    ``robot_description_topic``, ``ee_link``, ``joint_names``, ``gripper_joint_names``).
    ``kinematics``: a prebuilt RobotKinematics (tests). ``on_ready(kin)`` runs (in the
    subscription's callback) each time kinematics from the topic become available."""

    def __init__(self, node, p: dict, kinematics=None, on_ready: Callable[[object], None] | None = None) -> None:
        self.node, self.p, self._on_ready = node, p, on_ready
        self._lock = threading.Lock()
        self._kin = kinematics
        self._last_error = ""
        self.source = "given"
        if kinematics is not None:
            return
        if p["robot_description_file"]:
            params.check_robot_description(p, node.get_name())      # one clear line, before pinocchio
            self._kin = load_kinematics(p)
            self.source = str(p["robot_description_file"])
            return

        self.source = p["robot_description_topic"]
        node.create_subscription(String, p["robot_description_topic"], self._on_description, description_qos())

    @property
    def kinematics(self):
        with self._lock:
            return self._kin

    @property
    def reason(self) -> str:
        """Why there are no kinematics yet ('' once there are)."""
        if self.kinematics is not None:
            return ""
        return (self._last_error or f"no robot model yet: waiting for the URDF on {self.source} "
                f"(robot_state_publisher), or set robot_description_file")

    def _on_description(self, msg) -> None:
        where = self.node.get_name()
        try:
            params.check_urdf_text(self.p, msg.data, self.source, where)
            kin = RobotKinematics.from_xml(msg.data, self.p["ee_link"], list(self.p["joint_names"]), self.source)
        except (ValueError, RuntimeError) as e:     # ConfigError is a ValueError; pinocchio raises either
            err = f"robot model from {self.source} not used: {str(e).splitlines()[0] if str(e) else e!r}"
            if err != self._last_error:
                self.node.get_logger().error(err)
            with self._lock:
                self._kin, self._last_error = None, err
            return
        with self._lock:
            self._kin, self._last_error = kin, ""
        self.node.get_logger().info(f"robot model from {self.source}: {kin.dof} arm joints, ee_link {kin.ee_link}")
        if self._on_ready is not None:
            self._on_ready(kin)
