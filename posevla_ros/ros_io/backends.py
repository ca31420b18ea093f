"""Execution backends of the executor, and the joint-space planning they share.

``plan_joint_path`` (no ROS) turns base-frame target poses into a checked, timed joint
trajectory: IK (pinocchio, ``posevla_core.geometry.kinematics.RobotKinematics``) seeded from the
current joint state and then from the previous point, joint limits, joint jumps, FK of
every point against its target, then time parameterization under velocity and
acceleration limits (``posevla_core.geometry.trajectory``), never faster than the model's
``waypoint_dt``. Any failure returns ``JointPlan(ok=False, reason=...)`` and nothing moves.

Backends send a ``JointPlan``:
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

from dataclasses import dataclass, field

import numpy as np

from posevla_ros.logic import safety
from posevla_ros.ros_io.conversions import sec_to_duration


@dataclass
class JointPlan:
    ok: bool
    reason: str = ""
    targets: list = field(default_factory=list)        # 4x4 base-frame targets
    positions: np.ndarray | None = None                # [N, dof]
    times: np.ndarray | None = None                    # [N] time_from_start, strictly increasing
    grippers: np.ndarray | None = None                 # [N] 0 closed .. 1 open
    fk_errors: list = field(default_factory=list)      # (m, rad) per point
    velocities: np.ndarray | None = None               # [N, dof] per point (chunk mode: continuous at seams)
    start_time: float | None = None                    # clock time of time_from_start 0 (header.stamp); None = now


@dataclass
class MotionLimits:
    velocity: np.ndarray            # [dof] rad/s (already scaled)
    acceleration: np.ndarray        # [dof] rad/s^2


def time_parameterize(q_start: np.ndarray, qs: np.ndarray, limits: MotionLimits, min_dt: float) -> np.ndarray:
    """time_from_start of each point of ``qs`` (from ``q_start`` at t=0)."""
    from posevla_core.geometry.trajectory import time_parameterize as core_tp

    return np.asarray(core_tp(np.vstack([q_start, qs]), limits.velocity, limits.acceleration,
                              min_dt=min_dt))[1:]


def plan_joint_path(kin, targets: list[np.ndarray], grippers, q_start: np.ndarray,
                    limits: safety.SafetyLimits, motion: MotionLimits, waypoint_dt: float,
                    joint_names=None) -> JointPlan:
    """IK + all joint-space safety checks + timing. See the module docstring."""
    q_start = np.asarray(q_start, dtype=float)
    qs, seed = [], q_start
    for i, T in enumerate(targets):
        q, ok, info = kin.ik(T, seed)
        if not ok:
            return JointPlan(False, f"IK failed for waypoint {i} ({info}): unreachable", targets)
        qs.append(np.asarray(q, dtype=float))
        seed = qs[-1]
    Q = np.asarray(qs)
    for reason in (safety.check_joint_limits(Q, np.asarray(kin.lower), np.asarray(kin.upper), joint_names),
                   safety.check_joint_jumps(q_start, Q, limits, joint_names),
                   safety.check_fk_match(kin.fk, Q, targets, limits)):
        if reason:
            return JointPlan(False, reason, targets, Q)
    times = time_parameterize(q_start, Q, motion, max(float(waypoint_dt), 1e-3))
    if not (np.all(np.isfinite(times)) and times[0] > 0 and np.all(np.diff(times) > 0)):
        return JointPlan(False, f"time parameterization failed: {times}", targets, Q)
    errs = [safety.pose_error(kin.fk(q), T) for q, T in zip(Q, targets)]
    return JointPlan(True, "", targets, Q, np.asarray(times, dtype=float),
                     np.clip(np.asarray(grippers, dtype=float), 0.0, 1.0), errs)


def add_gripper_dwell(plan: JointPlan, dwell_s: float) -> JointPlan:
    """Hold the arm for ``dwell_s`` wherever the gripper opens or closes. The arm reaches
    the waypoint with the gripper as before, the gripper switches while the arm stands
    still, and the rest of the path starts ``dwell_s`` later. Without it the next waypoint
    (often a lift) starts while the fingers are still closing and the object slips out;
    the scripted expert and real gripper actions (which report completion) wait the same way."""
    if not plan.ok or dwell_s <= 0 or plan.grippers is None or len(plan.grippers) == 0:
        return plan
    g = np.asarray(plan.grippers, dtype=float)
    prev = np.r_[g[0], g[:-1]]
    switch = np.abs(g - prev) > 0.5
    if not switch.any():
        return plan
    switch_s = min(0.2, 0.25 * float(dwell_s))   # gripper command ramp inside the dwell
    Q, T, G, errs = [], [], [], []
    shift = 0.0

    def add(i: int, t: float, grip: float) -> None:
        Q.append(plan.positions[i]); T.append(t); G.append(grip)
        errs.append(plan.fk_errors[i] if i < len(plan.fk_errors) else None)

    for i in range(len(g)):
        t_i = float(plan.times[i]) + shift
        if switch[i]:   # arrive with the old gripper state, switch, hold, then go on
            add(i, t_i, prev[i])
            add(i, t_i + switch_s, g[i])
            shift += float(dwell_s)
            t_i = float(plan.times[i]) + shift
        add(i, t_i, g[i])
    return JointPlan(True, plan.reason, plan.targets, np.asarray(Q), np.asarray(T), np.asarray(G), errs)


def joint_trajectory_msg(joint_names, positions: np.ndarray, times: np.ndarray, stamp=None, velocities=None):
    """trajectory_msgs/JointTrajectory, one point per row, time_from_start = times.
    ``stamp`` None/zero means "start now" for joint_trajectory_controller; ``velocities``
    (optional, one row per point) make the controller's interpolation continuous in velocity."""
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.joint_names = list(joint_names)
    vel = [None] * len(times) if velocities is None else np.asarray(velocities, dtype=float)
    for q, t, v in zip(np.asarray(positions, dtype=float), np.asarray(times, dtype=float), vel):
        pt = JointTrajectoryPoint(positions=[float(x) for x in np.atleast_1d(q)], time_from_start=sec_to_duration(float(t)))
        if v is not None:
            pt.velocities = [float(x) for x in np.atleast_1d(v)]
        msg.points.append(pt)
    return msg


def gripper_positions(grippers: np.ndarray, n_joints: int, open_pos: float, closed_pos: float) -> np.ndarray:
    g = np.clip(np.asarray(grippers, dtype=float), 0.0, 1.0)
    return np.repeat((closed_pos + g * (open_pos - closed_pos))[:, None], n_joints, axis=1)


class JointTrajectoryBackend:
    """Sends a JointPlan (see module docstring). ``hold(q)`` commands the current state."""

    name = "joint_trajectory"

    def __init__(self, node, p: dict) -> None:
        from rclpy.qos import QoSProfile
        from trajectory_msgs.msg import JointTrajectory

        self.node, self.p = node, p
        self.joint_names = list(p["joint_names"])
        self.actions = None
        if p.get("controller_action") or p.get("gripper_action"):
            from posevla_ros.ros_io.controller_actions import ControllerActions

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
            from posevla_ros.ros_io.conversions import sec_to_stamp

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
