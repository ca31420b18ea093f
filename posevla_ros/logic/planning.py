"""The executor's logic without ROS: end-effector targets -> checked joint plans, and when the
next plan may start.

``ExecutorCore`` has two entry points that run the same checks and planning:
- ``plan_targets``: base-frame end-effector targets (pose + gripper each, and the time between
  them), what teleop and the scripted expert send: stopped, deadman, finite values,
  workspace box, then ``joint_path.plan_joint_path`` (IK within joint limits, joint jumps, FK of
  every point vs its target <= 5 mm / 3 deg, timing);
- ``process``: a camera-frame ``Prediction`` (the policy's): the same gate checks, then object
  found, staleness, finite values and the camera->base transform, then the waypoints go to the
  base frame and on to the same workspace / IK / planning steps.

``MotionWindow`` is the scheduling of ``execution_mode: complete``: a new prediction is taken
only once the running plan has finished and settled. ``EmptyGraspWatch`` notices a close that
caught nothing, so the executor can open the hand again (``ExecutorCore.open_gripper_plan``).

executor_node and teleop_node wire these to topics; tests construct them without ROS.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from posevla_core.geometry.kinematics import RobotKinematics
from posevla_core.poses import Waypoint
from posevla_ros.logic import joint_path, safety


@dataclass
class ExecResult:
    ok: bool
    reason: str = ""
    key: str = ""                                       # log-throttle group of the reason
    targets: list = field(default_factory=list)         # base-frame 4x4 per waypoint (if transformed)
    plan: joint_path.JointPlan | None = None


def load_kinematics(p: dict):
    """The kinematics of the URDF file ``robot_description_file`` (nodes whose URDF may come
    from /robot_description use ``robot_description.RobotModel``)."""

    if not p["robot_description_file"]:
        raise ValueError("robot_description_file is empty: this needs a URDF file (or posevla://<robot>)")

    return RobotKinematics(p["robot_description_file"], p["ee_link"], list(p["joint_names"]))


class ExecutorCore:
    """ROS-free executor logic. ``kin``: a RobotKinematics; ``p``: executor params dict.
    One caller thread at a time (the executor's worker, or teleop under its lock); ``gate``
    and ``deadman`` have their own locks and may be written from any thread."""

    def __init__(self, kin, p: dict) -> None:
        self.p = p
        self.limits = safety.SafetyLimits.from_params(p)
        self.kin, self.motion = None, None
        self.no_model_reason = "no robot model"
        if kin is not None:
            self.set_kinematics(kin)
        self.gate = safety.SafetyGate()
        self.deadman = safety.Deadman(p["deadman_timeout_s"]) if p.get("deadman_topic") else None
        # a gripper: finger joints on a JointTrajectory topic, or a GripperCommand action
        self.has_gripper = (bool(p["gripper_joint_names"]) and bool(p["gripper_topic"])) or bool(p.get("gripper_action"))

    def set_kinematics(self, kin) -> None:
        """The robot's kinematics (and the motion limits from its URDF). ``kin`` None: plan
        nothing (a robot whose URDF has not arrived yet: ``no_model_reason`` says why)."""
        self.kin = kin
        if kin is not None:
            vel = np.asarray(kin.velocity_limits, dtype=float) * float(self.p["velocity_scale"])
            acc = np.full(len(vel), float(self.p["max_joint_acceleration"]))
            self.motion = joint_path.MotionLimits(vel, acc)

    def _gate_checks(self) -> list[tuple[str, str | None]]:
        return [("stopped", self.gate.check()),
                ("deadman", self.deadman.check() if self.deadman is not None else None)]

    def plan_targets(self, waypoints: list[Waypoint], dt: float, q_current,
                     gripper_dwell: bool = True) -> ExecResult:
        """Base-frame end-effector targets (``Waypoint``: pose in the base frame + gripper, ``dt``
        s apart) -> targets and (if ok) a plan; the checks of the module docstring."""
        for key, reason in self._gate_checks() + [("non_finite", safety.check_waypoints_finite(waypoints, dt))]:
            if reason:
                return ExecResult(False, reason, key)
        return self._plan([w.pose.matrix() for w in waypoints], [w.gripper for w in waypoints], dt,
                          q_current, gripper_dwell)

    def process(self, pred, T_base_cam: np.ndarray | None, q_current, age_s: float,
                tf_reason: str = "", gripper_dwell: bool = True) -> ExecResult:
        """pred: core Prediction in the camera frame; returns targets and (if ok) a plan.
        ``gripper_dwell`` False: one plan point per waypoint (chunk mode times them itself)."""
        checks = self._gate_checks() + [
            ("object_not_found", safety.check_object_found(pred)),
            ("stale", safety.check_stale(age_s, self.limits)),
            ("non_finite", safety.check_prediction_finite(pred)),
            ("no_transform", (tf_reason or "no camera->base transform") if T_base_cam is None
             else safety.check_transform(T_base_cam))]
        for key, reason in checks:
            if reason:
                return ExecResult(False, reason, key)
        return self._plan([T_base_cam @ w.pose.matrix() for w in pred.waypoints],
                          [w.gripper for w in pred.waypoints], pred.waypoint_dt, q_current, gripper_dwell)

    def _plan(self, targets: list[np.ndarray], grippers: list[float], dt: float, q_current,
              gripper_dwell: bool) -> ExecResult:
        """Checked base-frame targets -> workspace box, joint state, ``plan_joint_path``, dwell."""
        reason = safety.check_workspace(np.array([T[:3, 3] for T in targets]), self.limits)
        if reason:
            return ExecResult(False, reason, "workspace", targets)
        if self.kin is None:
            return ExecResult(False, self.no_model_reason, "no_robot_model", targets)
        if q_current is None:
            return ExecResult(False, f"no joint state yet for {list(self.p['joint_names'])} "
                                     f"(subscribe /joint_states)", "no_joint_states", targets)
        plan = joint_path.plan_joint_path(self.kin, targets, grippers, np.asarray(q_current, dtype=float),
                                        self.limits, self.motion, dt, list(self.p["joint_names"]))
        if not plan.ok:
            return ExecResult(False, plan.reason, "plan", targets, plan)
        if self.has_gripper and gripper_dwell:   # no gripper: its predicted values mean nothing, no dwell
            plan = joint_path.add_gripper_dwell(plan, float(self.p.get("gripper_dwell_s", 0.0)))
        return ExecResult(True, "", "", targets, plan)

    def open_gripper_plan(self, q_current) -> joint_path.JointPlan:
        """The arm held at ``q_current`` while the gripper opens (over ``gripper_dwell_s``, at
        least 0.3 s): what the executor sends after an empty close (``EmptyGraspWatch``)."""
        q = np.asarray(q_current, dtype=float)
        duration = max(float(self.p.get("gripper_dwell_s", 0.0)), 0.3)
        return joint_path.JointPlan(True, "open the gripper after an empty close", [], q[None, :],
                                  np.array([duration]), np.array([1.0]), [None])


class EmptyGraspWatch:
    """Notices a close that caught nothing: while a sent plan holds the gripper closed (from the
    point where it closes to the point where it opens again, or its end), ``wait_s`` or more after
    the close was commanded, the measured opening (0 closed .. 1 open) is below ``below``: the
    fingers met with nothing between them (a 4.5 cm cube stops the sim Panda's at 0.56,
    robosuite's can at 0.63, an empty close at 0.002-0.01).

    Why the executor acts on it: the token head does not read the gripper's state, so after a
    missed grasp it sees a closed hand in the air and does not start the reach over (the arm
    stood still until the episode's timeout, docs/results/2026-12-07-wide-nominal-misses.md), or
    a keyframe plan carries the empty hand to the bin and back. Opening the empty hand, with the
    arm held where it is, moves nothing that could be held and shows the model a scene it knows.
    Fires once per close. The worker thread calls ``sent``, a timer ``check``: both take the lock."""

    def __init__(self, below: float, wait_s: float) -> None:
        self.below, self.wait_s = float(below), float(wait_s)
        self._lock = threading.Lock()
        self._windows: list[list[float]] = []      # [close commanded, open commanded) per close, node clock

    @property
    def enabled(self) -> bool:
        return self.below > 0

    def sent(self, plan: joint_path.JointPlan, now: float) -> None:
        """A plan went out at ``now`` (node clock): the windows in which it holds the gripper
        closed (the value of point i is commanded as the arm starts towards it, at
        ``times[i-1]``). A plan closed from its first point continues a close already watched:
        in replace mode a new plan every few hundred ms would otherwise push the judgement back
        forever."""
        g = None if plan.grippers is None else np.asarray(plan.grippers, dtype=float) < 0.5
        t = [0.0] + [float(x) for x in (plan.times if plan.times is not None else [])]
        with self._lock:
            running = next((w for w in self._windows if w[0] <= now < w[1]), None)
            self._windows = []
            i, n = 0, 0 if g is None else len(g)
            while i < n:
                if not g[i]:
                    i += 1
                    continue
                j = i
                while j < n and g[j]:
                    j += 1
                start = running[0] if i == 0 and running is not None else now + t[i]
                self._windows.append([start, now + t[j] if j < n else float("inf")])
                i = j

    def check(self, opening: float | None, now: float) -> bool:
        """True (once per close) when the hand closed on nothing; ``opening`` None (no finger
        joints in /joint_states) never fires."""
        with self._lock:
            if not self.enabled or opening is None or opening >= self.below:
                return False
            for w in self._windows:
                if w[0] + self.wait_s <= now < w[1]:
                    self._windows.remove(w)
                    return True
            return False

    def clear(self) -> None:
        with self._lock:
            self._windows = []


class MotionWindow:
    """When the last sent plan runs. Shared by three threads, so every read and write holds
    the one lock: the worker (starts it after a send, asks it in complete mode), the stop /
    resume services (clear it) and the deadman timer (ends it when it holds the arm).

    ``busy`` (complete mode, node clock): from the send to the plan's end + settle time; a
    clock earlier than the send jumped back (sim reset, bag loop) and clears it.
    ``moving`` (monotonic wall time): until the trajectory's last point, for the deadman.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy_since = self._busy_until = -1.0
        self._moving_until = -1.0

    def start(self, now: float, duration_s: float, settle_s: float) -> None:
        with self._lock:
            self._busy_since, self._busy_until = now, now + duration_s + settle_s
            self._moving_until = time.monotonic() + duration_s

    def clear(self) -> None:
        """A stop or resume: the held plan is over."""
        with self._lock:
            self._busy_since = self._busy_until = -1.0

    def busy(self, now: float, stamp_s: float) -> bool:
        """Complete mode: True while the last plan runs or when the image predates its end."""
        with self._lock:
            if self._busy_until <= 0:
                return False
            if now < self._busy_since:
                self._busy_since = self._busy_until = -1.0
                return False
            return now < self._busy_until or stamp_s < self._busy_until

    def take_moving(self) -> bool:
        """True (once) when a trajectory may still be running; the deadman then holds the arm."""
        with self._lock:
            moving, self._moving_until = self._moving_until >= 0, -1.0
            return moving
