"""Kinematic URDFs of robosuite's arms carrying the PandaGripper, exported ONCE from robosuite's
own compiled MJCF and shipped in config/robots/robosuite/<arm>.urdf, so the executor, the
teleop expert and the evaluator plan with exactly the chain the robosuite env simulates.

    python -m posevla_core.sim.robosuite.export_urdfs UR5e Kinova3 IIWA   # (re)writes the shipped files
    text = export_urdf(env)                                       # env: a RobosuiteEnv on that arm

Why a URDF and not ``pinocchio.buildModelFromMJCF``: robosuite assembles arm + gripper + mount
in Python (there is no MJCF file of the arm with the gripper on it), and the executor's config
contract is a URDF. The export walks the compiled MjModel from ``robot0_base`` to the
PandaGripper's body: each body becomes a link, each hinge a revolute joint (origin = the body's
pos / quat in its parent, axis = MuJoCo's joint axis), bodies without joints fixed joints.
No meshes (kinematics only). What MJCF does not hold is written from the makers' data sheets:
velocity limits (``VELOCITY_LIMITS``). MuJoCo's unlimited hinges (Kinova3's joints 1, 3, 5, 7)
become revolute +-2 pi (pinocchio's ``continuous`` joints have 2 coordinates).

Frames, the same on every arm (they are the PandaGripper's, not the arm's):
``<arm>_hand`` = the gripper body turned +90 deg about z (on the Panda robosuite's
``robot0_right_hand``, our ``panda_hand``: fingers close along its y), and ``<arm>_grasptarget``
= hand + GRASPTARGET_OFFSET along its z (our ``panda_grasptarget``). The fingers are
``panda_finger_joint1/2`` (prismatic along the hand's +-y, 0 .. 0.04 m).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.paths import share_dir
from posevla_core.sim.mujoco.assets import GRASPTARGET_OFFSET

GRIPPER_BODY = "gripper0_right_right_gripper"   # the PandaGripper's root body, on every arm
HAND_FROM_GRIPPER = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])   # Rz(+90 deg)
FINGER_ORIGIN_Z = 0.0584      # m, the Panda URDF's finger joints on panda_hand (visual only here)
# rad/s, makers' data sheets (MJCF has no velocity limits): UR5e 180 deg/s every joint;
# Kinova Gen3 79.64 deg/s (joints 1-4) and 69.91 deg/s (5-7); KUKA LBR iiwa 14 R820
VELOCITY_LIMITS = {
    "UR5e": [3.1416] * 6,
    "Kinova3": [1.3963] * 4 + [1.2218] * 3,
    "IIWA": [1.4835, 1.4835, 1.7453, 1.3090, 2.2689, 2.3562, 2.3562],
}


def urdf_path(arm: str) -> Path:
    """The shipped URDF of ``arm`` (config/robots/robosuite/<arm lower>.urdf)."""
    return share_dir() / "config" / "robots" / "robosuite" / f"{arm.lower()}.urdf"


def _origin(pos, quat_wxyz) -> str:
    w, x, y, z = quat_wxyz
    with warnings.catch_warnings():    # gimbal lock (pitch +-90 deg): scipy picks yaw 0, still exact
        warnings.simplefilter("ignore", UserWarning)
        rpy = Rotation.from_quat([x, y, z, w]).as_euler("xyz")   # extrinsic xyz = URDF's rpy
    fmt = lambda v: " ".join(f"{float(a):.9g}" if abs(a) > 1e-12 else "0" for a in v)  # noqa: E731
    return f'<origin xyz="{fmt(pos)}" rpy="{fmt(rpy)}"/>'


def export_urdf(env) -> str:
    """The URDF text of ``env``'s arm (a RobosuiteEnv): base_link, the arm chain, <arm>_hand,
    <arm>_grasptarget, the two finger joints; joint names are the env's ``arm_joint_names``."""
    import mujoco  # the env already runs MuJoCo; imported here so the URDF paths cost nothing

    m, arm = env.model, env.arm_spec
    name = lambda kind, i: mujoco.mj_id2name(m, kind, i)  # noqa: E731
    body_id = lambda n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n)  # noqa: E731
    base, grip = body_id("robot0_base"), body_id(GRIPPER_BODY)
    chain = [grip]
    while chain[-1] != base:
        chain.append(int(m.body_parentid[chain[-1]]))
        if chain[-1] == 0:
            raise RuntimeError(f"{GRIPPER_BODY} does not hang below robot0_base")
    chain = chain[::-1]
    ours = dict(zip(env.rs_arm_joints, env.arm_joint_names))
    vel = dict(zip(env.arm_joint_names, VELOCITY_LIMITS.get(arm.name, [2.0] * len(ours))))
    effort = {name(mujoco.mjtObj.mjOBJ_JOINT, int(m.actuator_trnid[a, 0])): float(m.actuator_ctrlrange[a, 1])
              for a in range(m.nu) if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT}
    link = {base: "base_link"}
    out = ['<?xml version="1.0"?>',
           f"<!-- robosuite {arm.name} + PandaGripper, exported from robosuite's compiled MJCF by",
           f"     python -m posevla_core.sim.robosuite.export_urdfs {arm.name} (do not edit; kinematics only) -->",
           f'<robot name="robosuite_{arm.name.lower()}">', '  <link name="base_link"/>']
    for b in chain[1:]:
        link[b] = name(mujoco.mjtObj.mjOBJ_BODY, b).removeprefix("robot0_").removeprefix("gripper0_right_")
        link[b] = f"{arm.name.lower()}_{link[b]}"
        joints = [j for j in range(m.njnt) if m.jnt_bodyid[j] == b]
        out.append(f'  <link name="{link[b]}"/>')
        parent = link[int(m.body_parentid[b])]
        origin = _origin(m.body_pos[b], m.body_quat[b])
        if not joints:
            out.append(f'  <joint name="{link[b]}_fixed" type="fixed"><parent link="{parent}"/>'
                       f'<child link="{link[b]}"/>{origin}</joint>')
            continue
        (j,) = joints
        rs_name = name(mujoco.mjtObj.mjOBJ_JOINT, j)
        if m.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE or np.abs(m.jnt_pos[j]).max() > 1e-9:
            raise RuntimeError(f"{rs_name}: only hinges at their body's origin are exported")
        lo, hi = m.jnt_range[j] if m.jnt_limited[j] else (-2 * math.pi, 2 * math.pi)
        ax = " ".join(f"{float(a):.9g}" for a in m.jnt_axis[j])
        our = ours[rs_name]
        out.append(f'  <joint name="{our}" type="revolute"><parent link="{parent}"/><child link="{link[b]}"/>'
                   f'{origin}<axis xyz="{ax}"/><limit lower="{lo:.9g}" upper="{hi:.9g}" '
                   f'effort="{effort.get(rs_name, 100.0):.9g}" velocity="{vel[our]:.9g}"/></joint>')
    hand, tip = f"{arm.name.lower()}_hand", f"{arm.name.lower()}_grasptarget"
    rz90 = Rotation.from_matrix(HAND_FROM_GRIPPER).as_quat()
    out += [f'  <link name="{hand}"/>',
            f'  <joint name="{hand}_fixed" type="fixed"><parent link="{link[grip]}"/><child link="{hand}"/>'
            f'{_origin([0, 0, 0], [rz90[3], *rz90[:3]])}</joint>',
            f'  <link name="{tip}"/>',
            f'  <joint name="{tip}_hand" type="fixed"><parent link="{hand}"/><child link="{tip}"/>'
            f'<origin xyz="0 0 {GRASPTARGET_OFFSET}" rpy="0 0 0"/></joint>']
    for k, (finger, sign) in enumerate((("leftfinger", 1), ("rightfinger", -1)), start=1):
        out += [f'  <link name="{arm.name.lower()}_{finger}"/>',
                f'  <joint name="panda_finger_joint{k}" type="prismatic"><parent link="{hand}"/>'
                f'<child link="{arm.name.lower()}_{finger}"/><origin xyz="0 0 {FINGER_ORIGIN_Z}" rpy="0 0 0"/>'
                f'<axis xyz="0 {sign} 0"/><limit lower="0" upper="0.04" effort="20" velocity="0.2"/></joint>']
    out.append("</robot>")
    return "\n".join(out) + "\n"
