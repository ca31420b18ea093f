"""Time parameterization and interpolation of joint-space waypoints.

``time_parameterize(qs, vmax, amax, min_dt)``: ``qs`` [N, dof] includes the start
configuration as row 0; returns times [N] with times[0] = 0. Each segment takes the
longest, over joints, rest-to-rest trapezoidal-profile time (triangular when the
distance is too short to reach vmax), and at least ``min_dt``.
"""
from __future__ import annotations

import numpy as np


def trapezoid_time(distance, vmax, amax) -> np.ndarray:
    """Rest-to-rest time to move |distance| with velocity / acceleration limits."""
    d = np.abs(np.asarray(distance, dtype=float))
    v = np.asarray(vmax, dtype=float)
    a = np.asarray(amax, dtype=float)
    if np.any(v <= 0) or np.any(a <= 0):
        raise ValueError("velocity and acceleration limits must be > 0")
    d_full = v * v / a  # distance needed to reach vmax and stop again
    return np.where(d <= d_full, 2.0 * np.sqrt(d / a), d / v + v / a)


def time_parameterize(qs, vmax, amax, min_dt: float = 0.0) -> np.ndarray:
    qs = np.asarray(qs, dtype=float)
    if qs.ndim != 2 or qs.shape[0] < 1:
        raise ValueError(f"qs must be [N>=1, dof], got {qs.shape}")
    if not np.all(np.isfinite(qs)):
        raise ValueError("qs has non-finite values")
    dof = qs.shape[1]
    v = np.broadcast_to(np.asarray(vmax, dtype=float), (dof,))
    a = np.broadcast_to(np.asarray(amax, dtype=float), (dof,))
    times = np.zeros(qs.shape[0])
    for i in range(1, qs.shape[0]):
        seg = float(np.max(trapezoid_time(qs[i] - qs[i - 1], v, a)))
        times[i] = times[i - 1] + max(seg, float(min_dt))
    return times


def interpolate(times, qs, t: float, kind: str = "cubic", velocities=None) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity at time ``t`` of the piecewise path through (times, qs).
    ``linear``: piecewise linear; ``cubic``: cubic Hermite with the given velocities, or
    zero velocities at the ends and finite-difference velocities inside when none are
    given (like joint_trajectory_controller with positions only... but smooth). Clamped
    to the first / last point outside [times[0], times[-1]]."""
    times = np.asarray(times, dtype=float)
    qs = np.asarray(qs, dtype=float)
    if t <= times[0]:
        return qs[0].copy(), np.zeros(qs.shape[1])
    if t >= times[-1]:
        return qs[-1].copy(), np.zeros(qs.shape[1])
    i = int(np.searchsorted(times, t, side="right") - 1)
    t0, t1 = times[i], times[i + 1]
    h = max(t1 - t0, 1e-9)
    s = (t - t0) / h
    q0, q1 = qs[i], qs[i + 1]
    if kind == "linear":
        return q0 + s * (q1 - q0), (q1 - q0) / h
    if velocities is None:
        velocities = default_velocities(times, qs)
    v0, v1 = np.asarray(velocities[i]), np.asarray(velocities[i + 1])
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    q = h00 * q0 + h10 * h * v0 + h01 * q1 + h11 * h * v1
    d00, d10, d01, d11 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1, -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
    return q, (d00 * q0 + d10 * h * v0 + d01 * q1 + d11 * h * v1) / h


def default_velocities(times, qs) -> np.ndarray:
    """Zero at both ends; inside, the mean of the neighbouring segment slopes, set to zero
    for a joint whose motion changes direction (no overshoot at keyframes)."""
    times = np.asarray(times, dtype=float)
    qs = np.asarray(qs, dtype=float)
    v = np.zeros_like(qs)
    for i in range(1, len(qs) - 1):
        s0 = (qs[i] - qs[i - 1]) / max(times[i] - times[i - 1], 1e-9)
        s1 = (qs[i + 1] - qs[i]) / max(times[i + 1] - times[i], 1e-9)
        v[i] = np.where(s0 * s1 > 0, 0.5 * (s0 + s1), 0.0)
    return v
