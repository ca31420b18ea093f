"""Camera placement in the MuJoCo scene (posevla_core/sim/camera.py): the pose set is the pose
reported, K follows fov and resolution, orbits and bad values (rendering with a placed
camera: test/integration/sim/test_sim_camera_render.py)."""
import math

import numpy as np
import pytest

from posevla_core.sim.camera import (NOMINAL_AZIMUTH_DEG, CameraPlacement, Orbit, look_at_optical, matrix_to_pose7,
                                     pose7_to_matrix)

pytest.importorskip("mujoco")


def test_orbit_zero_is_the_nominal_pose():
    from posevla_core.sim.camera import nominal_camera_pose

    np.testing.assert_allclose(Orbit().matrix(), nominal_camera_pose(), atol=1e-9)
    assert 30 < NOMINAL_AZIMUTH_DEG < 35


@pytest.mark.parametrize("orbit", [Orbit(azimuth_deg=60), Orbit(azimuth_deg=-45, elevation_deg=70),
                                   Orbit(distance_m=1.6, roll_deg=10), Orbit(elevation_deg=20, roll_deg=-10)])
def test_orbit_geometry(orbit):
    from posevla_core.sim.camera import CAMERA_NOMINAL_TARGET

    T = orbit.matrix()
    R, p = T[:3, :3], T[:3, 3]
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(R), 1.0)
    d = p - CAMERA_NOMINAL_TARGET
    assert np.isclose(np.linalg.norm(d), orbit.distance_m)
    assert np.isclose(math.degrees(math.asin(d[2] / orbit.distance_m)), orbit.elevation_deg)
    az = math.degrees(math.atan2(d[1], d[0])) - NOMINAL_AZIMUTH_DEG
    assert np.isclose((az - orbit.azimuth_deg + 180) % 360 - 180, 0, atol=1e-9)
    np.testing.assert_allclose(R[:, 2], -d / orbit.distance_m, atol=1e-12)   # optical z looks at the target
    # roll: the angle from world-down (projected onto the image plane) to image-down (y), about the optical axis
    down = np.array([0, 0, -1.0]) - R[:, 2] * (-R[2, 2])
    ang = math.degrees(math.atan2(np.dot(np.cross(down, R[:, 1]), R[:, 2]), np.dot(R[:, 1], down)))
    assert np.isclose(ang, orbit.roll_deg, atol=1e-6)


def test_pose7_round_trip_and_parse():
    T = Orbit(azimuth_deg=25, roll_deg=10).matrix()
    np.testing.assert_allclose(pose7_to_matrix(matrix_to_pose7(T)), T, atol=1e-12)
    text = CameraPlacement.format_pose(T)
    c = CameraPlacement.parse(text, fov_deg=60)
    np.testing.assert_allclose(c.matrix(), T, atol=1e-5)
    assert c.fov_deg == 60.0 and c.placed
    assert CameraPlacement.parse("", 0, 0, 0) is None
    assert not CameraPlacement.parse("", 70).placed


@pytest.mark.parametrize("bad, match", [
    (dict(pose="1,2,3"), "7 numbers"), (dict(pose="1,2,3,0,0,0,x"), "7 numbers"),
    (dict(pose="1,2,3,0,0,0,0"), "zero length"), (dict(pose="1,2,3,0,0,0,nan"), "finite"),
    (dict(fov_deg=190), "field of view"), (dict(width=5), "width")])
def test_bad_values_are_one_line(bad, match):
    with pytest.raises(ValueError, match=match) as e:
        CameraPlacement.parse(**bad)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="not both"):
        CameraPlacement(pose=(1, 0, 0, 0, 0, 0, 1), orbit=Orbit())
    with pytest.raises(ValueError, match="elevation"):
        Orbit(elevation_deg=90)
    with pytest.raises(ValueError, match="straight"):
        look_at_optical([0.5, 0, 1], [0.5, 0, 0])
