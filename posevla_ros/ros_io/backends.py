"""Execution backends of the executor: they send a ``JointPlan`` (posevla_ros.logic.joint_path,
the checked and timed joint trajectory):
- ``JointTrajectoryBackend`` (``backend: joint_trajectory``): ``trajectory_msgs/JointTrajectory``
  on ``controller_topic`` (ros2_control joint_trajectory_controller), and the gripper as a
  JointTrajectory of the finger joint(s) on ``gripper_topic`` with the same times. With
  ``controller_action`` / ``gripper_action`` set, the arm goes as a
  ``control_msgs/FollowJointTrajectory`` goal and the gripper as ``control_msgs/GripperCommand``
  goals instead, with acceptance, result and timeout handling (``controller_actions``).
- ``MoveItBackend`` (``backend: moveit``): moveit_py (``moveit.planning.MoveItPy``) plans
  from the current state through each checked IK configuration as a joint-space goal of
  ``moveit_group`` (MoveIt adds collision checking) and executes; needs a MoveIt config
  (robot_description, SRDF, kinematics, controllers) loaded as parameters of the node
  MoveItPy creates. Only on a ROS install with MoveIt 2; it is not importable here.
"""
from __future__ import annotations

import numpy as np
from rclpy.qos import QoSProfile
from trajectory_msgs.msg import JointTrajectory

from posevla_ros.logic.joint_path import JointPlan
from posevla_ros.ros_io.controller_actions import ControllerActions
from posevla_ros.ros_io.conversions import joint_trajectory_msg, sec_to_stamp


def gripper_positions(grippers: np.ndarray, n_joints: int, open_pos: float, closed_pos: float) -> np.ndarray:
    g = np.clip(np.asarray(grippers, dtype=float), 0.0, 1.0)
    return np.repeat((closed_pos + g * (open_pos - closed_pos))[:, None], n_joints, axis=1)


class JointTrajectoryBackend:
    """Sends a JointPlan (see module docstring). ``hold(q)`` commands the current state."""

    name = "joint_trajectory"

    def __init__(self, node, p: dict) -> None:
        self.node, self.p = node, p
        self.joint_names = list(p["joint_names"])
        self.actions = None
        if p.get("controller_action") or p.get("gripper_action"):
            self.actions = ControllerActions(node, p, on_failure=self._hold_after_failure)
        topic = self.actions is None or self.actions.arm is None     # the arm goes on controller_topic
        self.arm_pub = (node.create_publisher(JointTrajectory, p["controller_topic"], QoSProfile(depth=10))
                        if topic else None)
        self.gripper_pub = (node.create_publisher(JointTrajectory, p["gripper_topic"], QoSProfile(depth=10))
                            if p["gripper_topic"] and p["gripper_joint_names"] and not p.get("gripper_action")
                            else None)
        self.transport = ", ".join((["JointTrajectory topic"] if topic else [])
                                   + ([self.actions.transport] if self.actions is not None else []))

    def send(self, plan: JointPlan) -> None:
        stamp = None
        if plan.start_time is not None:      # chunk mode: time 0 is the commanded state at start_time
            stamp = sec_to_stamp(plan.start_time)
        arm = joint_trajectory_msg(self.joint_names, plan.positions, plan.times, stamp, plan.velocities)
        if self.actions is not None and not self.actions.send(plan, arm):
            return                            # a server is missing: it logged and held
        if self.arm_pub is not None:
            self.arm_pub.publish(arm)
        if self.gripper_pub is not None:
            names = list(self.p["gripper_joint_names"])
            pos = gripper_positions(plan.grippers, len(names), self.p["gripper_open_position"],
                                    self.p["gripper_closed_position"])
            self.gripper_pub.publish(joint_trajectory_msg(names, pos, plan.times))

    def hold(self, q_current) -> None:
        """Stop: cancel the active action goals, command the measured position."""
        if self.actions is not None:
            self.actions.cancel_all()
            if self.actions.arm is not None:
                if not self.actions.hold_arm(q_current):
                    self.node.get_logger().warn(
                        f"hold: no hold goal sent to {self.actions.arm.name} (action server not available, "
                        f"or no joint state yet); only the cancel went out")
                return
        if q_current is not None:
            self.arm_pub.publish(joint_trajectory_msg(self.joint_names, [q_current], [0.1]))

    def _hold_after_failure(self, _reason: str) -> None:
        """A controller action failed (controller_actions logged why): hold where the arm is."""
        measured = getattr(self.node, "joint_positions", None)
        self.hold(measured() if callable(measured) else None)


class MoveItBackend:
    """moveit_py backend (see module docstring)."""

    name = "moveit"

    def __init__(self, node, p: dict) -> None:
        try:
            # moveit_py: optional, only the moveit backend needs it
            from moveit.core.robot_state import RobotState
            from moveit.planning import MoveItPy
        except ImportError as e:
            raise RuntimeError("backend 'moveit' needs moveit_py (MoveIt 2 on a ROS install); "
                               "use backend:=joint_trajectory here") from e
        self._RobotState = RobotState
        self.node, self.p = node, p
        self.moveit = MoveItPy(node_name=f"{node.get_name()}_moveit_py")
        self.arm = self.moveit.get_planning_component(p["moveit_group"])
        self.transport = f"moveit_py group {p['moveit_group']}"

    def send(self, plan: JointPlan) -> None:
        model = self.moveit.get_robot_model()
        for q in plan.positions:
            goal = self._RobotState(model)
            goal.set_joint_group_positions(self.p["moveit_group"], np.asarray(q, dtype=float))
            self.arm.set_start_state_to_current_state()
            self.arm.set_goal_state(robot_state=goal)
            result = self.arm.plan()
            if not result:
                raise RuntimeError("MoveIt planning failed")
            self.moveit.execute(result.trajectory, controllers=[])

    def hold(self, q_current) -> None:
        try:
            self.moveit.get_trajectory_execution_manager().stop_execution()
        except Exception:  # noqa: BLE001 - moveit_py versions differ
            pass


def make_backend(node, p: dict):
    if p["backend"] == "joint_trajectory":
        return JointTrajectoryBackend(node, p)
    if p["backend"] == "moveit":
        return MoveItBackend(node, p)
    raise ValueError(f"unknown backend {p['backend']!r} (joint_trajectory | moveit)")
