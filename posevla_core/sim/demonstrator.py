"""Scripted expert: a 6-keyframe plan in the base frame, executed with IK + the sim's
trajectory follower.

    plan = plan_keyframes(env)   # [(T_base 4x4 of panda_grasptarget, gripper 0 closed .. 1 open)] x 6
    pick: pre-grasp (10 cm above, open), grasp (open), grasp (closed), lift 15 cm (closed) x 3
    put:  pre-grasp (open), grasp (open), grasp (closed), lift (closed),
          above container (closed), above container (open); onto an object or a peg
          (``env.places_onto``) the held object is set down just above its top, into a bin
          it is dropped from above the walls
    ok = run_expert(env)         # executes the plan, returns env.success()

Grasps are top-down (hand z = -z base) at ``env.grasp_point`` (the object's origin, or a
handle): the fingers close along a face normal of a cube (the yaw of the four, mod 90 deg,
closest to the current hand yaw), keep the current hand yaw for a cylinder, close across a
handle, and turn 90 deg off a neighbour on their axis. A held object that must sit square on
its container (``env.place_turn``: a square nut on its peg) turns with the hand on the way.
"""
from __future__ import annotations

import math

import numpy as np

from posevla_core.geometry.kinematics import RobotKinematics
from posevla_core.geometry.trajectory import time_parameterize
from posevla_core.sim.mujoco import scene

PRE_GRASP = 0.10
LIFT = 0.15
ABOVE_BIN = 0.12      # grasptarget above the bin's wall tops (object bottom clears the walls)
NEIGHBOR_R = 0.085    # m: another object's center this close, on the finger axis, is where a finger lands
STACK_CLEARANCE = 0.01   # stacking on an object: the held object's bottom this far above its top
MIN_SEGMENT_S = 0.8
GRIPPER_SEGMENT_S = 0.6
VEL_SCALE = 0.5
MAX_ACC = 2.0

_KIN = {}


def default_kinematics():
    if "panda" not in _KIN:
        _KIN["panda"] = RobotKinematics("posevla://panda", "panda_grasptarget", scene.ARM_JOINTS)
    return _KIN["panda"]


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _hand_y_yaw(T: np.ndarray) -> float:
    y = T[:3, 1]
    return math.atan2(y[1], y[0])


def topdown(pos, y_yaw: float) -> np.ndarray:
    """Grasp pose: z down, hand y (finger closing axis) at yaw ``y_yaw``."""
    z = np.array([0.0, 0.0, -1.0])
    y = np.array([math.cos(y_yaw), math.sin(y_yaw), 0.0])
    x = np.cross(y, z)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = pos
    return T


def grasp_yaw(obj_yaw: float, current_yaw: float, symmetric_step: float | None) -> float:
    """Finger-axis yaw: for a cube the one of obj_yaw + k*90 deg closest to the current
    hand yaw (mod 180: the gripper is symmetric); for a round object the current yaw."""
    if symmetric_step is None:
        cand = current_yaw
    else:
        k = round(_wrap(current_yaw - obj_yaw) / symmetric_step)
        cand = obj_yaw + k * symmetric_step
    # keep it within +-90 deg of the home hand yaw (-90 deg) to stay away from joint7 limits
    home = -math.pi / 2
    d = _wrap(cand - home)
    if d > math.pi / 2:
        cand -= math.pi
    elif d < -math.pi / 2:
        cand += math.pi
    return _wrap(cand)


def clear_of_neighbors(yaw: float, p: np.ndarray, others: list[np.ndarray]) -> float:
    """Turn the finger axis (hand y at ``yaw``) 90 deg when an object within NEIGHBOR_R of the
    target lies within 45 deg of it: the open fingers (8 cm apart) would land on that object
    (robosuite's Stack places its cubes 6.6 cm apart; our scene keeps objects 9 cm apart)."""
    axis = np.array([math.cos(yaw), math.sin(yaw)])
    for o in others:
        d = np.asarray(o[:2], dtype=float) - p[:2]
        n = float(np.linalg.norm(d))
        if 1e-6 < n < NEIGHBOR_R and abs(axis @ d) / n > math.cos(math.pi / 4):
            return grasp_yaw(yaw + math.pi / 2, yaw + math.pi / 2, None)
    return yaw


def release_xy(center_xy: np.ndarray, grasp_offset: np.ndarray, yaw: float, turn: float,
               step: float | None) -> tuple[np.ndarray, float]:
    """(grasp-point xy at release, the hand's turn) that put the held object's CENTER over
    ``center_xy`` turned by ``turn`` (+ k ``step``): the grasp point's offset from the center
    (``grasp_offset``, a handle's) turns with the hand. Of the turns that fit, the one whose hand
    yaw stays within 135 deg of home and whose release point lies nearest the robot (a handle
    pointing away from it can end beyond its reach)."""
    home = -math.pi / 2
    ks = range(-3, 4) if step else (0,)
    best = None
    for k in ks:
        t = turn + k * (step or 0.0)
        c, s = math.cos(t), math.sin(t)
        xy = np.asarray(center_xy, float) + [c * grasp_offset[0] - s * grasp_offset[1],
                                             s * grasp_offset[0] + c * grasp_offset[1]]
        key = (abs(_wrap(yaw + t - home)) > 3 * math.pi / 4, float(np.hypot(*xy)), abs(t))
        if best is None or key < best[0]:
            best = (key, xy, t)
    return best[1], best[2]


def plan_keyframes(env) -> list[tuple[np.ndarray, float]]:
    spec = env.spec
    p_obj = env.object_pose(spec.target)[:3, 3]
    p, obj_yaw, step = env.grasp_point(spec.target)
    cur = _hand_y_yaw(env.ee_pose())
    yaw = grasp_yaw(obj_yaw, cur, step)
    yaw = clear_of_neighbors(yaw, p, [env.object_pose(n)[:3, 3] for n in env.object_names() if n != spec.target])
    grasp = np.asarray(p, dtype=float).copy()
    height = env.object_extent(spec.target)[0][2]
    grasp[2] = max(p[2], env.table_z + height / 2)  # never below resting height
    T_grasp = topdown(grasp, yaw)
    T_pre = topdown(grasp + [0, 0, PRE_GRASP], yaw)
    T_lift = topdown(grasp + [0, 0, LIFT], yaw)
    if spec.task == "pick":
        return [(T_pre, 1.0), (T_grasp, 1.0), (T_grasp, 0.0), (T_lift, 0.0), (T_lift, 0.0), (T_lift, 0.0)]
    b = env.container_top(spec.container)
    xy, turn = release_xy(b[:2], grasp[:2] - p_obj[:2], yaw, *env.place_turn(spec.target, spec.container))
    # onto an object or a peg: the object's bottom (resting on the table at the grasp) STACK_CLEARANCE
    # above its top; into a bin: ABOVE_BIN above the walls
    above = grasp[2] - env.table_z + STACK_CLEARANCE if env.places_onto(spec.container) else ABOVE_BIN
    T_above = topdown(np.r_[xy, b[2] + above], yaw + turn)
    return [(T_pre, 1.0), (T_grasp, 1.0), (T_grasp, 0.0), (T_lift, 0.0), (T_above, 0.0), (T_above, 1.0)]


def expert_waypoints(sim) -> list[tuple[np.ndarray, float]]:
    """Alias used by posevla_ros.nodes.teleop_node (base-frame (T, gripper) waypoints)."""
    return plan_keyframes(sim)


def run_expert(env, kin=None, settle_s: float = 0.3, final_wait_s: float = 1.0, max_time_s: float = 30.0,
               on_step=None, step_dt: float = 0.02) -> bool:
    """Execute plan_keyframes(env) on ``env``; returns env.success() at the end.
    ``on_step(env)`` is called every ``step_dt`` of sim time (e.g. to record frames)."""

    kin = kin or env.kinematics()
    plan = plan_keyframes(env)
    vmax = kin.velocity_limits * VEL_SCALE
    q = env.arm.goal()
    g_prev = 1.0 if env.gripper_opening() > 0.5 else 0.0
    T_prev = None
    t_end = env.time + max_time_s

    def run_until(t_stop: float) -> None:
        while env.time < t_stop and env.time < t_end:
            env.step(step_dt)
            if on_step is not None:
                on_step(env)

    for T, g in plan:
        if T_prev is None or not np.allclose(T, T_prev, atol=1e-6):
            q_new, ok, info = kin.ik(T, q)
            if not ok:
                return False
            times = time_parameterize(np.vstack([q, q_new]), vmax, MAX_ACC, min_dt=MIN_SEGMENT_S)
            env.send_arm_trajectory(env.arm_joint_names, times[1:], q_new[None])
            run_until(env.time + float(times[-1]) + settle_s)
            q = q_new
        if g != g_prev:
            pos = scene.FINGER_OPEN * g + scene.FINGER_CLOSED * (1 - g)
            env.send_gripper_trajectory(env.finger_joint_names, [GRIPPER_SEGMENT_S], [[pos, pos]])
            run_until(env.time + GRIPPER_SEGMENT_S + settle_s)
            g_prev = g
        T_prev = T
    run_until(env.time + final_wait_s)
    return env.success()
