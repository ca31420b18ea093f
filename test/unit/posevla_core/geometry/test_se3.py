"""The one home of pose math (se3): rotation error, the packed 7-vector pose, pose interpolation."""
import math

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.geometry import se3
from posevla_ros.logic import safety


def test_rotation_angle_is_the_geodesic_angle_and_accurate_near_zero():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = Rotation.random(2, random_state=int(rng.integers(1 << 30)))
        ang = se3.rotation_angle(a.as_matrix(), b.as_matrix())
        R = a.as_matrix().T @ b.as_matrix()
        assert math.isclose(ang, math.acos(np.clip((np.trace(R) - 1) / 2, -1, 1)), abs_tol=1e-6)
        assert math.isclose(ang, se3.rotation_angle_between(a.as_quat(), b.as_quat()), abs_tol=1e-9)
    tiny = Rotation.from_rotvec([1e-9, 0, 0]).as_matrix()
    assert math.isclose(se3.rotation_angle(np.eye(3), tiny), 1e-9, rel_tol=1e-3)   # arccos gives 0 here


def test_pose_error_is_shared_by_safety():
    assert safety.pose_error is se3.pose_error
    T = se3.make_T([0.1, 0.2, 0.3], Rotation.from_euler("z", 30, degrees=True).as_quat())
    dp, ang = se3.pose_error(np.eye(4), T)
    assert math.isclose(dp, math.sqrt(0.14)) and math.isclose(ang, math.radians(30))


def test_pose7_round_trip_batched_with_positive_w():
    rng = np.random.default_rng(1)
    Ts = np.stack([se3.make_T(rng.normal(size=3), q) for q in Rotation.random(5, random_state=2).as_quat()])
    p7 = se3.T_to_pose7(Ts)
    assert p7.shape == (5, 7) and np.all(p7[:, 6] >= 0)
    np.testing.assert_allclose(se3.pose7_to_T(p7), Ts, atol=1e-12)
    np.testing.assert_allclose(se3.T_to_pose7(Ts[0]), np.r_[se3.split_T(Ts[0])], atol=1e-12)


def test_interpolate_poses_lerp_slerp_and_clamp():
    T0 = np.eye(4)
    T1 = se3.make_T([1.0, 0, 0], Rotation.from_euler("z", 90, degrees=True).as_quat())
    out = se3.interpolate_poses([0.0, 1.0], np.stack([T0, T1]), [-1.0, 0.5, 2.0])
    np.testing.assert_allclose(out[0], T0, atol=1e-12)
    np.testing.assert_allclose(out[2], T1, atol=1e-12)
    assert math.isclose(out[1][0, 3], 0.5)
    assert math.isclose(se3.rotation_angle(np.eye(3), out[1][:3, :3]), math.radians(45), abs_tol=1e-9)
