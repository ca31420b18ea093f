"""The on-disk format of grounding and motion data: numbered ``.npz`` shards + ``meta.json``.

Layout of a dataset directory::

    meta.json                 {"format": "posevla-shards", "version": 2, "kind": "grounding"|"motion",
                               "shards": [{"file": "shard-00000.npz", "num_samples": N}, ...], ...}
    shard-00000.npz           arrays, first axis = sample (all images of a shard share one size)

Per sample (``kind`` = "grounding")::

    rgb          (H, W, 3) uint8         the color image
    depth_mm     (H, W)    uint16        aligned depth in millimeters, 0 = no reading (optional)
    K            (3, 3)    float64       intrinsics of this image
    instruction  str                     the language prompt the grounding answers
    category     str                     object category (one of the tokenizer's categories)
    box_uv       (2,)      float64       projected 3D box center, normalized to [0, 1] by image width/height
    box_xyxy     (4,)      float64       2D box x1, y1, x2, y2, normalized to [0, 1] (version 2; pixels in 1)
    object_pose  (7,)      float64       pose of the object's 3D box center, camera optical frame: xyz, qxyzw
    object_size  (3,)      float64       the 3D box's extent along the object's axes, meters (version 2)
    scene_categories str                 every object in the scene, near to far, "|"-joined categories
                                         (optional: what a negative "<no_object>" instruction may not name)
    scene_object_pose (N, 7) float64     optional, the same objects' poses / sizes / 2D boxes as above,
    scene_object_size (N, 3)             rows beyond the scene's object count are NaN
    scene_box_xyxy    (N, 4)

``kind`` = "motion" adds a trajectory per sample (robot base frame; L samples, padded with
NaN time to the longest trajectory in the shard)::

    traj_t           (L,)     float64    seconds; NaN = padding
    traj_ee_base     (L, 7)   float64    end-effector pose in the base frame
    traj_gripper     (L,)     float64    gripper opening 0 (closed) .. 1 (open)
    camera_to_base   (7,)     float64    the camera optical frame in the base frame
    t0               ()       float64    time of the observation image in the trajectory

A shard is written to a temporary name and renamed, and meta.json last, so a crash leaves
either a complete dataset or one with fewer (whole) shards. Why npz: the data are small fixed
arrays per sample, numpy reads them everywhere without a schema library, and a shard
loads in one call.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from posevla_core.poses import Pose, PoseTarget

FORMAT = "posevla-shards"
VERSION = 2
KINDS = ("grounding", "motion")
GROUNDING_KEYS = ("rgb", "K", "instruction", "category", "box_uv", "box_xyxy", "object_pose", "object_size")
MOTION_KEYS = ("traj_t", "traj_ee_base", "traj_gripper", "camera_to_base", "t0")


class DataFormatError(ValueError):
    """A dataset file is missing, unreadable or does not follow the format (names the file)."""


def depth_to_mm(depth: np.ndarray | None) -> np.ndarray | None:
    """float meters (NaN/inf/<=0 invalid) -> uint16 millimeters (0 invalid, max 65.535 m)."""
    if depth is None:
        return None
    d = np.asarray(depth, dtype=np.float64)
    ok = np.isfinite(d) & (d > 0)
    return np.where(ok, np.clip(np.round(np.where(ok, d, 0) * 1000.0), 0, 65535), 0).astype(np.uint16)


def mm_to_depth(mm: np.ndarray | None) -> np.ndarray | None:
    if mm is None:
        return None
    d = mm.astype(np.float32) / 1000.0
    d[mm == 0] = np.nan
    return d


@dataclass
class Sample:
    """One training observation, already in memory. ``target`` is in the camera frame;
    ``supervise_grounding`` False means only the waypoint tokens are supervised (demos
    without object annotations)."""

    rgb: np.ndarray
    depth: np.ndarray | None
    K: np.ndarray
    instruction: str
    target: PoseTarget
    supervise_grounding: bool = True
    source: str = ""
    views: list[dict] | None = None     # extra cameras ({"rgb", "depth", "K"}), e.g. a wrist camera
    chunk: np.ndarray | None = None     # (H, 10) action chunk for the flow head (policies/flow), when loaded
    state: dict | None = None           # the robot at the frame (expert.robot_state), with the chunk

    def predict_item(self) -> dict:
        """The sample as one ``PosePolicy.predict_batch`` item (its extra cameras as ``views``)."""
        item = {"rgb": self.rgb, "depth": self.depth, "K": self.K, "instruction": self.instruction}
        if self.views:
            item["views"] = self.views
        if self.state is not None:
            item["state"] = self.state
        return item


class ShardWriter:
    """Appends samples of one kind; ``close()`` (or the context manager) writes meta.json."""

    def __init__(self, root: str | Path, kind: str, shard_size: int = 256, extra_meta: dict | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        self.root, self.kind, self.shard_size = Path(root), kind, int(shard_size)
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.root / "meta.json").exists():
            raise FileExistsError(f"{self.root / 'meta.json'} exists; write a new dataset into an empty directory")
        self.extra_meta = dict(extra_meta or {})
        self._buf: list[dict] = []
        self._shards: list[dict] = []
        self.num_samples = 0

    def add(self, **sample) -> None:
        need = GROUNDING_KEYS + (MOTION_KEYS if self.kind == "motion" else ())
        missing = [k for k in need if k not in sample]
        if missing:
            raise KeyError(f"{self.kind} sample is missing {missing}")
        rgb = np.asarray(sample["rgb"])
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"rgb must be HxWx3 uint8, got {rgb.dtype} {rgb.shape}")
        if self._buf and self._buf[0]["rgb"].shape != rgb.shape:
            self._flush()
        s = dict(sample)
        s["depth_mm"] = depth_to_mm(s.pop("depth", None))
        self._buf.append(s)
        self.num_samples += 1
        if len(self._buf) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        name = f"shard-{len(self._shards):05d}.npz"
        arrays: dict[str, np.ndarray] = {}
        for k in self._buf[0]:
            vals = [s[k] for s in self._buf]
            if k == "depth_mm":
                if any(v is None for v in vals):
                    continue
            if k in ("instruction", "category"):
                arrays[k] = np.array([str(v) for v in vals])
            elif k in ("traj_t", "traj_ee_base", "traj_gripper"):
                L = max(len(v) for v in vals)
                fill = np.nan if k == "traj_t" else 0.0
                arr = np.full((len(vals), L) + np.asarray(vals[0]).shape[1:], fill)
                for i, v in enumerate(vals):
                    arr[i, : len(v)] = v
                arrays[k] = arr
            else:
                arrays[k] = np.stack([np.asarray(v) for v in vals])
        tmp = self.root / f".{name}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, self.root / name)
        self._shards.append({"file": name, "num_samples": len(self._buf)})
        self._buf = []

    def close(self) -> Path:
        self._flush()
        meta = {"format": FORMAT, "version": VERSION, "kind": self.kind, "num_samples": self.num_samples,
                "shards": self._shards, **self.extra_meta}
        tmp = self.root / ".meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.root / "meta.json")
        return self.root

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()


def read_meta(root: str | Path) -> dict:
    path = Path(root) / "meta.json"
    if not path.is_file():
        raise DataFormatError(f"{path}: missing (not a posevla shard dataset?)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{path}: not valid JSON ({e})") from e
    if meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise DataFormatError(f"{path}: not a {FORMAT} dataset (format={meta.get('format')!r}, "
                              f"kind={meta.get('kind')!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise DataFormatError(f"{path}: format version {meta['version']} is newer than this code ({VERSION})")
    if int(meta.get("version", 0)) < VERSION:
        raise DataFormatError(f"{path}: format version {meta.get('version')} has no object sizes and pixel boxes; "
                              f"regenerate it (this code reads version {VERSION})")
    return meta


def load_shard(path: Path, kind: str) -> dict[str, np.ndarray]:
    """All arrays of one shard; a missing, truncated or incomplete file raises DataFormatError."""
    if not path.is_file():
        raise DataFormatError(f"{path}: shard listed in meta.json is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataFormatError(f"{path}: corrupt shard ({type(e).__name__}: {e})") from e
    need = GROUNDING_KEYS + (MOTION_KEYS if kind == "motion" else ())
    missing = [k for k in need if k not in arrays]
    if missing:
        raise DataFormatError(f"{path}: shard lacks arrays {missing}")
    return arrays


def iter_shard_samples(root: str | Path) -> Iterator[dict]:
    """Raw per-sample dicts (depth converted back to float meters, NaN = invalid)."""
    root = Path(root)
    meta = read_meta(root)
    for sh in meta["shards"]:
        arrays = load_shard(root / sh["file"], meta["kind"])
        n = len(arrays["rgb"])
        if n != sh["num_samples"]:
            raise DataFormatError(f"{root / sh['file']}: {n} samples, meta.json says {sh['num_samples']}")
        for i in range(n):
            s = {k: v[i] for k, v in arrays.items()}
            s["depth"] = mm_to_depth(s.pop("depth_mm", None))
            s["instruction"], s["category"] = str(s["instruction"]), str(s["category"])
            if "scene_categories" in s:
                s["scene_categories"] = [c for c in str(s["scene_categories"]).split("|") if c]
            if "traj_t" in s:
                keep = np.isfinite(s["traj_t"])
                s["traj_t"], s["traj_ee_base"], s["traj_gripper"] = \
                    s["traj_t"][keep], s["traj_ee_base"][keep], s["traj_gripper"][keep]
            s["source"] = f"{root / sh['file']}#{i}"
            yield s


def grounding_target(s: dict) -> PoseTarget:
    p = np.asarray(s["object_pose"], dtype=np.float64)
    return PoseTarget(str(s["category"]), (float(s["box_uv"][0]), float(s["box_uv"][1])), Pose(p[:3], p[3:7]),
                      box_xyxy=tuple(float(x) for x in s["box_xyxy"]),
                      size=np.asarray(s["object_size"], dtype=np.float64))
