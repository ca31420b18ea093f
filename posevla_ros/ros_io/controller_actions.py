"""control_msgs action clients of the ``joint_trajectory`` backend: the arm as a
``FollowJointTrajectory`` goal (``controller_action``, ros2_control's
joint_trajectory_controller) and the gripper as ``GripperCommand`` goals (``gripper_action``,
e.g. gripper_action_controller or a vendor driver), used instead of the JointTrajectory
topics when set.

Unlike a topic, an action says whether the controller took the command and how it ended,
and the rule here is "unsure means do not move". Each of these holds the arm (the backend's
``hold``: cancel the active arm and gripper goals, command the measured position), drops
what is left of that plan (no later gripper command) and logs one line that says why:
- an action server that is not available when a plan is sent (nothing of it is sent);
- a goal the controller rejects, or does not accept within ``action_timeout_s``;
- an arm result that is not SUCCESSFUL (its ``error_code`` and ``error_string`` are logged),
  or that has not arrived ``action_timeout_s`` after the trajectory's end;
- a gripper result that is neither reached nor stalled (a gripper that stalls while closing
  holds an object: that is a grasp, not a failure), or that has not arrived within
  ``gripper_dwell_s + action_timeout_s`` of its goal.
A goal replaced by the next plan (the controller preempts it) is not a failure.

Gripper timing: the plan carries one gripper value per point (0 closed .. 1 open). The value
of point i is commanded when the arm starts towards point i (t = 0 for the first point,
``times[i-1]`` after it), the moment the topic path starts ramping the fingers; a goal is
sent only when the value differs from the last commanded one by more than
``GRIPPER_CHANGE``. With the executor's gripper dwell (``joint_path.add_gripper_dwell``) a
switch is commanded when the arm has arrived at the grasp pose and stands still. A timer in
the node's clock (``TICK_S``) sends these goals and checks the deadlines.

control_msgs is not a hard dependency: when ``controller_action`` or ``gripper_action`` is
set and it does not import, construction raises a one-line ConfigError (the node does not
start); there is never a silent fallback to the topics.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
from rclpy.action import ActionClient

from posevla_ros.logic.workers import KeyedThrottle
from posevla_ros.param_schema import ConfigError
from posevla_ros.ros_io.conversions import joint_trajectory_msg

try:
    from control_msgs.action import FollowJointTrajectory, GripperCommand
except ImportError:  # wheel-based venv without the test build (scripts/build_test_interfaces.sh)
    FollowJointTrajectory = GripperCommand = None

TICK_S = 0.02            # deadline checks and gripper switch times resolve to this
GRIPPER_CHANGE = 0.05    # a new gripper goal when the 0..1 value moves by more than this
HOLD_TIME_S = 0.1        # time_from_start of the one-point hold trajectory (as the topic path)

_STATUS = {0: "UNKNOWN", 1: "ACCEPTED", 2: "EXECUTING", 3: "CANCELING", 4: "SUCCEEDED",
           5: "CANCELED", 6: "ABORTED"}
_FJT_CODES = {0: "SUCCESSFUL", -1: "INVALID_GOAL", -2: "INVALID_JOINTS", -3: "OLD_HEADER_TIMESTAMP",
              -4: "PATH_TOLERANCE_VIOLATED", -5: "GOAL_TOLERANCE_VIOLATED"}


def control_msgs_available() -> bool:
    return FollowJointTrajectory is not None


def require_control_msgs(p: dict) -> None:
    """One clear line (ConfigError) when an action is configured but control_msgs is missing."""
    wanted = [k for k in ("controller_action", "gripper_action") if p.get(k)]
    if wanted and not control_msgs_available():
        raise ConfigError(f"{' and '.join(f'{k}={p[k]!r}' for k in wanted)} needs control_msgs, which does "
                          f"not import here (source a ROS 2 install that has it, or leave "
                          f"{' and '.join(wanted)} empty to use the JointTrajectory topics)")


def now_s(node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


@dataclass
class _Goal:
    what: str                     # "arm", "hold", "gripper": how a failure is handled and logged
    sent_at: float                # node clock, as the two deadlines
    accept_by: float              # the controller must have accepted it by then
    result_by: float              # and its result must have arrived by then
    handle: object | None = None  # ClientGoalHandle once accepted
    ignored: bool = False         # replaced by a newer goal or canceled by us: its outcome no longer counts
    cancel: bool = False          # canceled by us: cancel it too if it is accepted late
    done: bool = False


class _Slot:
    """One action client and the one goal of it that counts (the newest)."""

    def __init__(self, node, action_type, name: str, label: str) -> None:
        self.client = ActionClient(node, action_type, name)
        self.name, self.label = name, label
        self.goal: _Goal | None = None

    def ready(self) -> bool:
        return self.client.server_is_ready()

    def drop(self) -> bool:
        """Cancel the current goal (now if accepted, on acceptance if still pending).
        True if there was a goal to cancel."""
        g, self.goal = self.goal, None
        if g is None or g.done or g.ignored:
            return False
        g.ignored = g.cancel = True
        if g.handle is not None:
            g.handle.cancel_goal_async()
        return True


class ControllerActions:
    """The action clients of one backend; see the module docstring. ``on_failure(reason)`` is
    called (without the lock held) after a failure has been logged; the backend holds there."""

    def __init__(self, node, p: dict, on_failure: Callable[[str], None]) -> None:
        require_control_msgs(p)
        self.node, self.p, self.on_failure = node, p, on_failure
        self.timeout = float(p["action_timeout_s"])
        self.arm = (_Slot(node, FollowJointTrajectory, p["controller_action"], "arm controller")
                    if p["controller_action"] else None)
        if p["gripper_action"] and not p["gripper_joint_names"]:
            raise ConfigError(f"gripper_action={p['gripper_action']!r} is set, but gripper_joint_names is [] "
                              f"(an arm without a gripper): set both or neither")
        self.gripper = (_Slot(node, GripperCommand, p["gripper_action"], "gripper")
                        if p["gripper_action"] else None)
        self.log = KeyedThrottle(node.get_logger(), float(p["log_throttle_s"]))
        self.last_failure = ""                  # the newest failure, for status and tests
        self._lock = threading.RLock()
        self._switches: list[tuple[float, float]] = []   # (node time, gripper 0..1), time order
        self._gripper_sent: float | None = None          # last commanded gripper value (None: unknown)
        self._timer = node.create_timer(TICK_S, self._tick)

    @property
    def transport(self) -> str:
        parts = [f"FollowJointTrajectory action {self.arm.name}"] if self.arm else []
        parts += [f"GripperCommand action {self.gripper.name}"] if self.gripper else []
        return ", ".join(parts)

    # ------------------------------------------------------------------ the worker thread
    def send(self, plan, arm_msg) -> bool:
        """Send ``plan`` (arm_msg: its JointTrajectory) through the configured actions: the arm
        goal now, the gripper goals at their times. False (and a hold) if a server is not there."""
        uses_gripper = self.gripper is not None and plan.grippers is not None and len(plan.grippers)
        missing = [s for s in (self.arm, self.gripper if uses_gripper else None) if s is not None and not s.ready()]
        if missing:
            self._fail("unavailable", "; ".join(f"{s.label} action server {s.name} is not available" for s in missing)
                       + ": nothing of this plan is sent")
            return False
        now = now_s(self.node)
        start = float(plan.start_time) if plan.start_time is not None else now   # the trajectory's time 0
        end = start + float(plan.times[-1])
        with self._lock:
            if self.arm is not None:
                self._send_goal(self.arm, "arm", FollowJointTrajectory.Goal(trajectory=arm_msg), now,
                                end + self.timeout)
            if uses_gripper:
                g = np.clip(np.asarray(plan.grippers, dtype=float), 0.0, 1.0)
                t = start + np.r_[0.0, np.asarray(plan.times, dtype=float)[:-1]]
                self._switches = list(zip(t.tolist(), g.tolist()))
        if uses_gripper:
            self._tick()     # a command due now goes out now, not one tick later
        return True

    # ------------------------------------------------------------------ any thread
    def cancel_all(self) -> bool:
        """Cancel the arm and gripper goals and drop pending gripper commands."""
        with self._lock:
            self._switches = []
            arm = self.arm.drop() if self.arm is not None else False
            grip = self.gripper.drop() if self.gripper is not None else False
            if grip:
                self._gripper_sent = None     # stopped somewhere on its way
            return arm or grip

    def hold_arm(self, q) -> bool:
        """Command the measured position ``q`` as a one-point goal (after cancel_all)."""
        if self.arm is None or q is None or not self.arm.ready():
            return False
        msg = joint_trajectory_msg(self.p["joint_names"], [q], [HOLD_TIME_S])
        now = now_s(self.node)
        with self._lock:
            self._send_goal(self.arm, "hold", FollowJointTrajectory.Goal(trajectory=msg), now,
                            now + HOLD_TIME_S + self.timeout)
        return True

    # ------------------------------------------------------------------ goals
    def _send_goal(self, slot: _Slot, what: str, goal_msg, now: float, result_by: float) -> None:
        if slot.goal is not None and not slot.goal.done:
            slot.goal.ignored = True        # replaced: the controller preempts it, no cancel needed
        g = _Goal(what, now, now + self.timeout, result_by)
        slot.goal = g
        fut = slot.client.send_goal_async(goal_msg)
        fut.add_done_callback(lambda f: self._on_response(slot, g, f))

    def _on_response(self, slot: _Slot, g: _Goal, fut) -> None:
        handle = fut.result() if fut.exception() is None else None
        with self._lock:
            if handle is not None and handle.accepted:
                g.handle = handle
                if g.cancel:                # stopped or timed out before the controller answered
                    handle.cancel_goal_async()
                    return
                if not g.ignored:
                    handle.get_result_async().add_done_callback(lambda f: self._on_result(slot, g, f))
                return
            g.done = True
            if g.ignored:
                return
            if slot.goal is g:
                slot.goal = None
        why = (f"the request failed ({fut.exception()!r})" if handle is None
               else "the controller REJECTED it (its own log says why)")
        self._failed(slot, g, "rejected", f"{slot.label} {slot.name}: {self._what(g)} goal not accepted: {why}")

    def _on_result(self, slot: _Slot, g: _Goal, fut) -> None:
        resp = fut.result() if fut.exception() is None else None
        with self._lock:
            g.done = True
            if g.ignored:
                return
            if slot.goal is g:
                slot.goal = None
        if resp is None:
            return self._failed(slot, g, "result", f"{slot.label} {slot.name}: getting the result failed "
                                f"({fut.exception()!r})")
        status, res = _STATUS.get(resp.status, str(resp.status)), resp.result
        if slot is self.arm:
            if status == "SUCCEEDED" and res.error_code == FollowJointTrajectory.Result.SUCCESSFUL:
                return
            code = _FJT_CODES.get(res.error_code, str(res.error_code))
            why = res.error_string or "(no error_string)"
            return self._failed(slot, g, "arm_result", f"{slot.label} {slot.name}: {self._what(g)} goal ended "
                                f"{status}, error_code {res.error_code} ({code}): {why}")
        if status == "SUCCEEDED" or (status == "ABORTED" and res.stalled):   # stalled: holding an object
            return
        self._failed(slot, g, "gripper_result", f"{slot.label} {slot.name}: goal ended {status} at position "
                     f"{res.position:.4f} (reached_goal={res.reached_goal}, stalled={res.stalled})")

    def _failed(self, slot: _Slot, g: _Goal, key: str, msg: str) -> None:
        if g.what == "hold":   # the hold itself failed: say so, do not hold again (no loop)
            self.log(f"hold_{key}", f"{msg}; the hold command itself did not complete", "error")
            return
        self._fail(key, msg)

    def _fail(self, key: str, msg: str) -> None:
        with self._lock:
            self.last_failure = msg
            self._switches = []
        self.log(key, f"{msg}: HOLDING (cancel, measured position), no further motion from this plan", "error")
        self.on_failure(msg)

    @staticmethod
    def _what(g: _Goal) -> str:
        return {"arm": "trajectory", "hold": "hold", "gripper": "gripper"}[g.what]

    # ------------------------------------------------------------------ timer
    def _tick(self) -> None:
        now = now_s(self.node)
        failures = []
        with self._lock:
            for slot in (self.arm, self.gripper):
                g = slot.goal if slot is not None else None
                if g is None or g.done or g.ignored:
                    continue
                if g.handle is None and now > g.accept_by:
                    failures.append((slot, g, "accept_timeout", f"{slot.label} {slot.name}: {self._what(g)} goal not "
                                     f"accepted within action_timeout_s={self.timeout:g} s"))
                elif g.handle is not None and now > g.result_by:
                    budget = "gripper_dwell_s" if g.what == "gripper" else "the motion's end"
                    failures.append((slot, g, "result_timeout", f"{slot.label} {slot.name}: no result for the "
                                     f"{self._what(g)} goal {g.result_by - g.sent_at:.2f} s after it was sent "
                                     f"({budget} + action_timeout_s={self.timeout:g} s)"))
            for slot, g, _, _ in failures:
                slot.drop()
            due = None
            while not failures and self._switches and self._switches[0][0] <= now:
                due = self._switches.pop(0)[1]    # several due at once: only the newest counts
            if due is not None and (self._gripper_sent is None or abs(due - self._gripper_sent) > GRIPPER_CHANGE):
                self._send_gripper(due, now)      # under the lock: a stop cannot come in between
        for slot, g, key, msg in failures:
            self._failed(slot, g, key, msg)

    def _send_gripper(self, value: float, now: float) -> None:
        """The gripper goal for ``value`` (0 closed .. 1 open); called with the lock held."""
        if not self.gripper.ready():
            self._fail("unavailable", f"gripper action server {self.gripper.name} is not available")
            return
        p = self.p
        goal = GripperCommand.Goal()
        goal.command.position = float(p["gripper_closed_position"]
                                      + value * (p["gripper_open_position"] - p["gripper_closed_position"]))
        goal.command.max_effort = float(p["gripper_max_effort"])
        self._gripper_sent = value
        self._send_goal(self.gripper, "gripper", goal, now, now + float(p.get("gripper_dwell_s", 0.0)) + self.timeout)
