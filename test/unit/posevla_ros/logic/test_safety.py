"""posevla_ros.logic.safety: each check passes good input and names the problem in bad input."""
import math

import numpy as np
import pytest

from posevla_core.geometry import se3
from posevla_core.poses import Pose, Prediction, Waypoint
from posevla_ros.logic import safety


@pytest.fixture
def limits():
    return safety.SafetyLimits([0.1, -0.5, 0.0], [0.8, 0.5, 0.7], max_joint_jump=0.5,
                               max_prediction_age_s=1.0)


def _pred(positions, grippers=None, dt=0.5, valid=True):
    grippers = grippers or [1.0] * len(positions)
    wps = [Waypoint(Pose(p, [0, 0, 0, 1]), g) for p, g in zip(positions, grippers)]
    return Prediction("cube", (0.5, 0.5), Pose([0, 0, 1], [0, 0, 0, 1]), wps, waypoint_dt=dt, valid=valid)


def test_limits_validate():
    with pytest.raises(ValueError, match="must be <"):
        safety.SafetyLimits([0, 0, 0], [1, -1, 1])
    with pytest.raises(ValueError, match="finite"):
        safety.SafetyLimits([0, 0, np.nan], [1, 1, 1])


def test_stale(limits):
    assert safety.check_stale(0.5, limits) is None
    assert "stale" in safety.check_stale(1.5, limits)
    assert "stale" in safety.check_stale(float("nan"), limits)
    limits.max_prediction_age_s = 0.0  # disabled
    assert safety.check_stale(100.0, limits) is None


def test_prediction_finite():
    assert safety.check_prediction_finite(_pred([[0.4, 0, 0.3]])) is None
    assert "no waypoints" in safety.check_prediction_finite(_pred([]))
    assert "invalid" in safety.check_prediction_finite(_pred([[0.4, 0, 0.3]], valid=False))
    assert "waypoint 1" in safety.check_prediction_finite(_pred([[0.4, 0, 0.3], [np.nan, 0, 0.3]]))
    assert "gripper" in safety.check_prediction_finite(_pred([[0.4, 0, 0.3]], grippers=[math.inf]))
    assert "waypoint_dt" in safety.check_prediction_finite(_pred([[0.4, 0, 0.3]], dt=float("nan")))
    p = _pred([[0.4, 0, 0.3]])
    p.waypoints[0].pose.quat_xyzw = np.zeros(4)
    assert "waypoint 0" in safety.check_prediction_finite(p)


def test_workspace(limits):
    assert safety.check_workspace([[0.4, 0.0, 0.3], [0.79, 0.49, 0.01]], limits) is None
    r = safety.check_workspace([[0.4, 0.0, 0.3], [0.9, 0.0, 0.3]], limits)
    assert "waypoint 1" in r and "outside the workspace" in r
    assert safety.check_workspace([[0.4, 0.0, -0.01]], limits) is not None
    assert "non-finite" in safety.check_workspace([[0.4, np.inf, 0.3]], limits)


def test_joint_limits_and_jumps(limits):
    lo, hi = np.array([-1.0, -2.0]), np.array([1.0, 2.0])
    assert safety.check_joint_limits([[0.0, 0.0], [1.0, -2.0]], lo, hi) is None
    r = safety.check_joint_limits([[0.0, 0.0], [0.0, 2.1]], lo, hi, ["a", "b"])
    assert r.startswith("point 1: b")
    assert safety.check_joint_jumps([0, 0], [[0.4, 0.0], [0.8, -0.4]], limits) is None
    r = safety.check_joint_jumps([0, 0], [[0.4, 0.0], [0.4, 0.95]], limits, ["a", "b"])
    assert "on b into point 1" in r
    assert "into point 0" in safety.check_joint_jumps([0, 0], [[0.6, 0.0]], limits)


def test_fk_match(limits):
    target = se3.make_T([0.4, 0, 0.3], [0, 0, 0, 1])
    near = se3.make_T([0.404, 0, 0.3], se3.Rotation.from_euler("z", 2.9, degrees=True).as_quat())
    far = se3.make_T([0.4, 0.006, 0.3], [0, 0, 0, 1])
    twisted = se3.make_T([0.4, 0, 0.3], se3.Rotation.from_euler("x", 3.2, degrees=True).as_quat())
    table = {0: near, 1: far, 2: twisted}
    fk = lambda q: table[int(q[0])]  # noqa: E731 - FK of a fake arm whose q[0] picks a pose
    assert safety.check_fk_match(fk, [[0]], [target], limits) is None
    assert "6.0 mm" in safety.check_fk_match(fk, [[0], [1]], [target, target], limits)
    assert "3.20 deg" in safety.check_fk_match(fk, [[2]], [target], limits)


def test_transforms():
    T = safety.static_transform([1, 2, 3], [0, 0, 0, 2])  # normalized
    assert np.allclose(T[:3, :3], np.eye(3)) and np.allclose(T[:3, 3], [1, 2, 3])
    with pytest.raises(ValueError):
        safety.static_transform([1, 2, np.nan], [0, 0, 0, 1])
    with pytest.raises(ValueError):
        safety.static_transform([1, 2, 3], [0, 0, 0, 0])
    assert safety.check_transform(T) is None
    assert safety.check_transform(None) is not None
    bad = T.copy()
    bad[:3, :3] *= 2
    assert "rotation" in safety.check_transform(bad)


def test_gate():
    g = safety.SafetyGate()
    assert g.check() is None
    g.stop()
    assert g.stopped and "stopped" in g.check()
    g.resume()
    assert g.check() is None
