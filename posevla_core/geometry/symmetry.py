"""Object symmetries: which rotations of an object look the same, canonical labels, and
rotation errors that do not punish a correct pose of a symmetric object.

A cube turned by 90 degrees about any face axis is the same cube, so its "rotation" is only
defined up to the cube's 24-element rotation group G: R and R g (g in G) are the same pose.
Training on raw simulator rotations then asks the model for a number it cannot see. Two fixes,
both here:

* ``canonicalize``: of all equivalent rotations R g, the one closest to a fixed reference
  (the tokenizer's rotation reference). The label becomes a function of what the image shows.
* ``rotation_error_deg``: the geodesic angle minimized over the group (for the continuous
  cylinder group: the angle between the axes, up to the flip; for a sphere: 0).

Kinds: ``none`` (no symmetry), ``cube`` (24 rotations), ``cylinder`` (any rotation about the
object's z axis, and the flip z -> -z), ``square`` (4 rotations about z: an open square bin),
``sphere`` (every rotation).
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

KINDS = ("none", "cube", "cylinder", "square", "sphere")


@lru_cache(maxsize=None)
def group(kind: str) -> np.ndarray:
    """(n, 3, 3) rotation matrices of a finite symmetry group; the cylinder returns its finite
    part (identity and the flip about x), the continuous part is handled analytically."""
    if kind in ("none", "sphere"):
        return np.eye(3)[None]
    if kind == "cube":
        mats = []
        for perm in itertools.permutations(range(3)):
            for signs in itertools.product((1, -1), repeat=3):
                m = np.zeros((3, 3))
                m[range(3), perm] = signs
                if np.linalg.det(m) > 0:
                    mats.append(m)
        return np.array(mats)
    if kind == "square":
        return np.array([_rz(k * np.pi / 2) for k in range(4)])
    if kind == "cylinder":
        return np.array([np.eye(3), np.diag([1.0, -1.0, -1.0])])
    raise ValueError(f"unknown symmetry {kind!r}; known: {KINDS}")


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _angle(R: np.ndarray) -> np.ndarray:
    """Rotation angle(s) of matrices (..., 3, 3), radians, numerically safe."""
    tr = np.trace(R, axis1=-2, axis2=-1)
    return np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0))


def canonicalize(R: np.ndarray, kind: str, R_ref: np.ndarray | None = None) -> np.ndarray:
    """The rotation equivalent to ``R`` under ``kind`` that is closest to ``R_ref`` (default
    identity). Idempotent, and equal for every member of R's equivalence class."""
    R = np.asarray(R, dtype=float)
    R_ref = np.eye(3) if R_ref is None else np.asarray(R_ref, dtype=float)
    if kind == "none":
        return R.copy()
    if kind == "sphere":
        return R_ref.copy()
    if kind == "cylinder":
        # The axis is all that is defined: flip it towards the reference's z, then take the
        # rotation about it that is closest to the reference (maximize trace(R_ref^T R Rz(t))).
        if R[:, 2] @ R_ref[:, 2] < 0:
            R = R @ group("cylinder")[1]
        M = R_ref.T @ R
        t = np.arctan2(M[1, 0] - M[0, 1], M[0, 0] + M[1, 1])
        return R @ _rz(-t)
    cands = R[None] @ group(kind)                                        # (n, 3, 3)
    best = int(np.argmax(np.einsum("ij,nij->n", R_ref, cands)))          # max trace(R_ref^T C)
    return cands[best]


def rotation_error_deg(R_pred: np.ndarray, R_true: np.ndarray, kind: str) -> float:
    """Geodesic angle between two rotations, minimized over the symmetry group (degrees)."""
    R_pred, R_true = np.asarray(R_pred, dtype=float), np.asarray(R_true, dtype=float)
    if kind == "sphere":
        return 0.0
    if kind == "cylinder":
        c = abs(float(R_pred[:, 2] @ R_true[:, 2]))
        return float(np.degrees(np.arccos(min(1.0, c))))
    D = R_pred.T @ R_true
    return float(np.degrees(_angle(D[None] @ group(kind)).min()))


def add_s(points: np.ndarray, T_pred: np.ndarray, T_true: np.ndarray) -> float:
    """ADD-S: mean distance from each model point under the true pose to the closest model
    point under the predicted pose (meters): the symmetric-object distance of PoseCNN."""
    P = np.asarray(points, dtype=float)
    a = P @ T_true[:3, :3].T + T_true[:3, 3]
    b = P @ T_pred[:3, :3].T + T_pred[:3, 3]
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return float(d.min(1).mean())
