"""Seamless execution of action chunks (ROS-free; the executor node only wires it).

A flow-matching policy sends a new chunk (H joint configurations at the control period,
timed from the image they were predicted from) every inference, while the previous one is
still running. ``ChunkStitcher.update`` turns the latest chunk into the next joint
trajectory so that the arm never jumps:

1. The new trajectory starts from the CURRENT COMMANDED STATE: position and velocity of the
   last sent trajectory at ``t_now`` (the measured state only when nothing was sent yet).
2. Real-time chunking (RTC) blend of the references: the running reference is kept
   unchanged for ``commit_s`` (the part the controller is already executing: a new chunk
   cannot change it), then cross-faded linearly to the new chunk over ``blend_s``; chunk
   points older than ``t_now`` are dropped (inference latency eats the head of every chunk).
3. A velocity- and acceleration-limited tracker follows that reference from the commanded
   state, sampled every ``sample_dt``: per joint v_des = v_ref + sign(e) min(|e| / tau,
   sqrt(2 a_max |e|)) (the square-root term brakes in time), |v| <= v_max and
   |dv / dt| <= a_max per sample, positions integrated with the trapezoid rule. With the
   velocities sent per point, the controller's cubic Hermite interpolation between samples
   is exactly this constant-acceleration profile, so position and velocity are continuous
   at every seam and velocity and acceleration stay inside the limits everywhere.
4. The trajectory ends at rest on the last reference point: when no new chunk comes, the
   arm finishes the chunk and stops smoothly (the executor never waits for a chunk).
5. The gripper is not reversed by a chunk that could not see its last switch: a chunk from an
   image taken before the commanded gripper last opened or closed keeps the gripper as it is
   commanded now. Why: with inference latency, a chunk from the frame before a close often
   places the close a little later; blended in, it reopened the gripper just after it had
   closed on the object (seen on the flow expert's seed 1009, docs/results/2026-12-07-flow-expert-runs.md).

``seam_profile`` reconstructs what a joint_trajectory_controller executes from the sent
trajectories (each one replaces the previous at its send time) and returns the finite
differences (velocity, acceleration, jerk) the tests and the comparison report.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posevla_core.sim.controller import TrajectoryFollower


@dataclass
class ChunkConfig:
    sample_dt: float = 0.05      # s between sent trajectory points
    commit_s: float = 0.1        # keep the running reference this long after t_now (RTC frozen prefix)
    blend_s: float = 0.3         # then cross-fade old -> new reference over this long
    tau: float = 0.15            # tracker time constant (s): position error decays like exp(-t / tau)
    settle_s: float = 3.0        # at most this long after the reference ends to come to rest

    def __post_init__(self) -> None:
        if not (self.sample_dt > 0 and self.tau >= 2 * self.sample_dt and self.commit_s >= 0
                and self.blend_s >= 0 and self.settle_s > 0):
            raise ValueError("ChunkConfig: sample_dt > 0, tau >= 2 * sample_dt, commit_s, blend_s >= 0, settle_s > 0")


@dataclass
class ChunkPlan:
    times: np.ndarray            # [N] time_from_start, times[0] = 0 (the commanded state now)
    positions: np.ndarray        # [N, dof]
    velocities: np.ndarray       # [N, dof]
    grippers: np.ndarray         # [N] 0 closed .. 1 open
    t_start: float               # clock time of times[0]


@dataclass
class _Reference:
    times: np.ndarray            # absolute clock times, increasing
    positions: np.ndarray        # [N, dof]
    grippers: np.ndarray         # [N]

    def at(self, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        return np.stack([np.interp(t, self.times, self.positions[:, j]) for j in range(self.positions.shape[1])], 1)

    def slope(self, t: np.ndarray) -> np.ndarray:
        """Reference velocity (piecewise constant; 0 outside the reference)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        if len(self.times) < 2:
            return np.zeros((len(t), self.positions.shape[1]))
        i = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        seg = (self.positions[i + 1] - self.positions[i]) / np.maximum(self.times[i + 1] - self.times[i], 1e-9)[:, None]
        inside = (t >= self.times[0]) & (t < self.times[-1])
        return np.where(inside[:, None], seg, 0.0)

    def gripper_at(self, t: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.times, np.atleast_1d(t), side="right") - 1
        return self.grippers[np.clip(idx, 0, len(self.grippers) - 1)]


@dataclass
class ChunkStitcher:
    """See the module docstring. ``vmax`` / ``amax``: per-joint limits (already scaled)."""

    vmax: np.ndarray
    amax: np.ndarray
    cfg: ChunkConfig = field(default_factory=ChunkConfig)

    def __post_init__(self) -> None:
        self.vmax = np.asarray(self.vmax, dtype=float)
        self.amax = np.broadcast_to(np.asarray(self.amax, dtype=float), self.vmax.shape).copy()
        if np.any(self.vmax <= 0) or np.any(self.amax <= 0):
            raise ValueError("velocity and acceleration limits must be > 0")
        self.reset()

    def reset(self) -> None:
        """Forget the running trajectory (stop, resume, a clock that jumped back)."""
        self.plan: ChunkPlan | None = None
        self.ref: _Reference | None = None
        self.gripper_switched_at: float | None = None   # clock time of the last commanded gripper change

    def _note_gripper_switch(self, t_now: float) -> None:
        """Record the last gripper change of the running trajectory at or before ``t_now``."""
        p = self.plan
        if p is None or len(p.grippers) < 2:
            return
        t = p.t_start + p.times
        changed = np.nonzero((np.diff((p.grippers >= 0.5).astype(int)) != 0) & (t[1:] <= t_now))[0]
        if len(changed):
            t_sw = float(t[changed[-1] + 1])
            self.gripper_switched_at = max(t_sw, self.gripper_switched_at or t_sw)

    def commanded(self, t: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Position and velocity the controller is commanding at clock time ``t`` (None: nothing sent)."""
        if self.plan is None:
            return None
        p = self.plan
        s = t - p.t_start
        if s <= 0:
            return p.positions[0].copy(), p.velocities[0].copy()
        if s >= p.times[-1]:
            return p.positions[-1].copy(), np.zeros_like(p.positions[-1])
        i = int(np.searchsorted(p.times, s, side="right") - 1)
        h = p.times[i + 1] - p.times[i]
        a = (p.velocities[i + 1] - p.velocities[i]) / h        # constant acceleration in the segment
        u = s - p.times[i]
        return p.positions[i] + p.velocities[i] * u + 0.5 * a * u * u, p.velocities[i] + a * u

    def update(self, t_now: float, chunk_times: np.ndarray, chunk_q: np.ndarray, chunk_g: np.ndarray,
               q_measured: np.ndarray, t_image: float | None = None) -> ChunkPlan | None:
        """The next trajectory for a chunk whose point k is due at clock time ``chunk_times[k]``;
        None when every point of the chunk is already in the past (nothing is sent then).
        ``t_image``: when the chunk's image was taken (rule 5 of the module docstring)."""
        chunk_times = np.asarray(chunk_times, dtype=float)
        chunk_q = np.asarray(chunk_q, dtype=float).reshape(len(chunk_times), -1)
        chunk_g = np.asarray(chunk_g, dtype=float).reshape(-1)
        if self.plan is not None and t_now < self.plan.t_start:
            self.reset()                                        # the clock went back (sim reset)
        keep = chunk_times > t_now
        if not keep.any():
            return None
        ct, cq, cg = chunk_times[keep], chunk_q[keep], chunk_g[keep]
        self._note_gripper_switch(t_now)
        if (t_image is not None and self.plan is not None and self.gripper_switched_at is not None
                and t_image < self.gripper_switched_at):
            cg = np.full_like(cg, float(self.ref.gripper_at(t_now)[0]))
        cur = self.commanded(t_now)
        q0, v0 = cur if cur is not None else (np.asarray(q_measured, dtype=float), np.zeros(chunk_q.shape[1]))
        if self.ref is not None and cur is not None:
            w = np.clip((ct - t_now - self.cfg.commit_s) / max(self.cfg.blend_s, 1e-9), 0.0, 1.0)
            if self.cfg.blend_s == 0:
                w = (ct > t_now + self.cfg.commit_s).astype(float)
            old = self.ref.at(ct)
            cq = (1 - w)[:, None] * old + w[:, None] * cq
            cg = np.where(w >= 0.5, cg, self.ref.gripper_at(ct))
        ref = _Reference(np.r_[t_now, ct], np.vstack([q0[None], cq]), np.r_[cg[0], cg])
        plan = self._track(t_now, q0, v0, ref)
        self.ref, self.plan = ref, plan
        return plan

    def _track(self, t0: float, q0: np.ndarray, v0: np.ndarray, ref: _Reference) -> ChunkPlan:
        h, tau = self.cfg.sample_dt, self.cfg.tau
        vmax, amax = self.vmax, self.amax
        q, v = q0.astype(float).copy(), np.clip(v0.astype(float), -vmax, vmax)
        T, Q, V = [0.0], [q.copy()], [v.copy()]
        t_end = ref.times[-1]
        k = 0
        while True:
            t_next = t0 + (k + 1) * h
            e = ref.at(t_next)[0] - q
            v_des = ref.slope(t_next)[0] + np.sign(e) * np.minimum(np.abs(e) / tau, np.sqrt(2 * amax * np.abs(e)))
            v_des = np.clip(v_des, -vmax, vmax)
            v_new = v + np.clip(v_des - v, -amax * h, amax * h)
            q = q + 0.5 * h * (v + v_new)
            v = v_new
            k += 1
            T.append(k * h)
            Q.append(q.copy())
            V.append(v.copy())
            if t_next >= t_end and (np.all(np.abs(v) <= amax * h) and np.all(np.abs(ref.at(t_next)[0] - q) < 1e-3)
                                    or t_next >= t_end + self.cfg.settle_s):
                break
        V[-1] = np.zeros_like(v)       # at rest (|v| <= a_max h before: within the acceleration limit)
        times = np.asarray(T)
        return ChunkPlan(times, np.asarray(Q), np.asarray(V), ref.gripper_at(t0 + times), t0)


def seam_profile(sent: list[tuple[float, np.ndarray, np.ndarray, np.ndarray | None]], dt: float = 0.005,
                 t_end: float | None = None) -> dict:
    """What a joint_trajectory_controller executes from ``sent`` = [(arrival time, times, positions,
    velocities or None[, header stamp]), ...] (each replaces the previous one from its own first point; a
    trajectory without velocities gets the follower's default ones, and one whose first point is
    not at time 0 starts from the commanded state at rest, as the sim's follower does), sampled every
    ``dt``: times, positions, finite-difference velocity / acceleration / jerk, and the peaks of
    |velocity|, |acceleration| and |jerk| within one sample of each seam (send time)."""

    if not sent:
        raise ValueError("no trajectories")
    dof = np.asarray(sent[0][2]).shape[1]
    names = [f"j{i}" for i in range(dof)]
    f = TrajectoryFollower(names, np.asarray(sent[0][2])[0])
    t_stop = t_end if t_end is not None else sent[-1][0] + float(np.asarray(sent[-1][1])[-1])
    ts = np.arange(sent[0][0], t_stop + dt / 2, dt)
    qs = np.empty((len(ts), dof))
    j = 0
    for i, t in enumerate(ts):
        while j < len(sent) and sent[j][0] <= t + 1e-12:
            t_send, times, pos, vel = sent[j][:4]
            f.set_trajectory(t_send, names, times, pos, vel, sent[j][4] if len(sent[j]) > 4 else None)
            j += 1
        qs[i] = f.setpoint(t)
    vel = np.diff(qs, axis=0) / dt
    acc = np.diff(vel, axis=0) / dt
    jerk = np.diff(acc, axis=0) / dt
    seams = np.array([s[0] for s in sent[1:]])

    def peak(a: np.ndarray) -> float:
        """max |a| over the samples within 2 dt of a seam (a[i] spans ts[i] .. ts[i + order])."""
        if not len(seams) or not len(a):
            return 0.0
        near = np.abs(ts[:len(a)][:, None] - seams[None]).min(1) <= 2 * dt
        return float(np.abs(a[near]).max(initial=0.0))

    return {"t": ts, "q": qs, "velocity": vel, "acceleration": acc, "jerk": jerk,
            "seam_velocity": peak(vel), "seam_acceleration": peak(acc), "seam_jerk": peak(jerk),
            "max_velocity": float(np.abs(vel).max(initial=0)), "max_acceleration": float(np.abs(acc).max(initial=0))}
