"""Joint-space planning, no ROS: ``plan_joint_path`` turns base-frame target poses into a
checked, timed joint trajectory (``JointPlan``) that the executor's backends
(posevla_ros.ros_io.backends) send.

IK (pinocchio, ``posevla_core.geometry.kinematics.RobotKinematics``) seeded from the current
joint state and then from the previous point, joint limits, joint jumps, FK of every point
against its target, then time parameterization under velocity and acceleration limits
(``posevla_core.geometry.trajectory``), never faster than the model's ``waypoint_dt``. Any
failure returns ``JointPlan(ok=False, reason=...)`` and nothing moves.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posevla_core.geometry.trajectory import time_parameterize as core_tp
from posevla_ros.logic import safety


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
