"""Oriented 3D boxes: corners, exact intersection volume and IoU (the Objectron box metric).

A box is a pose (4x4, its center and axes) and a size (extent along its own x, y, z in
meters), the ``object_pose`` / ``size`` pair of a PoseTarget. The intersection of two boxes is
a convex polytope whose vertices are (a) the corners of each box inside the other and (b) the
points where an edge of one box crosses a face of the other (the polygon-clipping construction
of Objectron's ``iou.py``, done here in each box's own frame, where it is an axis-aligned
test); its volume is that of their convex hull (scipy's Qhull). Exact up to float rounding,
no sampling: identical boxes give 1, disjoint or only touching boxes 0, and a box turned by a
symmetry of its shape (a cube by 90 degrees) is the same box (IoU 1), which is why the IoU
needs no symmetry handling.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import ConvexHull, QhullError

_SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))           # (8, 3) corner signs
# The 12 edges: pairs of corners that differ in exactly one sign.
_EDGES = np.array([(i, j) for i, j in itertools.combinations(range(8), 2)
                   if np.count_nonzero(_SIGNS[i] != _SIGNS[j]) == 1])
_TOL = 1e-9


def box_corners(T: np.ndarray, size) -> np.ndarray:
    """(8, 3) corners of the box of pose ``T`` (4x4) and ``size`` (3,), in T's parent frame."""
    T = np.asarray(T, dtype=float)
    half = 0.5 * np.asarray(size, dtype=float).reshape(3)
    return (_SIGNS * half) @ T[:3, :3].T + T[:3, 3]


def box_volume(size) -> float:
    return float(np.prod(np.asarray(size, dtype=float)))


def _clip_into(corners: np.ndarray, T: np.ndarray, size) -> np.ndarray:
    """Points of the intersection polytope contributed by the box with ``corners`` against
    the box (T, size): its corners inside that box and its edges' crossings of that box's
    faces, returned in the parent frame."""
    half = 0.5 * np.asarray(size, dtype=float).reshape(3)
    tol = _TOL * max(1.0, float(half.max()))
    local = (corners - T[:3, 3]) @ T[:3, :3]                                 # into the box's frame
    inside = np.all(np.abs(local) <= half + tol, axis=1)
    pts = [local[inside]]
    a, b = local[_EDGES[:, 0]], local[_EDGES[:, 1]]                          # (12, 3) edge ends
    d = b - a
    for axis in range(3):
        for sign in (-1.0, 1.0):
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (sign * half[axis] - a[:, axis]) / d[:, axis]
            ok = np.isfinite(t) & (t >= -_TOL) & (t <= 1 + _TOL)
            p = a[ok] + t[ok, None] * d[ok]
            p = p[np.all(np.abs(p) <= half + tol, axis=1)]
            pts.append(p)
    P = np.concatenate(pts)
    return P @ T[:3, :3].T + T[:3, 3]


def intersection_volume(T1: np.ndarray, size1, T2: np.ndarray, size2) -> float:
    """Volume (m^3) of the intersection of two oriented boxes; 0 when they are disjoint or
    only touch (a flat or empty intersection)."""
    T1, T2 = np.asarray(T1, dtype=float), np.asarray(T2, dtype=float)
    c1, c2 = box_corners(T1, size1), box_corners(T2, size2)
    # Bounding spheres apart: nothing to clip.
    r1, r2 = np.linalg.norm(c1 - T1[:3, 3], axis=1).max(), np.linalg.norm(c2 - T2[:3, 3], axis=1).max()
    if np.linalg.norm(T1[:3, 3] - T2[:3, 3]) > r1 + r2:
        return 0.0
    P = np.concatenate([_clip_into(c1, T2, size2), _clip_into(c2, T1, size1)])
    if len(P) < 4:
        return 0.0
    scale = max(float(np.max(size1)), float(np.max(size2)), 1e-12)
    P = np.unique(np.round(P / scale, 12), axis=0) * scale                  # Qhull dislikes duplicates
    if len(P) < 4:
        return 0.0
    try:
        return float(ConvexHull(P).volume)
    except QhullError:                                                      # flat: the boxes only touch
        return 0.0


def box_iou_3d(T1: np.ndarray, size1, T2: np.ndarray, size2) -> float:
    """Intersection over union of two oriented 3D boxes, in [0, 1] (0 for empty boxes)."""
    v1, v2 = box_volume(size1), box_volume(size2)
    if not (v1 > 0 and v2 > 0):
        return 0.0
    inter = min(intersection_volume(T1, size1, T2, size2), v1, v2)
    return float(np.clip(inter / (v1 + v2 - inter), 0.0, 1.0))
