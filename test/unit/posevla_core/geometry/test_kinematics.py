"""Kinematics (pinocchio) vs MuJoCo on the same Panda URDF; IK round trips; timing."""
import numpy as np
import pytest

from posevla_core.geometry.kinematics import RobotKinematics
from posevla_core.sim.mujoco import assets
from posevla_core.geometry.trajectory import interpolate, time_parameterize, trapezoid_time

ARM = [f"panda_joint{i}" for i in range(1, 8)]
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


@pytest.fixture(scope="module")
def kin():
    return RobotKinematics("posevla://panda", "panda_grasptarget", ARM)


def test_urdf_is_cached_and_deterministic():
    p1 = assets.panda_urdf_path()
    text = p1.read_text()
    assert "package://" not in text and "panda_grasptarget" in text
    assert assets.panda_urdf_path() == p1 and p1.read_text() == text
    assert assets.resolve_robot_description("posevla://panda") == p1
    assert assets.resolve_robot_description(str(p1)) == p1
    with pytest.raises(ValueError):
        assets.resolve_robot_description("posevla://nonexistent")


def test_limits(kin):
    assert kin.lower.shape == (7,) and np.all(kin.lower < kin.upper)
    assert np.allclose(kin.velocity_limits, [2.175] * 4 + [2.61] * 3)


def test_fk_matches_mujoco(kin):
    from posevla_core.sim.gl import import_mujoco

    mujoco = import_mujoco()
    m = mujoco.MjModel.from_xml_path(str(assets.panda_mujoco_urdf_path()))
    d = mujoco.MjData(m)
    bid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "panda_grasptarget")
    adr = [m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j)] for j in ARM]
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.uniform(kin.lower, kin.upper)
        d.qpos[:] = 0
        d.qpos[adr] = q
        mujoco.mj_kinematics(m, d)
        T = kin.fk(q)
        assert np.linalg.norm(T[:3, 3] - d.xpos[bid]) < 1e-4
        assert np.allclose(T[:3, :3], d.xmat[bid].reshape(3, 3), atol=1e-4)


def test_ik_round_trip(kin):
    rng = np.random.default_rng(2)
    for _ in range(30):
        q_true = np.clip(HOME + rng.normal(0, 0.5, 7), kin.lower, kin.upper)
        T = kin.fk(q_true)
        q, ok, info = kin.ik(T, HOME)
        assert ok, info
        assert np.all(q >= kin.lower - 1e-9) and np.all(q <= kin.upper + 1e-9)
        T2 = kin.fk(q)
        assert np.linalg.norm(T2[:3, 3] - T[:3, 3]) <= 1e-3
        ang = np.degrees(np.arccos(np.clip((np.trace(T2[:3, :3].T @ T[:3, :3]) - 1) / 2, -1, 1)))
        assert ang <= 0.5


def test_ik_unreachable(kin):
    T = kin.fk(HOME)
    T[:3, 3] = [2.0, 0.0, 0.5]  # 2 m away: the Panda reaches ~0.85 m
    q, ok, info = kin.ik(T, HOME, restarts=2)
    assert not ok and info["pos_err"] > 0.5
    assert np.all(q >= kin.lower - 1e-9) and np.all(q <= kin.upper + 1e-9)
    T[0, 3] = np.nan
    assert kin.ik(T, HOME)[1] is False


def test_time_parameterize():
    qs = np.array([[0.0, 0.0], [1.0, 0.1], [1.0, 0.1], [0.0, 0.0]])
    t = time_parameterize(qs, [1.0, 1.0], [2.0, 2.0], min_dt=0.3)
    assert t[0] == 0 and np.all(np.diff(t) >= 0.3 - 1e-12)
    # 1 rad at vmax 1, amax 2: trapezoid 1/1 + 1/2 = 1.5 s
    assert np.isclose(t[1], 1.5) and np.isclose(t[2] - t[1], 0.3)
    assert np.isclose(trapezoid_time(0.25, 1.0, 1.0), 1.0)  # triangular: 2*sqrt(d/a)
    # sampled profile never exceeds the velocity limit much (cubic interpolation)
    q_mid, v_mid = interpolate(t, qs, 0.75)
    assert 0 < q_mid[0] < 1 and abs(v_mid[0]) <= 1.6
    assert np.allclose(interpolate(t, qs, 99.0)[0], qs[-1])
