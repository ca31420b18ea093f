"""Teleop drivers without ROS: ``TeleopCore`` turns operator commands (keyboard, joystick,
leader arm) into checked plans, and ``ExpertDriver`` lets the sim's scripted expert drive the
arm through the same checks. teleop_node wires them to topics and services.

Every command becomes a base-frame end-effector target (+ gripper) and goes through
``planning.ExecutorCore.plan_targets`` (workspace box, finite values, IK within joint limits, joint
jumps, FK match, timing), the same checks as the policy's predictions.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from posevla_core.geometry import se3
from posevla_core.poses import Pose, Waypoint
from posevla_ros.logic.teleop import CartesianTarget, TeleopCommand


class TeleopCore:
    """ROS-free: commands -> checked plans. ``executor``: an ExecutorCore (same checks as the
    policy); ``send(plan)``: the backend's send. Not thread safe: one caller thread."""

    def __init__(self, executor, send: Callable, fk: Callable, workspace_min, workspace_max,
                 command_dt: float = 0.3, max_step_m: float = 0.05, max_step_rad: float = 0.3,
                 resync_after_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.executor, self.send, self.fk, self.clock = executor, send, fk, clock
        self.target = CartesianTarget(workspace_min, workspace_max, max_step_m, max_step_rad)
        self.command_dt, self.resync_after_s = float(command_dt), float(resync_after_s)
        self.q: np.ndarray | None = None
        self.sent = 0
        self.refused: list[str] = []
        self._last_cmd = -1e18

    def set_joint_state(self, q: np.ndarray) -> None:
        self.q = np.asarray(q, dtype=float)
        if not self.target.ready:
            self.target.sync(self.fk(self.q))

    def send_targets(self, targets: list[np.ndarray], grippers: list[float], dt: float | None = None):
        """Check + plan + send base-frame targets. Returns the ExecResult."""
        waypoints = [Waypoint(Pose.from_matrix(T_), float(g)) for T_, g in zip(targets, grippers)]
        res = self.executor.plan_targets(waypoints, float(dt or self.command_dt), self.q)
        if res.ok:
            self.send(res.plan)
            self.sent += 1
        else:
            self.refused.append(res.reason)
        return res

    def apply(self, cmd: TeleopCommand):
        """A keyboard / joy command. Returns the ExecResult, or None when nothing was sent."""
        if self.q is None:
            self.refused.append("no joint state yet")
            return None
        now = self.clock()
        if now - self._last_cmd > self.resync_after_s or not self.target.ready:
            self.target.sync(self.fk(self.q))
        changed = cmd.moves
        if "gripper" in cmd.events:
            self.target.toggle_gripper()
            changed = True
        if not changed:
            return None
        self._last_cmd = now
        before = self.target.T.copy()
        Tn = self.target.step(cmd)
        res = self.send_targets([Tn], [self.target.gripper])
        if not res.ok:
            self.target.sync(before)
        return res

    def follow(self, q_leader: np.ndarray, gripper: float | None):
        """Leader-follower: the follower's end effector goes to FK(leader joints)."""
        if self.q is None:
            return None
        if gripper is not None:
            self.target.gripper = float(gripper)
        Tl = self.fk(np.asarray(q_leader, dtype=float))
        res = self.send_targets([Tl], [self.target.gripper])
        if res.ok:
            self.target.sync(Tl)
        return res


def interpolate_targets(T_from: np.ndarray, T_to: np.ndarray, max_step_m: float = 0.03,
                        max_step_rad: float = 0.2) -> list[np.ndarray]:
    """Targets from T_from (exclusive) to T_to (inclusive), straight line + slerp, each step
    at most ``max_step_m`` / ``max_step_rad`` (keeps IK continuous and joint jumps small)."""
    dp, ang = se3.pose_error(T_from, T_to)
    n = max(1, int(np.ceil(max(dp / max_step_m, ang / max_step_rad))))
    return list(se3.interpolate_poses([0.0, 1.0], [T_from, T_to], np.linspace(0.0, 1.0, n + 1)[1:]))


class ExpertDriver:
    """Drives the arm with a scripted expert through ``TeleopNode.send_targets`` (the
    executor's checks). ``plan_fn() -> [(T_base_ee 4x4, gripper), ...]`` is called once per
    episode at ``release``; waypoints are interpolated and sent one segment at a time, the
    next one when the arm has (nearly) reached the previous or its time is up.

    Waits count in ``clock`` seconds, by default the teleop node's clock: sim time under
    ``use_sim_time``, so a sim running slower than real time (a loaded machine) still gets the
    time it needs to arrive (in wall time it could move on before the arm got there: the suspected
    cause of PickPlaceCan's 0/2 collection under load; with free CPUs it collected 2/2 either way)."""

    def __init__(self, teleop: "TeleopNode", plan_fn: Callable[[], list], fk: Callable,
                 settle_tol_rad: float = 0.02, gripper_wait_s: float = 0.8,
                 clock: Callable[[], float] | None = None) -> None:
        self.teleop, self.plan_fn, self.fk = teleop, plan_fn, fk
        self.settle_tol_rad, self.gripper_wait_s = settle_tol_rad, gripper_wait_s
        self.clock = clock or (lambda: teleop.get_clock().now().nanoseconds * 1e-9)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def release(self) -> None:
        self.hold()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="expert-driver", daemon=True)
        self._thread.start()

    def hold(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        self._thread = None

    def _wait(self, duration_s: float, done: Callable[[], bool] = lambda: False) -> None:
        """Until ``done()``, a stop, or ``duration_s`` of ``clock`` time have passed."""
        end = self.clock() + duration_s
        while not self._stop.is_set() and self.clock() < end and not done():
            time.sleep(0.02)

    def _wait_reached(self, q_goal: np.ndarray, timeout_s: float) -> None:
        def reached() -> bool:
            q = self.teleop.joint_positions()
            return q is not None and np.max(np.abs(q - q_goal)) < self.settle_tol_rad

        self._wait(timeout_s, reached)

    def _run(self) -> None:
        try:
            waypoints = self.plan_fn()
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"expert plan failed: {e!r}")
            return
        q = self.teleop.joint_positions()
        if q is None:
            self.errors.append("no joint state")
            return
        T_cur, g_cur = self.fk(q), None
        for T_goal, g in waypoints:
            if self._stop.is_set():
                return
            if g_cur is not None and abs(g - g_cur) > 0.5:     # gripper change: in place, then wait
                res = self.teleop.send_targets([T_cur], [g])
                if not res.ok:
                    self.errors.append(res.reason)
                    return
                self._wait(self.gripper_wait_s)
            g_cur = g
            targets = interpolate_targets(T_cur, np.asarray(T_goal, dtype=float))
            res = self.teleop.send_targets(targets, [g] * len(targets), dt=0.1)
            if not res.ok:
                self.errors.append(res.reason)
                return
            self._wait_reached(res.plan.positions[-1], float(res.plan.times[-1]) * 3.0 + 2.0)
            T_cur = np.asarray(T_goal, dtype=float)


def make_expert_plan(sim_node) -> Callable[[], list]:
    """plan_fn for ExpertDriver from the in-process sim node's scripted expert
    (posevla_core.sim.demonstrator): base-frame (T, gripper) waypoints for the current episode."""
    from posevla_core.sim import demonstrator  # the sim packages (mujoco)

    def plan():
        sim = getattr(sim_node, "sim", None) or getattr(sim_node, "env", None)
        with getattr(sim_node, "lock", threading.Lock()):
            wps = demonstrator.expert_waypoints(sim)
        out = []
        for w in wps:
            if hasattr(w, "pose"):
                out.append((w.pose.matrix(), float(w.gripper)))
            else:
                T_, g = w
                out.append((np.asarray(T_, dtype=float), float(g)))
        return out
    return plan
