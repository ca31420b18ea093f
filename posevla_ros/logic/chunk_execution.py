"""Executor path for action chunks (``execution_mode: chunk``): the flow head's chunks, run
without seams (posevla_core.geometry.chunking does the stitching; this module is the glue).

One chunk: the executor's usual checks and IK (``ExecutorCore.process``: stopped, stale,
non-finite, transform, workspace, IK, joint limits, joint jumps, FK of every waypoint), then
``ChunkStitcher.update`` builds the trajectory from the current commanded state (RTC blend
of the running reference and the new chunk, velocity/acceleration-limited), then the sent
points themselves are checked again: joint limits, joint jumps between points and the
workspace box of their FK. Waypoint k of a chunk is due at image stamp + (k + 1) *
waypoint_dt; points already in the past are dropped. A refusal sends nothing, so the
running trajectory (checked when it was sent) continues to its end and stops there. A chunk
from an image taken before the gripper's last commanded switch does not reverse it.
"""
from __future__ import annotations

import numpy as np

from posevla_core.geometry.chunking import ChunkConfig, ChunkStitcher
from posevla_ros.logic import joint_path
from posevla_ros.logic import safety


class ChunkExecution:
    def __init__(self, core, p: dict) -> None:
        self.core = core
        self._config = ChunkConfig(sample_dt=float(p["chunk_sample_dt"]), commit_s=float(p["chunk_commit_s"]),
                                   blend_s=float(p["chunk_blend_s"]))
        self._stitcher: ChunkStitcher | None = None

    @property
    def stitcher(self) -> ChunkStitcher:
        """Built on first use: its limits come from the URDF, which may arrive after start
        (/robot_description); ``core.process`` refuses every chunk until then."""
        if self._stitcher is None:
            self._stitcher = ChunkStitcher(self.core.motion.velocity, self.core.motion.acceleration, self._config)
        return self._stitcher

    def reset(self) -> None:
        if self._stitcher is not None:
            self._stitcher.reset()

    def process(self, pred, T_base_cam, q_current, age_s: float, tf_reason: str, now: float, stamp: float):
        """-> ExecResult whose plan (when ok) carries velocities and starts at the commanded state."""
        res = self.core.process(pred, T_base_cam, q_current, age_s, tf_reason, gripper_dwell=False)
        if not res.ok:
            return res
        ik = res.plan
        due = stamp + float(pred.waypoint_dt) * np.arange(1, len(ik.positions) + 1)
        before = (self.stitcher.plan, self.stitcher.ref)
        plan = self.stitcher.update(now, due, ik.positions, ik.grippers, np.asarray(q_current, dtype=float),
                                    t_image=stamp)
        if plan is None:
            return type(res)(False, "every point of the chunk is already in the past (inference too slow "
                                    "for waypoint_dt * points)", "chunk_late", res.targets)
        kin, limits, names = self.core.kin, self.core.limits, list(self.core.p["joint_names"])
        reason = (safety.check_joint_limits(plan.positions, np.asarray(kin.lower), np.asarray(kin.upper), names)
                  or safety.check_joint_jumps(plan.positions[0], plan.positions[1:], limits, names)
                  or safety.check_workspace(np.array([kin.fk(q)[:3, 3] for q in plan.positions]), limits))
        if reason:
            self.stitcher.plan, self.stitcher.ref = before   # nothing sent: the previous trajectory runs on
            return type(res)(False, f"stitched trajectory: {reason}", "chunk_unsafe", res.targets)
        res.plan = joint_path.JointPlan(True, "", res.targets, plan.positions, plan.times, plan.grippers,
                                      ik.fk_errors, velocities=plan.velocities, start_time=plan.t_start)
        return res
