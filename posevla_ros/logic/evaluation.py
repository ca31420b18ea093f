"""The evaluation loop and its media, without ROS: what evaluator_node runs.

``EvaluationLoop`` runs K episodes against an ``EpisodeIO`` (the node implements it with
ROS services and topics; tests with plain Python). Per episode: hold the robot, reset (the
sim's reset service, or wait for the operator's "ready"), send the instruction, start
recording, release the robot, poll the outcome (the sim's success predicate or the
operator's mark) until success, failure or the timeout, hold, save (or discard) the
rollout. Then ``absent_episodes`` absent-object episodes (sim task ``absent``: an instruction
naming an object that is not in the scene, posevla_core.sim.tasks): released for a fixed
observation window, judged from what was observed (``EpisodeIO.watch``): refused when every
prediction for the instruction said ``object_found: false``, a
motion when any trajectory was sent or a joint moved more than ``motion_tol_rad``.
``MediaCollector`` keeps report frames and joint / end-effector traces;
``finish`` writes summary.json, results.jsonl and report.html (posevla_ros.logic.report).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from posevla_core.sim.tasks import ABSENT
from posevla_ros.logic import report


# ---------------------------------------------------------------------------- core (no ROS)
class EpisodeIO(Protocol):
    """What the loop needs from the world. The node implements it with ROS services and
    topics; every method may raise RuntimeError with a reason (the episode then fails)."""

    def now(self) -> float: ...                                      # node clock, seconds
    def sleep(self, seconds: float) -> None: ...                     # wall clock
    def hold(self) -> None: ...                                      # stop robot + pause policy
    def release(self) -> None: ...                                   # resume robot + policy
    def reset(self, seed: int, task: str) -> str: ...                # -> instruction
    def send_instruction(self, text: str) -> None: ...
    def outcome(self) -> str | None: ...                             # 'success' | 'failure' | None
    def record_start(self, instruction: str) -> None: ...
    def record_stop(self) -> int | None: ...                         # dataset episode index
    def record_discard(self) -> None: ...
    def media_begin(self, episode: int) -> None: ...
    def media_end(self, episode: int) -> None: ...
    def watch_begin(self, instruction: str) -> None: ...             # absent episodes: start counting
    def watch(self) -> dict: ...                                     # predictions, refused, trajectories,
                                                                     # max_joint_dev_rad (None: no joint state)


@dataclass
class LoopConfig:
    task: str = "pick"
    episodes: int = 10
    seed: int = 1000
    timeout_s: float = 30.0
    settle_s: float = 0.5
    success_poll_hz: float = 2.0
    instruction_period_s: float = 1.0
    record: bool = True
    max_wall_factor: float = 30.0
    default_instruction: str = ""
    keep_failures: bool = True          # False: failed rollouts are discarded (demo collection)
    target_successes: int = 0           # > 0: stop once this many succeeded (episodes = max attempts)
    absent_episodes: int = 0            # then this many absent-object episodes (seeds after the others)
    absent_predictions: int = 3         # an absent episode watches this many predictions ...
    absent_linger_s: float = 1.0        # ... and this long after them (node clock) for a motion
    motion_tol_rad: float = 1e-3        # a joint moving more than this is a motion


class EvaluationLoop:
    """Runs the episodes (module docstring) and returns one record per episode."""

    def __init__(self, io: EpisodeIO, cfg: LoopConfig, log: Callable[[str], None] = print) -> None:
        self.io, self.cfg, self.log = io, cfg, log
        self.records: list[dict] = []
        self.absent_records: list[dict] = []
        self._abort = threading.Event()

    def abort(self) -> None:
        self._abort.set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def run(self) -> list[dict]:
        for i in range(self.cfg.episodes):
            if self._abort.is_set():
                break
            if self.cfg.target_successes and sum(r["success"] for r in self.records) >= self.cfg.target_successes:
                break
            rec = self.run_episode(i)
            self.records.append(rec)
            n, k = len(self.records), sum(r["success"] for r in self.records)
            self.log(f"episode {i}: {'SUCCESS' if rec['success'] else 'failure'} ({rec['reason']}, "
                     f"{rec['duration_s']:.1f} s); running success {k}/{n}")
        for j in range(self.cfg.absent_episodes):
            if self._abort.is_set():
                break
            rec = self.run_absent_episode(j)
            self.absent_records.append(rec)
            self.log(f"absent episode {j}: {'REFUSED' if rec['refused'] else 'not refused'}, "
                     f"{'MOTION' if rec['motion'] else 'no motion'} ({rec['reason']}; {rec['instruction']!r})")
        return self.records

    def run_absent_episode(self, j: int) -> dict:
        """One absent-object episode (module docstring); not recorded, no report media."""

        cfg, io = self.cfg, self.io
        seed = cfg.seed + cfg.episodes + j
        rec: dict[str, Any] = {"episode": j, "seed": seed, "task": ABSENT, "instruction": "", "refused": False,
                               "motion": False, "correct": False, "predictions": 0, "refused_predictions": 0,
                               "trajectories": 0, "max_joint_dev_rad": None, "duration_s": 0.0, "reason": ""}
        try:
            io.hold()
            instruction = io.reset(seed, ABSENT)
            rec["instruction"] = instruction
            io.send_instruction(instruction)
            if cfg.settle_s > 0:
                io.sleep(cfg.settle_s)
            io.watch_begin(instruction)
            io.release()
            t0, w0 = io.now(), time.monotonic()
            last_instr, seen_at = t0, None
            while not self._abort.is_set():
                w, t = io.watch(), io.now()
                if seen_at is None and w["predictions"] >= cfg.absent_predictions:
                    seen_at = t
                if seen_at is not None and t - seen_at >= cfg.absent_linger_s:
                    rec["reason"] = "observed"
                    break
                if t - t0 >= cfg.timeout_s or time.monotonic() - w0 >= cfg.timeout_s * cfg.max_wall_factor:
                    rec["reason"] = f"timeout after {w['predictions']} predictions"
                    break
                if t - last_instr >= cfg.instruction_period_s:
                    io.send_instruction(instruction)
                    last_instr = t
                io.sleep(0.05)
            rec["duration_s"] = io.now() - t0
            w = io.watch()                     # before the hold: stopping may itself command the arm
            dev = w["max_joint_dev_rad"]
            rec.update(predictions=w["predictions"], refused_predictions=w["refused"], trajectories=w["trajectories"],
                       max_joint_dev_rad=dev)
            rec["refused"] = w["predictions"] > 0 and w["refused"] == w["predictions"]
            rec["motion"] = w["trajectories"] > 0 or dev is None or dev >= cfg.motion_tol_rad
            if dev is None:
                rec["reason"] += "; no joint state: motion not measurable"
            rec["correct"] = rec["refused"] and not rec["motion"]
        except Exception as e:  # noqa: BLE001 - an episode that cannot run is a failure with a reason
            rec["reason"] = f"error: {e}"
            rec["motion"] = True               # not measured: never counted as still
        finally:
            try:
                io.hold()
            except Exception as e:  # noqa: BLE001
                self.log(f"could not hold the robot after absent episode {j}: {e}")
        return rec

    def absent_summary(self) -> dict | None:
        """{episodes, refused, motions, correct, per_episode} of the absent episodes (None: none run)."""
        recs = self.absent_records
        if not self.cfg.absent_episodes:
            return None
        return {"episodes": len(recs), "refused": sum(r["refused"] for r in recs),
                "motions": sum(r["motion"] for r in recs), "correct": sum(r["correct"] for r in recs),
                "motion_tol_rad": self.cfg.motion_tol_rad, "per_episode": list(recs)}

    def run_episode(self, i: int) -> dict:
        cfg, io = self.cfg, self.io
        seed = cfg.seed + i
        rec: dict[str, Any] = {"episode": i, "seed": seed, "task": cfg.task, "instruction": "",
                               "success": False, "time_to_success_s": None, "duration_s": 0.0,
                               "timeout": False, "reason": "", "dataset_episode_index": None}
        recording = False
        try:
            io.hold()
            instruction = io.reset(seed, cfg.task) or cfg.default_instruction
            if not instruction.strip():
                raise RuntimeError("the reset gave no instruction and no default 'instruction' is set")
            rec["instruction"] = instruction
            io.send_instruction(instruction)
            if cfg.settle_s > 0:
                io.sleep(cfg.settle_s)
            io.media_begin(i)
            if cfg.record:
                io.record_start(instruction)
                recording = True
            io.release()
            t0, w0 = io.now(), time.monotonic()
            last_instr = t0
            poll = 1.0 / cfg.success_poll_hz
            while True:
                if self._abort.is_set():
                    rec["reason"] = "aborted"
                    break
                res = io.outcome()
                t = io.now()
                rec["duration_s"] = t - t0
                if res == "success":
                    rec.update(success=True, time_to_success_s=t - t0, reason="success")
                    break
                if res == "failure":
                    rec["reason"] = "marked failure"
                    break
                if t - t0 >= cfg.timeout_s or time.monotonic() - w0 >= cfg.timeout_s * cfg.max_wall_factor:
                    rec.update(timeout=True, reason="timeout")
                    break
                if t - last_instr >= cfg.instruction_period_s:
                    io.send_instruction(instruction)
                    last_instr = t
                io.sleep(poll)
        except Exception as e:  # noqa: BLE001 - an episode that cannot run is a failure with a reason
            rec["reason"] = f"error: {e}"
        finally:
            try:
                io.hold()
            except Exception as e:  # noqa: BLE001
                self.log(f"could not hold the robot after episode {i}: {e}")
            if recording:
                try:
                    if rec["success"] or cfg.keep_failures:
                        rec["dataset_episode_index"] = io.record_stop()
                    else:
                        io.record_discard()
                except Exception as e:  # noqa: BLE001
                    self.log(f"saving rollout {i} failed: {e}")
            try:
                io.media_end(i)
            except Exception:  # noqa: BLE001 - media are best effort
                pass
        return rec


class AbsentWatch:
    """What an absent-object episode is judged by, counted from the ROS callbacks (any thread)
    between ``begin`` and the loop's reads: predictions for the episode's instruction and how
    many were refusals (``object_found`` false), trajectories sent to the controllers, and the largest arm joint excursion from the
    first joint state seen. A prediction counts only when its image was taken between ``begin``
    and now (``now``: the node clock): a late answer to the previous episode's image (the sim's
    clock restarts at every reset; its instruction may be worded the same) does not."""

    def __init__(self, joint_names: list[str], now: Callable[[], float]) -> None:
        self.joint_names, self.now = list(joint_names), now
        self._lock = threading.Lock()
        self._instruction: str | None = None
        self._t0 = 0.0
        self._reset()

    def _reset(self) -> None:
        self._n = self._refused = self._traj = 0
        self._q0 = None
        self._dev: float | None = None

    def begin(self, instruction: str) -> None:
        t0 = self.now()
        with self._lock:
            self._instruction, self._t0 = instruction, t0
            self._reset()

    def on_prediction(self, stamp: float, instruction: str, object_found: bool) -> None:
        """One PosePrediction (its header stamp in seconds, instruction and object_found)."""
        refused = not object_found
        now = self.now()
        with self._lock:
            if self._instruction is not None and instruction == self._instruction \
                    and self._t0 <= stamp <= now + 1e-6:
                self._n += 1
                self._refused += bool(refused)

    def on_trajectory(self, msg) -> None:
        with self._lock:
            if self._instruction is not None:
                self._traj += 1

    def on_joints(self, q) -> None:
        """The arm's measured joint positions (``joint_names`` order)."""
        with self._lock:
            if self._instruction is None:
                return
            if self._q0 is None:
                self._q0, self._dev = np.asarray(q, float), 0.0
            else:
                self._dev = max(self._dev, float(np.max(np.abs(np.asarray(q, float) - self._q0))))

    def snapshot(self) -> dict:
        with self._lock:
            return {"predictions": self._n, "refused": self._refused, "trajectories": self._traj,
                    "max_joint_dev_rad": self._dev}


# ---------------------------------------------------------------------------- media
class MediaCollector:
    """Per-episode report media from the ROS streams: frames every ``frame_period_s`` (stamp
    time, downscaled) and joint / end-effector / gripper traces. Thread safe."""

    def __init__(self, frame_period_s: float = 0.5, max_frames: int = 120, max_side: int = 160,
                 fk: Callable | None = None) -> None:
        self.frame_period_s, self.max_frames, self.max_side, self.fk = frame_period_s, max_frames, max_side, fk
        self.media: dict[int, report.EpisodeMedia] = {}
        self._lock = threading.Lock()
        self._current: int | None = None
        self._t0: float | None = None
        self._last_frame_t = -1e18
        self._last_joint_t = -1e18

    def begin(self, episode: int, t0: float) -> None:
        with self._lock:
            self.media[episode] = report.EpisodeMedia()
            self._current, self._t0 = episode, t0
            self._last_frame_t = self._last_joint_t = -1e18

    def end(self, episode: int) -> None:
        with self._lock:
            if self._current == episode:
                self._current = None

    def wants_frame(self, t: float) -> bool:
        """Cheap pre-check before decoding an image: recording, and a frame is due at ``t``."""
        with self._lock:
            return self._current is not None and t - self._last_frame_t >= self.frame_period_s

    @property
    def active(self) -> bool:
        with self._lock:
            return self._current is not None

    def add_frame(self, t: float, rgb: np.ndarray) -> None:
        with self._lock:
            if self._current is None or t - self._last_frame_t < self.frame_period_s:
                return
            m = self.media[self._current]
            if len(m.frames) >= self.max_frames:
                return
            self._last_frame_t = t
        step = max(1, int(np.ceil(max(rgb.shape[:2]) / self.max_side)))
        small = np.ascontiguousarray(rgb[::step, ::step])
        with self._lock:
            m.frames.append(small)

    def add_joints(self, t: float, q: np.ndarray, gripper: float | None) -> None:
        with self._lock:
            if self._current is None or t - self._last_joint_t < 0.1 or self._t0 is None:
                return
            self._last_joint_t = t
            m = self.media[self._current]
            m.t.append(t - self._t0)
            m.joints.append(np.asarray(q, dtype=float).tolist())
            if gripper is not None:
                m.gripper.append(float(gripper))
            if self.fk is not None:
                m.ee_xyz.append(np.asarray(self.fk(q))[:3, 3].tolist())


def finish(out: str | Path, records: list[dict], task: str, media: dict | None = None, **extra) -> dict:
    """summary.json + results.jsonl + report.html (+ plots, GIF); returns the summary."""
    summary = report.summarize(records, task, **extra)
    report.write_report(out, summary, media or {})
    return summary
