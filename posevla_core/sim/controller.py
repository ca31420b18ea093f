"""Joint trajectory follower, modelled on ros2_control's joint_trajectory_controller:
a new trajectory REPLACES the running one, starting from the current commanded state
(so there is no jump); between points positions are interpolated (cubic Hermite by
default, or linear); before the first point the follower moves from the state at
reception to that point; after the last point it holds it. The arm and the gripper
each get their own follower (as their own controllers on the real robot)."""
from __future__ import annotations

import numpy as np

from posevla_core.geometry.trajectory import default_velocities, interpolate


class TrajectoryFollower:
    def __init__(self, joint_names: list[str], q0, kind: str = "cubic") -> None:
        self.joint_names = list(joint_names)
        self.kind = kind
        self._hold = np.asarray(q0, dtype=float).copy()
        self._times: np.ndarray | None = None
        self._qs: np.ndarray | None = None
        self._vs: np.ndarray | None = None
        self._t_start = 0.0

    def reset(self, q0) -> None:
        self._hold = np.asarray(q0, dtype=float).copy()
        self._times = self._qs = self._vs = None

    def set_trajectory(self, t_now: float, names: list[str], times, positions, velocities=None,
                       t_start: float | None = None) -> None:
        """Replace the running trajectory. ``names`` may be any order / subset of this
        follower's joints (joints not named hold their current setpoint). ``times`` are
        time_from_start (s, > 0 expected; t = 0 means "now"), ``positions`` [N, len(names)].
        ``t_start`` (header.stamp, as joint_trajectory_controller): the time of time_from_start
        0 when the trajectory's first point is at 0 (a stitched chunk starting at the commanded
        state of that time); a start up to 1 s in the past is sampled from where it is now.
        An empty trajectory stops and holds the current setpoint."""
        q_now = self.setpoint(t_now)
        times = np.asarray(times, dtype=float).reshape(-1)
        positions = np.asarray(positions, dtype=float).reshape(len(times), len(names)) if len(times) else None
        if positions is None or len(times) == 0:
            self.reset(q_now)
            return
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
            raise ValueError("trajectory has non-finite values")
        if np.any(np.diff(times) <= 0) or times[0] < 0:
            raise ValueError(f"time_from_start must be increasing and >= 0: {times}")
        unknown = [n for n in names if n not in self.joint_names]
        if unknown:
            raise ValueError(f"unknown joints {unknown} (this controller has {self.joint_names})")
        idx = [self.joint_names.index(n) for n in names]
        full = np.repeat(q_now[None], len(times), axis=0)
        full[:, idx] = positions
        if times[0] > 1e-9:
            T = np.concatenate([[0.0], times])
            Q = np.vstack([q_now[None], full])
        else:
            T, Q = times, full
        V = None
        if velocities is not None and len(velocities) == len(times):
            vfull = np.zeros_like(full)
            vfull[:, idx] = np.asarray(velocities, dtype=float).reshape(len(times), len(names))
            V = np.vstack([np.zeros((1, Q.shape[1])), vfull]) if len(T) > len(times) else vfull
        self._times, self._qs = T, Q
        self._vs = V if V is not None else default_velocities(T, Q)
        self._t_start = float(t_now)
        if t_start is not None and times[0] <= 1e-9 and t_now - 1.0 <= t_start <= t_now:
            self._t_start = float(t_start)

    def setpoint(self, t_now: float) -> np.ndarray:
        if self._times is None:
            return self._hold.copy()
        q, _ = interpolate(self._times, self._qs, t_now - self._t_start, self.kind, self._vs)
        if t_now - self._t_start >= self._times[-1]:
            self._hold = self._qs[-1].copy()
            self._times = self._qs = self._vs = None
        return q

    def active(self, t_now: float) -> bool:
        return self._times is not None and (t_now - self._t_start) < self._times[-1]

    def goal(self) -> np.ndarray:
        return (self._qs[-1] if self._times is not None else self._hold).copy()
