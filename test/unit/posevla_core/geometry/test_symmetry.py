"""Object symmetries: canonical labels and symmetry-aware rotation errors (symmetry.py)."""
import itertools
from test.helpers.rotation_cases import cylinder_member, rotations, tie_margin

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy.spatial.transform import Rotation

from posevla_core.geometry import symmetry

angles = st.floats(-np.pi, np.pi, allow_nan=False)
FINITE = ("cube", "square")


def geodesic_deg(A, B) -> float:
    return float(np.degrees((Rotation.from_matrix(A).inv() * Rotation.from_matrix(B)).magnitude()))


def test_group_sizes_and_closure():
    assert len(symmetry.group("cube")) == 24 and len(symmetry.group("square")) == 4
    for kind in FINITE:
        G = symmetry.group(kind)
        for a, b in itertools.product(G, G):
            assert np.isclose(np.abs(G - a @ b).sum(axis=(1, 2)), 0).any()
    with pytest.raises(ValueError, match="unknown symmetry"):
        symmetry.group("dodecahedron")


@settings(max_examples=150, deadline=None)
@given(rotations, rotations, st.sampled_from(symmetry.KINDS))
def test_canonicalize_idempotent_and_equivalent(R, R_ref, kind):
    C = symmetry.canonicalize(R, kind, R_ref)
    assert np.allclose(symmetry.canonicalize(C, kind, R_ref), C, atol=1e-9)
    assert np.allclose(C.T @ C, np.eye(3), atol=1e-9) and np.linalg.det(C) == pytest.approx(1.0)
    # The canonical rotation is the same pose: error 0 modulo the symmetry.
    assert symmetry.rotation_error_deg(C, R, kind) == pytest.approx(0.0, abs=1e-5)


@settings(max_examples=100, deadline=None)
@given(rotations, rotations, st.sampled_from(FINITE), st.data())
def test_canonicalize_invariant_under_finite_groups(R, R_ref, kind, data):
    assume(tie_margin(R, kind, R_ref) > 1e-6)
    G = symmetry.group(kind)
    g = G[data.draw(st.integers(0, len(G) - 1))]
    C = symmetry.canonicalize(R, kind, R_ref)
    assert np.allclose(symmetry.canonicalize(R @ g, kind, R_ref), C, atol=1e-9)
    # ...and it is the member closest to the reference.
    assert geodesic_deg(R_ref, C) <= min(geodesic_deg(R_ref, R @ h) for h in G) + 1e-6


@settings(max_examples=100, deadline=None)
@given(rotations, rotations, angles, st.booleans())
def test_canonicalize_invariant_under_cylinder(R, R_ref, t, flip):
    assume(tie_margin(R, "cylinder", R_ref) > 1e-6)
    C = symmetry.canonicalize(R, "cylinder", R_ref)
    assert np.allclose(symmetry.canonicalize(R @ cylinder_member(t, flip), "cylinder", R_ref), C, atol=1e-8)
    assert C[:, 2] @ R_ref[:, 2] > 0                   # the axis flipped towards the reference


@settings(max_examples=150, deadline=None)
@given(rotations, rotations)
def test_rotation_error_without_symmetry_is_scipy_geodesic(A, B):
    assert symmetry.rotation_error_deg(A, B, "none") == pytest.approx(geodesic_deg(A, B), abs=1e-5)


@settings(max_examples=100, deadline=None)
@given(rotations, rotations, st.sampled_from(FINITE))
def test_rotation_error_is_minimum_over_group(A, B, kind):
    brute = min(geodesic_deg(A, B @ g) for g in symmetry.group(kind))
    assert symmetry.rotation_error_deg(A, B, kind) == pytest.approx(brute, abs=1e-5)
    assert symmetry.rotation_error_deg(A, B, kind) <= symmetry.rotation_error_deg(A, B, "none") + 1e-6


@settings(max_examples=50, deadline=None)
@given(rotations, rotations)
def test_cylinder_error_is_minimum_over_its_continuous_group(A, B):
    # The analytic value (angle between the axes, up to the flip) is a lower bound of every
    # member's geodesic and is approached by a dense sampling of the group.
    G = np.array([cylinder_member(t, f) for t in np.linspace(-np.pi, np.pi, 721) for f in (False, True)])
    brute = float(np.degrees((Rotation.from_matrix(A).inv() * Rotation.from_matrix(B @ G)).magnitude()).min())
    err = symmetry.rotation_error_deg(A, B, "cylinder")
    assert err <= brute + 1e-4 and brute - err < 0.5    # arccos near 1 is good to ~1e-6 degrees
    for t, f in ((0.3, False), (2.0, True)):
        assert symmetry.rotation_error_deg(A @ cylinder_member(t, f), A, "cylinder") == pytest.approx(0, abs=1e-5)


def test_sphere_error_is_zero():
    assert symmetry.rotation_error_deg(Rotation.random(random_state=1).as_matrix(), np.eye(3), "sphere") == 0.0


CUBE_POINTS = np.array(list(itertools.product((-0.02, 0.02), repeat=3))
                       + [s * 0.02 * e for e in np.eye(3) for s in (-1, 1)])       # corners and face centers
SQUARE_POINTS = np.array([[x, y, z] for x, y in ((0.1, 0.1), (-0.1, 0.1), (-0.1, -0.1), (0.1, -0.1),
                                                  (0.1, 0.0), (0.0, 0.1), (-0.1, 0.0), (0.0, -0.1))
                          for z in (0.0, 0.05)])


@settings(max_examples=50, deadline=None)
@given(rotations, st.tuples(*[st.floats(-0.5, 0.5)] * 3), st.data())
def test_add_s_zero_under_symmetry(R, p, data):
    for kind, pts in (("cube", CUBE_POINTS), ("square", SQUARE_POINTS)):
        G = symmetry.group(kind)
        g = G[data.draw(st.integers(0, len(G) - 1))]
        T, Tg = np.eye(4), np.eye(4)
        T[:3, :3], T[:3, 3] = R, p
        Tg[:3, :3], Tg[:3, 3] = R @ g, p
        assert symmetry.add_s(pts, Tg, T) == pytest.approx(0.0, abs=1e-9)


def test_add_s_is_a_distance_for_wrong_poses():
    T = np.eye(4)
    Tp = np.eye(4)
    Tp[:3, 3] = [0.01, 0, 0]
    # A 1 cm shift of a point set whose points are 4 cm apart: every point is 1 cm from its copy.
    assert symmetry.add_s(CUBE_POINTS, Tp, T) == pytest.approx(0.01, abs=1e-9)
    # A non-symmetric turn is not forgiven (ADD-S > 0), and ADD-S never exceeds ADD.
    Tp = np.eye(4)
    Tp[:3, :3] = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    add = float(np.linalg.norm(CUBE_POINTS @ Tp[:3, :3].T - CUBE_POINTS, axis=1).mean())
    assert 0.0 < symmetry.add_s(CUBE_POINTS, Tp, T) <= add
