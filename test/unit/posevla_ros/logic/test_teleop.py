"""Teleop: key / joy / leader mapping, the Cartesian target, and (with the real Panda
kinematics) that teleop commands go through the executor's safety checks. The episode keys
over DDS are in test/ros/test_teleop_node.py."""
from __future__ import annotations

import math
from test.helpers.teleop import panda  # noqa: F401 - fixtures

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posevla_ros.logic import teleop
from posevla_ros.logic.safety import pose_error


def test_keyboard_mapping_steps_and_events():
    m = teleop.KeyboardMapper(linear_step=0.02, angular_step=0.1)
    np.testing.assert_allclose(m.map("w").dpos, [0.02, 0, 0])
    np.testing.assert_allclose(m.map("d").dpos, [0, -0.02, 0])
    np.testing.assert_allclose(m.map("R").dpos, [0, 0, 0.02])   # case-insensitive letters
    np.testing.assert_allclose(m.map("u").drot, [0, 0, 0.1])
    assert not m.map("u").dpos.any()
    assert m.map(" ").events == ["gripper"] and not m.map(" ").moves
    assert m.map("\r").events == ["start"]
    assert m.map("e").events == ["stop"]
    assert m.map("x").events == ["discard"]
    assert m.map("\x03").events == ["quit"]
    unknown = m.map("7")
    assert not unknown.moves and not unknown.events
    # every binding points at a known event or a valid axis
    for key, b in teleop.KEY_BINDINGS.items():
        assert (b in teleop.EVENTS) if isinstance(b, str) else (0 <= b[0] < 6 and abs(b[1]) == 1.0), key


def test_joy_deadzone_scaling_and_button_edges():
    cfg = teleop.JoyConfig(axes=[1, 0, -1, -1, -1, 3], signs=[1, -1, 1, 1, 1, 1], max_linear_speed=0.2,
                      max_angular_speed=1.0, deadzone=0.1, buttons={"gripper": 0, "start": 2})
    j = teleop.JoyMapper(cfg)
    # axis 1 drives x, axis 0 drives -y, axis 3 drives yaw; below the dead zone -> 0
    cmd = j.map(axes=[0.05, 1.0, 0.0, -0.55], buttons=[0, 0, 0], dt=0.5)
    np.testing.assert_allclose(cmd.dpos, [0.2 * 0.5, 0.0, 0.0])
    np.testing.assert_allclose(cmd.drot, [0, 0, -0.5 * 0.5])  # (0.55-0.1)/0.9 = 0.5
    assert cmd.events == []
    # continuity at the dead-zone edge, full scale at 1
    assert j.velocity([0, 0.1000001, 0, 0])[0] == pytest.approx(0.0, abs=1e-6)
    assert j.velocity([0, -1.0, 0, 0])[0] == pytest.approx(-0.2)
    # buttons fire once per press
    assert j.map([0, 0, 0, 0], [1, 0, 0], 0.1).events == ["gripper"]
    assert j.map([0, 0, 0, 0], [1, 0, 0], 0.1).events == []
    assert j.map([0, 0, 0, 0], [0, 0, 1], 0.1).events == ["start"]
    # short axes / buttons arrays and NaN are harmless
    assert not j.map([float("nan")], [], 0.1).moves
    with pytest.raises(ValueError):
        teleop.JoyConfig(axes=[0, 1, 2])
    with pytest.raises(ValueError):
        teleop.JoyConfig(buttons={"explode": 3})


def _pose(x, y, z):
    M = np.eye(4)
    M[:3, :3] = Rotation.from_euler("xyz", [math.pi, 0, 0]).as_matrix()
    M[:3, 3] = [x, y, z]
    return M


def test_cartesian_target_clamps_step_and_workspace():
    t = teleop.CartesianTarget([0.1, -0.5, 0.0], [0.8, 0.5, 0.7], max_step_m=0.05, max_step_rad=0.2)
    assert t.step(teleop.TeleopCommand(np.array([0.01, 0, 0]))) is None   # no sync yet
    t.sync(_pose(0.5, 0.0, 0.3))
    T1 = t.step(teleop.TeleopCommand(np.array([1.0, 0, 0])))              # clamped to 5 cm
    np.testing.assert_allclose(T1[:3, 3], [0.55, 0, 0.3])
    for _ in range(20):
        T2 = t.step(teleop.TeleopCommand(np.array([0, 0, -0.05])))
    assert T2[2, 3] == pytest.approx(0.0)                            # workspace floor
    R0 = t.T[:3, :3].copy()
    T3 = t.step(teleop.TeleopCommand(drot=np.array([0, 0, 1.0])))          # clamped to 0.2 rad about base z
    ang = Rotation.from_matrix(T3[:3, :3] @ R0.T).as_rotvec()
    np.testing.assert_allclose(ang, [0, 0, 0.2], atol=1e-9)
    np.testing.assert_allclose(T3[:3, 3], T2[:3, 3])                 # rotation about the ee position
    before = t.T.copy()
    t.step(teleop.TeleopCommand(np.array([np.nan, 0, 0])))
    np.testing.assert_allclose(t.T, before)
    assert t.toggle_gripper() == 0.0 and t.toggle_gripper() == 1.0


def test_leader_mapping():
    cfg = teleop.LeaderConfig(["l1", "l2"], signs=[1, -1], offsets=[0.1, 0.0], leader_gripper_joint="lg",
                         leader_gripper_closed=0.0, leader_gripper_open=0.8)
    m = teleop.LeaderMapper(cfg)
    q, g, why = m.map(["lg", "l2", "l1"], [0.4, 0.5, 1.0])
    np.testing.assert_allclose(q, [1.1, -0.5])
    assert g == pytest.approx(0.5) and why == ""
    q, g, why = m.map(["l1"], [0.0])
    assert q is None and "l2" in why
    q, _, why = m.map(["l1", "l2"], [0.0, float("inf")])
    assert q is None and "finite" in why
    with pytest.raises(ValueError):
        teleop.LeaderConfig(["a", "b"], signs=[1.0])


def test_joint_helpers():
    from types import SimpleNamespace

    from posevla_ros.ros_io import conversions as conv

    js = SimpleNamespace(name=["b", "a", "f1", "f2"], position=[2.0, 1.0, 0.02, 0.02], velocity=[0.5, float("nan")])
    np.testing.assert_allclose(conv.joint_vector(js, ["a", "b"]), [1.0, 2.0])
    assert conv.joint_vector(js, ["c"]) is None
    assert conv.joint_vector(js, ["b"], "velocity") == [0.5]
    assert conv.joint_vector(js, ["a"], "velocity") is None and conv.joint_vector(js, ["f1"], "velocity") is None
    assert conv.gripper_opening(js, ["f1", "f2"], 0.04, 0.0) == pytest.approx(0.5)
    assert conv.gripper_opening(js, ["zz"], 0.04, 0.0) is None


def test_raw_terminal_reads_keys_from_a_pipe():
    import os

    r, w = os.pipe()
    os.write(w, b"wq")
    with os.fdopen(r, "rb", buffering=0) as stream, teleop.RawTerminal(stream) as term:
        keys = [term.read_key(1.0), term.read_key(1.0), term.read_key(0.01)]
    os.close(w)
    assert keys == ["w", "q", ""]


# ------------------------------------------------------------ through the executor's checks
def _core(kin, p, sent):
    from posevla_ros.logic.planning import ExecutorCore
    from posevla_ros.logic.teleop_drivers import TeleopCore

    p = dict(p, max_prediction_age_s=0.0)
    clock = [0.0]
    core = TeleopCore(ExecutorCore(kin, p), sent.append, kin.fk, p["workspace.min"], p["workspace.max"],
                      command_dt=0.3, clock=lambda: clock[0])
    return core, clock


def test_teleop_commands_use_executor_checks(panda):
    kin, p = panda
    sent = []
    core, clock = _core(kin, p, sent)
    q0 = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])
    assert core.apply(teleop.TeleopCommand(np.array([0.01, 0, 0]))) is None   # no joint state yet
    core.set_joint_state(q0)
    T0 = kin.fk(q0)
    res = core.apply(teleop.TeleopCommand(np.array([0.02, 0.0, -0.01])))
    assert res.ok, res.reason
    plan = sent[-1]
    dp, ang = pose_error(kin.fk(plan.positions[-1]), res.targets[0])
    assert dp <= 0.005 and ang <= math.radians(3)
    np.testing.assert_allclose(res.targets[0][:3, 3], T0[:3, 3] + [0.02, 0, -0.01], atol=1e-9)
    assert plan.grippers[-1] == 1.0
    # gripper toggle alone sends a plan that keeps the pose and closes the gripper
    clock[0] += 0.1
    res = core.apply(teleop.TeleopCommand(events=["gripper"]))
    assert res.ok and sent[-1].grippers[-1] == 0.0
    # the executor's stop gate blocks teleop too
    core.executor.gate.stop()
    n = len(sent)
    res = core.apply(teleop.TeleopCommand(np.array([0.01, 0, 0])))
    assert not res.ok and "stopped" in res.reason and len(sent) == n
    core.executor.gate.resume()


def test_teleop_refused_target_snaps_back(panda):
    kin, p = panda
    sent = []
    core, clock = _core(kin, p, sent)
    q0 = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])
    core.set_joint_state(q0)
    # a non-finite target is refused by the executor's finite check (NaN through send_targets)
    bad = kin.fk(q0)
    bad[0, 3] = np.nan
    res = core.send_targets([bad], [1.0])
    assert not res.ok and not sent
    # outside the workspace box: the executor refuses, nothing is sent
    far = kin.fk(q0)
    far[:3, 3] = [2.0, 0.0, 0.3]
    res = core.send_targets([far], [1.0])
    assert not res.ok and "workspace" in res.reason and not sent
    # a rotation step the joint-jump check refuses: the target returns to the last good pose
    core.target.max_step_rad = 3.0
    core.executor.limits.max_joint_jump = 0.05
    before = core.target.T.copy() if core.target.T is not None else kin.fk(q0)
    res = core.apply(teleop.TeleopCommand(drot=np.array([0.0, 0.0, 2.5])))
    assert res is not None and not res.ok and not sent
    np.testing.assert_allclose(core.target.T, before)


def test_leader_follow_goes_through_ik(panda):
    kin, p = panda
    sent = []
    core, _ = _core(kin, p, sent)
    q0 = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])
    core.set_joint_state(q0)
    q_leader = q0 + np.array([0.1, 0.05, 0.0, 0.05, 0.0, -0.05, 0.0])
    res = core.follow(q_leader, 0.25)
    assert res.ok, res.reason
    dp, _ = pose_error(kin.fk(sent[-1].positions[-1]), kin.fk(q_leader))
    assert dp < 0.005 and sent[-1].grippers[-1] == pytest.approx(0.25)
