"""Recording without ROS: synced observations -> LeRobot v3.0 episodes.

``EpisodeRecorder`` turns observations into LeRobot frames:
- subsampled to ``fps`` by stamp;
- ``observation.state`` = arm joint positions, ``observation.gripper`` = finger opening
  0 (closed) .. 1 (open), ``observation.ee_pose_base`` = FK (xyz + quat xyzw),
  ``observation.ee_pose_camera`` = the same pose in the camera optical frame,
  ``observation.camera_intrinsics`` (K row-major, 9), ``observation.camera_to_base``
  (pose of the camera optical frame in the base frame, 7);
- ``action`` = the NEXT recorded frame's [joint positions, gripper] (absolute joint-position
  action; a frame is written when its successor arrives, the last one gets its own state).
``SerialWorker`` runs every dataset operation on one thread in order; ``make_writer`` is the
project's LeRobot writer (posevla_core.data). recorder_node wires them to ROS.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np



@dataclass
class Observation:
    """One synced, decoded observation. ``T_base_cam``: pose of the camera optical frame in
    the base frame (4x4)."""

    stamp: float
    rgb: np.ndarray                      # HxWx3 uint8
    depth: np.ndarray | None             # HxW float32 meters, NaN = no reading
    K: np.ndarray                        # 3x3
    q: np.ndarray                        # arm joint positions
    gripper: float                       # 0 closed .. 1 open
    T_base_cam: np.ndarray               # 4x4


class EpisodeRecorder:
    """Episodes of Observations -> LeRobotWriter frames (see module docstring). NOT thread
    safe: call it from one thread. ``fk(q) -> 4x4`` base-frame end-effector pose."""

    def __init__(self, writer, fk: Callable[[np.ndarray], np.ndarray], fps: float,
                 use_depth: bool = True, max_episode_s: float = 0.0) -> None:
        self.writer, self.fk = writer, fk
        self.period = 1.0 / float(fps)
        self.use_depth, self.max_episode_s = use_depth, float(max_episode_s)
        self.recording = False
        self.instruction = ""
        self.frames = 0
        self.saved: list[int] = []
        self.discarded = 0
        self.skipped = 0                 # observations dropped by the fps subsampling
        self.rejected: collections.Counter = collections.Counter()
        self._pending: dict | None = None
        self._last_stamp: float | None = None
        self._t0: float | None = None

    # ---- episode control
    def start(self, instruction: str) -> str:
        if self.recording:
            raise RuntimeError(f"already recording an episode ({self.frames} frames); stop or discard it first")
        if not instruction.strip():
            raise ValueError("no instruction: publish one on /posevla/instruction or set the "
                             "'instruction' parameter")
        self.writer.start_episode(instruction)
        self.recording, self.instruction, self.frames = True, instruction, 0
        self._pending, self._last_stamp, self._t0 = None, None, None
        return f"recording episode {len(self.saved)}: {instruction!r}"

    def stop(self) -> int:
        """Save the episode; returns its index in the dataset."""
        if not self.recording:
            raise RuntimeError("not recording")
        if self._pending is not None:
            self._flush(self._pending["_self_action"])
        if self.frames == 0:
            self.writer.discard_episode()
            self.recording = False
            raise RuntimeError("episode has no frames (no synced camera + joint state data?); discarded")
        idx = self.writer.save_episode()
        idx = int(idx) if idx is not None else len(self.saved)
        self.saved.append(idx)
        self.recording = False
        return idx

    def discard(self) -> None:
        if not self.recording:
            raise RuntimeError("not recording")
        self.writer.discard_episode()
        self.recording, self._pending, self.frames = False, None, 0
        self.discarded += 1

    def elapsed(self) -> float:
        return 0.0 if self._t0 is None or self._last_stamp is None else self._last_stamp - self._t0

    def should_autostop(self) -> bool:
        return self.recording and self.max_episode_s > 0 and self.elapsed() >= self.max_episode_s

    # ---- frames
    def add(self, obs: Observation) -> bool:
        """Record ``obs`` if recording and due by fps; returns True if it was taken."""
        if not self.recording:
            return False
        if self._last_stamp is not None and obs.stamp < self._last_stamp + self.period - 1e-6:
            self.skipped += 1
            return False
        reason = self._check(obs)
        if reason:
            self.rejected[reason] += 1
            return False
        frame = self._features(obs)
        state = np.concatenate([obs.q, [obs.gripper]]).astype(np.float32)
        if self._pending is not None:
            self._flush(state)
        frame["_self_action"] = state
        self._pending = frame
        if self._t0 is None:
            self._t0 = obs.stamp
        self._last_stamp = obs.stamp
        return True

    def _check(self, obs: Observation) -> str:
        if obs.rgb.ndim != 3 or obs.rgb.shape[2] != 3:
            return "rgb is not HxWx3"
        if self.use_depth and (obs.depth is None or obs.depth.shape != obs.rgb.shape[:2]):
            return "depth missing or not aligned to color"
        if not (np.all(np.isfinite(obs.q)) and np.isfinite(obs.gripper)):
            return "non-finite joint state"
        if not np.all(np.isfinite(obs.T_base_cam)):
            return "non-finite camera pose"
        return ""

    def _features(self, obs: Observation) -> dict:
        # pyarrow / pandas (LeRobot files): only a recorder that writes needs them
        from posevla_core.data.lerobot import demo_frame

        return demo_frame(obs.rgb, obs.depth if self.use_depth else None, obs.K, obs.q, obs.gripper,
                          np.asarray(self.fk(obs.q), dtype=float), obs.T_base_cam, self.instruction)

    def _flush(self, action: np.ndarray) -> None:
        frame = self._pending
        self._pending = None
        frame.pop("_self_action", None)
        frame["action"] = np.asarray(action, dtype=np.float32)
        self.writer.add_frame(frame)
        self.frames += 1

    def status(self) -> dict:
        return {"state": "recording" if self.recording else "idle", "instruction": self.instruction,
                "frames": self.frames + (1 if self._pending is not None else 0),
                "elapsed_s": round(self.elapsed(), 3), "episodes_saved": len(self.saved),
                "episodes_discarded": self.discarded, "rejected": dict(self.rejected)}


class SerialWorker:
    """One thread running submitted callables in order. ``call`` waits for the result
    (exceptions re-raised); ``post`` does not wait and drops the item when more than
    ``max_pending`` posts are queued (counted in ``dropped``)."""

    def __init__(self, name: str = "recorder-writer", max_pending: int = 30,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self._q: queue.Queue = queue.Queue()
        self.max_pending, self._on_error = int(max_pending), on_error
        self._posted = 0
        self._lock = threading.Lock()
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def post(self, fn: Callable[[], Any]) -> bool:
        with self._lock:
            if self._posted >= self.max_pending:
                self.dropped += 1
                return False
            self._posted += 1
        self._q.put((fn, None, True))
        return True

    def call(self, fn: Callable[[], Any], timeout: float = 60.0) -> Any:
        fut: cf.Future = cf.Future()
        self._q.put((fn, fut, False))
        return fut.result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self._q.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, fut, posted = item
            try:
                res = fn()
                if fut is not None:
                    fut.set_result(res)
            except BaseException as e:  # noqa: BLE001 - reported to the caller / logger
                if fut is not None:
                    fut.set_exception(e)
                elif self._on_error is not None:
                    self._on_error(e)
            finally:
                if posted:
                    with self._lock:
                        self._posted -= 1


def make_writer(root: str, fps: float, repo_id: str, use_depth: bool):
    """The project's LeRobot v3.0 writer (posevla_core.data)."""
    # pyarrow / pandas (LeRobot files): only a recorder that writes needs them
    from posevla_core.data import LeRobotWriter

    return LeRobotWriter(root, int(round(fps)), repo_id=repo_id, use_depth=use_depth)
