"""LeRobot v3.0 datasets: the crash-safe writer our recorder uses, and a reader for training.

Why one module: the writer and the reader share the on-disk schema (features, chunking,
file names); one file keeps what is written and what is read side by side.

We write the layout the ``lerobot`` package reads (``LeRobotDataset(repo_id, root=...)``;
``scripts/check_lerobot_load.py`` proves it with the real package)::

    meta/info.json                                codebase_version "v3.0", fps, features, totals
    meta/tasks.parquet                            index: task string, column task_index
    meta/stats.json                               mean/std/min/max/count of the numeric features
    meta/episodes/chunk-CCC/file-FFF.parquet      one row per episode (length, tasks, indices)
    data/chunk-CCC/file-FFF.parquet               the frames of one episode

Images are ``image`` features (PNG bytes in the parquet file, HF ``datasets.Image`` storage),
so nothing needs a video codec. Depth is an ``image`` feature too: a 16-bit PNG in
millimeters (0 = no reading), shape (H, W, 1); ``info.depth_unit_m`` says so.

Crash safety. LeRobot's own writer appends many episodes to one parquet file, so a killed
recorder can leave a file without its footer. Here every episode has its own data and
episodes-metadata file (``file-FFF`` = episode index within a chunk of 1000), each written
to ``.staging/`` and renamed into place; the episode's metadata file is the commit point.
After a SIGKILL an episode is therefore either complete or absent. A data file without
metadata (killed between the two renames) is an orphan: readers ignore it and the next
writer removes it and rewrites info.json from the committed episodes.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from posevla_core.data.shards import DataFormatError, depth_to_mm, mm_to_depth
from posevla_core.geometry import se3

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
DEPTH_KEYS_SUFFIX = "depth"
CORE_INFO_KEYS = ("codebase_version", "robot_type", "repo_id", "total_episodes", "total_frames", "total_tasks",
                  "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path",
                  "video_path", "features", "depth_unit_m", "writer")


def _chunk_file(ep: int) -> dict:
    return {"chunk_index": ep // CHUNKS_SIZE, "file_index": ep % CHUNKS_SIZE}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _png(arr: np.ndarray) -> bytes:
    # Pillow: optional (the train extra), only image files need it
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _unpng(data: bytes) -> np.ndarray:
    # Pillow: optional (the train extra), only image files need it
    from PIL import Image

    return np.array(Image.open(io.BytesIO(data)))


def _is_depth(key: str) -> bool:
    return key.split(".")[-1] == DEPTH_KEYS_SUFFIX


def _feature_of(key: str, value) -> dict:
    if isinstance(value, str):
        raise ValueError(f"frame[{key!r}] is a string; only 'task' may be")
    a = np.asarray(value)
    if _is_depth(key):
        if a.ndim != 2:
            raise ValueError(f"depth frame[{key!r}] must be HxW, got {a.shape}")
        return {"dtype": "image", "shape": [a.shape[0], a.shape[1], 1], "names": ["height", "width", "channel"]}
    if a.dtype == np.uint8 and a.ndim == 3:
        return {"dtype": "image", "shape": list(a.shape), "names": ["height", "width", "channel"]}
    if a.ndim > 1:
        raise ValueError(f"frame[{key!r}] has shape {a.shape}; store images as HxWx3 uint8, vectors as 1-D")
    dtype = "float32" if a.dtype.kind == "f" else ("int64" if a.dtype.kind in "iu" else "bool")
    return {"dtype": dtype, "shape": [max(int(a.size), 1)], "names": None}


class LeRobotWriter:
    """Writes episodes of frames (dicts of numpy arrays + ``task``) as LeRobot v3.0.

    ``start_episode(task)`` -> ``add_frame(frame)``... -> ``save_episode()`` (returns the
    episode index) or ``discard_episode()``. Frames are buffered in memory until saved. Opening
    an existing dataset appends to it (after removing orphans of an earlier crash).
    """

    def __init__(self, root: str | Path, fps: int, repo_id: str = "posevla/demos", use_depth: bool = True,
                 robot_type: str = "panda", features: dict | None = None, extra_info: dict | None = None) -> None:
        self.root = Path(root)
        self.fps, self.repo_id, self.use_depth, self.robot_type = int(fps), repo_id, bool(use_depth), robot_type
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.features: dict | None = dict(features) if features else None
        self.extra_info = dict(extra_info or {})
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict] = []      # committed episode metadata rows
        self.stats_acc: dict[str, dict] = {}
        self._frames: list[dict] | None = None
        self._task = ""
        info_path = self.root / "meta" / "info.json"
        if info_path.exists() or (self.root / "meta" / "episodes").exists():
            self._recover()
        self.root.mkdir(parents=True, exist_ok=True)

    # ---- reopening / recovery
    def _recover(self) -> None:
        reader = LeRobotReader(self.root, allow_stale_info=True)
        if reader.fps != self.fps:
            raise ValueError(f"{self.root}: dataset fps is {reader.fps}, writer fps is {self.fps}")
        self.features = {k: v for k, v in reader.features.items() if k not in DEFAULT_FEATURES}
        self.tasks = dict(reader.task_index)
        known = set(CORE_INFO_KEYS)
        self.extra_info = {**{k: v for k, v in reader.info.items() if k not in known}, **self.extra_info}
        self.episodes = list(reader.episodes)
        committed = {DATA_PATH.format(**_chunk_file(e["episode_index"])) for e in self.episodes}
        for f in sorted((self.root / "data").glob("*/*.parquet")):
            if str(f.relative_to(self.root)) not in committed:
                f.unlink()                              # orphan of a crash between the renames
        shutil.rmtree(self.root / ".staging", ignore_errors=True)
        for e in self.episodes:
            self._accumulate_stats(reader.read_episode(e["episode_index"], decode_images=False))
        self._write_meta()

    # ---- episodes
    def start_episode(self, task: str) -> None:
        if self._frames is not None:
            raise RuntimeError("an episode is in progress; save or discard it first")
        if not str(task).strip():
            raise ValueError("an episode needs a non-empty task string")
        self._frames, self._task = [], str(task)

    def add_frame(self, frame: dict) -> None:
        if self._frames is None:
            raise RuntimeError("add_frame() before start_episode()")
        f = {k: v for k, v in frame.items() if k != "task" and not (not self.use_depth and _is_depth(k))}
        feats = {k: _feature_of(k, v) for k, v in f.items()}
        if self.features is None:
            self.features = feats
        elif feats != self.features:
            diff = sorted(k for k in set(feats) | set(self.features) if feats.get(k) != self.features.get(k))
            raise ValueError(f"frame does not match the dataset features at {diff}")
        self._frames.append(f)

    def discard_episode(self) -> None:
        self._frames = None

    def save_episode(self) -> int:
        # pyarrow / pandas: optional (the train extra), only dataset files need them
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._frames is None:
            raise RuntimeError("save_episode() without start_episode()")
        frames, task = self._frames, self._task
        if not frames:
            raise ValueError("refusing to save an empty episode")
        ep = len(self.episodes)
        n = len(frames)
        start = self.episodes[-1]["dataset_to_index"] if self.episodes else 0
        if task not in self.tasks:
            self.tasks[task] = len(self.tasks)
            self._write_tasks()
        cols: dict[str, pa.Array] = {}
        for k, ft in self.features.items():
            vals = [fr[k] for fr in frames]
            if ft["dtype"] == "image":
                if _is_depth(k):
                    pngs = [_png(depth_to_mm(v)) for v in vals]
                else:
                    pngs = [_png(np.ascontiguousarray(v, dtype=np.uint8)) for v in vals]
                cols[k] = pa.array([{"bytes": b, "path": None} for b in pngs],
                                   type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
            else:
                arr = np.stack([np.asarray(v).reshape(-1) for v in vals]).astype(
                    {"float32": np.float32, "int64": np.int64, "bool": np.bool_}[ft["dtype"]])
                pa_t = {"float32": pa.float32(), "int64": pa.int64(), "bool": pa.bool_()}[ft["dtype"]]
                if ft["shape"] == [1]:
                    cols[k] = pa.array(arr[:, 0], type=pa_t)
                else:
                    cols[k] = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1), type=pa_t), ft["shape"][0])
        cols["timestamp"] = pa.array(np.arange(n, dtype=np.float32) / np.float32(self.fps), type=pa.float32())
        cols["frame_index"] = pa.array(np.arange(n), type=pa.int64())
        cols["episode_index"] = pa.array(np.full(n, ep), type=pa.int64())
        cols["index"] = pa.array(start + np.arange(n), type=pa.int64())
        cols["task_index"] = pa.array(np.full(n, self.tasks[task]), type=pa.int64())
        table = pa.table(cols)

        loc = _chunk_file(ep)
        row = {"episode_index": ep, "tasks": [task], "length": n,
               "data/chunk_index": loc["chunk_index"], "data/file_index": loc["file_index"],
               "dataset_from_index": start, "dataset_to_index": start + n,
               "meta/episodes/chunk_index": loc["chunk_index"], "meta/episodes/file_index": loc["file_index"]}
        stats = self._episode_stats(frames)
        for k, s in stats.items():
            for name, v in s.items():
                row[f"stats/{k}/{name}"] = v
        staging = self.root / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        tmp_data = staging / f"data-{ep}.parquet"
        pq.write_table(table, tmp_data)
        tmp_meta = staging / f"episodes-{ep}.parquet"
        pq.write_table(pa.Table.from_pylist([row]), tmp_meta)
        for tmp in (tmp_data, tmp_meta):
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        data_path = self.root / DATA_PATH.format(**loc)
        meta_path = self.root / EPISODES_PATH.format(**loc)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_data, data_path)
        os.replace(tmp_meta, meta_path)                 # commit point
        self.episodes.append(row)
        self._merge_stats(stats)
        self._write_meta()
        self._frames = None
        return ep

    def close(self) -> None:
        if self._frames is not None:
            self._frames = None                         # an unsaved episode is dropped, like a crash
        shutil.rmtree(self.root / ".staging", ignore_errors=True)

    # ---- metadata
    def _episode_stats(self, frames: list[dict]) -> dict:
        out = {}
        for k, ft in self.features.items():
            if ft["dtype"] not in ("float32", "int64"):
                continue
            a = np.stack([np.asarray(fr[k], dtype=np.float64).reshape(-1) for fr in frames])
            out[k] = {"mean": a.mean(0).tolist(), "std": a.std(0).tolist(), "min": a.min(0).tolist(),
                      "max": a.max(0).tolist(), "count": [len(a)]}
        return out

    def _accumulate_stats(self, episode: dict) -> None:
        frames = [{k: episode[k][i] for k in self.features if k in episode} for i in range(episode["length"])]
        self._merge_stats(self._episode_stats(frames))

    def _merge_stats(self, stats: dict) -> None:
        for k, s in stats.items():
            n = s["count"][0]
            mean, var = np.array(s["mean"]), np.array(s["std"]) ** 2
            acc = self.stats_acc.setdefault(k, {"n": 0, "sum": 0.0, "sumsq": 0.0, "min": None, "max": None})
            acc["n"] += n
            acc["sum"] = acc["sum"] + mean * n
            acc["sumsq"] = acc["sumsq"] + (var + mean ** 2) * n
            acc["min"] = np.array(s["min"]) if acc["min"] is None else np.minimum(acc["min"], s["min"])
            acc["max"] = np.array(s["max"]) if acc["max"] is None else np.maximum(acc["max"], s["max"])

    def _write_tasks(self) -> None:
        # pyarrow / pandas: optional (the train extra), only dataset files need them
        import pandas as pd

        df = pd.DataFrame({"task_index": list(self.tasks.values())}, index=pd.Index(list(self.tasks), name="task"))
        buf = io.BytesIO()
        df.to_parquet(buf)
        _atomic_write_bytes(self.root / "meta" / "tasks.parquet", buf.getvalue())

    def _write_meta(self) -> None:
        total_frames = self.episodes[-1]["dataset_to_index"] if self.episodes else 0
        features = dict(self.features or {})
        features.update(DEFAULT_FEATURES)
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type, "repo_id": self.repo_id,
                "total_episodes": len(self.episodes), "total_frames": int(total_frames),
                "total_tasks": len(self.tasks), "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": 100,
                "video_files_size_in_mb": 200, "fps": self.fps, "splits": {"train": f"0:{len(self.episodes)}"},
                "data_path": DATA_PATH, "video_path": None, "features": features, "depth_unit_m": 0.001,
                "writer": "posevla_core.data.lerobot (one parquet file per episode)", **self.extra_info}
        stats = {}
        for k, a in self.stats_acc.items():
            mean = a["sum"] / a["n"]
            std = np.sqrt(np.maximum(a["sumsq"] / a["n"] - mean ** 2, 0.0))
            stats[k] = {"mean": mean.tolist(), "std": std.tolist(), "min": a["min"].tolist(),
                        "max": a["max"].tolist(), "count": [int(a["n"])]}
        if not self.tasks:
            self._write_tasks()
        _atomic_write_bytes(self.root / "meta" / "stats.json", json.dumps(stats).encode())
        _atomic_write_bytes(self.root / "meta" / "info.json", json.dumps(info, indent=2).encode())


class LeRobotReader:
    """Reads what LeRobotWriter wrote (and LeRobot v3.0 datasets with image features).

    Only committed episodes (those with an episodes-metadata row) are visible.
    """

    def __init__(self, root: str | Path, allow_stale_info: bool = False) -> None:
        # pyarrow / pandas: optional (the train extra), only dataset files need them
        import pandas as pd
        import pyarrow.parquet as pq

        self.root = Path(root)
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise DataFormatError(f"{info_path}: missing (not a LeRobot dataset?)")
        try:
            self.info = json.loads(info_path.read_text())
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{info_path}: not valid JSON ({e})") from e
        if not str(self.info.get("codebase_version", "")).startswith("v3"):
            raise DataFormatError(f"{info_path}: codebase_version {self.info.get('codebase_version')!r}, "
                                  "this reader handles LeRobot v3.x")
        self.fps = int(self.info["fps"])
        self.features = self.info["features"]
        rows = []
        for f in sorted((self.root / "meta" / "episodes").glob("*/*.parquet")):
            try:
                rows += pq.read_table(f).to_pylist()
            except Exception as e:  # noqa: BLE001 - pyarrow raises several types for bad files
                raise DataFormatError(f"{f}: unreadable episodes metadata ({e})") from e
        self.episodes = sorted(({k: v for k, v in r.items() if not k.startswith("stats/")} for r in rows),
                               key=lambda r: r["episode_index"])
        if [e["episode_index"] for e in self.episodes] != list(range(len(self.episodes))):
            raise DataFormatError(f"{self.root}: episode indices are not 0..N-1")
        tasks_path = self.root / "meta" / "tasks.parquet"
        try:
            df = pd.read_parquet(tasks_path)
        except Exception as e:  # noqa: BLE001
            raise DataFormatError(f"{tasks_path}: unreadable ({e})") from e
        self.task_index = {str(t): int(i) for t, i in zip(df.index, df["task_index"])}
        self.tasks = {i: t for t, i in self.task_index.items()}
        if not allow_stale_info and int(self.info.get("total_episodes", -1)) != len(self.episodes):
            # a crash between committing an episode and rewriting info.json; data is intact
            self.info["total_episodes"] = len(self.episodes)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def episode_length(self, i: int) -> int:
        return int(self.episodes[i]["length"])

    def episode_task(self, i: int) -> str:
        return str(self.episodes[i]["tasks"][0])

    def read_episode(self, i: int, decode_images: bool = True) -> dict:
        """Columns of episode ``i`` as numpy arrays. Images -> (N, H, W, 3) uint8, depth ->
        (N, H, W) float32 meters with NaN where there was no reading."""
        # pyarrow / pandas: optional (the train extra), only dataset files need them
        import pyarrow.parquet as pq

        e = self.episodes[i]
        path = self.root / DATA_PATH.format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
        if not path.is_file():
            raise DataFormatError(f"{path}: data file of episode {i} is missing")
        try:
            table = pq.read_table(path)
        except Exception as ex:  # noqa: BLE001
            raise DataFormatError(f"{path}: unreadable parquet ({ex})") from ex
        idx = table.column("episode_index").to_numpy()
        sel = np.nonzero(idx == i)[0]
        if len(sel) != e["length"]:
            raise DataFormatError(f"{path}: episode {i} has {len(sel)} frames, metadata says {e['length']}")
        out: dict = {"length": int(e["length"]), "task": self.episode_task(i)}
        for k in table.column_names:
            col = table.column(k).take(sel)
            ft = self.features.get(k, {})
            if ft.get("dtype") == "image":
                if not decode_images:
                    continue
                imgs = [_unpng(d["bytes"]) for d in col.to_pylist()]
                out[k] = np.stack([mm_to_depth(im) for im in imgs]) if _is_depth(k) else np.stack(imgs)
            else:
                vals = col.to_pylist()
                out[k] = np.array(vals, dtype=np.float32 if ft.get("dtype") == "float32" else None)
        return out


#: the extra cameras a demo may hold besides the first (``observation.images.color``), in model order
EXTRA_CAMERAS = ("wrist",)


def camera_keys(name: str) -> dict[str, str]:
    """Feature keys of an extra camera ``name`` (e.g. "wrist"): its color image, depth (an image
    feature: the key ends in ``.depth``) and K (row-major, 9)."""
    return {"rgb": f"observation.images.{name}", "depth": f"observation.{name}.depth",
            "K": f"observation.{name}.camera_intrinsics"}


def demo_frame(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, q: np.ndarray, gripper: float,
               T_base_ee: np.ndarray, T_base_cam: np.ndarray, task: str,
               views: dict[str, dict] | None = None) -> dict:
    """The features of one demo frame (without ``action``), shared by the ROS recorder and the
    sim data generator so that both write the same schema:

    observation.images.color (H,W,3 uint8), observation.depth (H,W float32 m, optional),
    observation.state (arm joints), observation.gripper (0 closed .. 1 open),
    observation.ee_pose_base / ee_pose_camera (xyz + qxyzw), observation.camera_intrinsics
    (K row-major), observation.camera_to_base (camera optical frame in base, xyz + qxyzw).

    ``views``: extra cameras by name (``EXTRA_CAMERAS``), each {"rgb", "depth" (or None), "K"},
    stored under ``camera_keys(name)``. Poses stay in the first camera's frame.
    """

    def pose7(T):
        return se3.T_to_pose7(T).astype(np.float32)

    f = {
        "observation.images.color": np.ascontiguousarray(rgb, dtype=np.uint8),
        "observation.state": np.asarray(q, dtype=np.float32),
        "observation.ee_pose_base": pose7(T_base_ee),
        "observation.ee_pose_camera": pose7(se3.inv_T(T_base_cam) @ T_base_ee),
        "observation.gripper": np.array([gripper], dtype=np.float32),
        "observation.camera_intrinsics": np.asarray(K, dtype=np.float32).reshape(9),
        "observation.camera_to_base": pose7(T_base_cam),
        "task": task,
    }
    if depth is not None:
        f["observation.depth"] = np.asarray(depth, dtype=np.float32)
    for name, v in (views or {}).items():
        if name not in EXTRA_CAMERAS:
            raise ValueError(f"unknown extra camera {name!r}; known: {list(EXTRA_CAMERAS)}")
        keys = camera_keys(name)
        f[keys["rgb"]] = np.ascontiguousarray(v["rgb"], dtype=np.uint8)
        f[keys["K"]] = np.asarray(v["K"], dtype=np.float32).reshape(9)
        if v.get("depth") is not None:
            f[keys["depth"]] = np.asarray(v["depth"], dtype=np.float32)
    return f
