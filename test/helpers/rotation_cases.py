"""Hypothesis strategies and helpers shared by the rotation tests (test_symmetry, test_tokens)."""
import numpy as np
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posevla_core.geometry import symmetry

unit = st.floats(-1.0, 1.0, allow_nan=False)
quats = st.tuples(unit, unit, unit, unit).filter(lambda q: np.linalg.norm(q) > 1e-3)
rotations = quats.map(lambda q: Rotation.from_quat(q).as_matrix())


def cylinder_member(t: float, flip: bool) -> np.ndarray:
    """A member of the cylinder's symmetry group: a turn by ``t`` about z, then the flip."""
    g = symmetry._rz(t)
    return symmetry.group("cylinder")[1] @ g if flip else g


def tie_margin(R: np.ndarray, kind: str, R_ref: np.ndarray) -> float:
    """How far canonicalize's best candidate beats the runner-up (trace units; inf for the
    continuous kinds): where two are tied it may pick either, so invariance holds only up to
    that tie. Cylinder: the tie is an axis perpendicular to the reference's."""
    if kind == "cylinder":
        return abs(float(R[:, 2] @ R_ref[:, 2]))
    if kind in ("none", "sphere"):
        return float("inf")
    tr = np.sort(np.einsum("ij,nij->n", R_ref, R[None] @ symmetry.group(kind)))
    return float(tr[-1] - tr[-2])
