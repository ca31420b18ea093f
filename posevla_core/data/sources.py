"""Every training source -> a list of ``Sample`` (image, depth, K, instruction, camera-frame target).

- grounding shards  -> object targets only (the waypoint tokens are not supervised);
- motion shards     -> object + T waypoints resampled from the trajectory (``motion.py``);
- LeRobot datasets  -> embodiment samples: every recorded frame, its T future end-effector
  poses (``observation.ee_pose_base`` at t + k*dt, into the frame's camera via
  ``observation.camera_to_base``) and gripper states. Object annotations
  (``annotation.*``, written by the sim generator) supervise the grounding tokens when present;
  demos without them (teleop on a real arm) supervise only the waypoints. An extra camera
  (``lerobot.EXTRA_CAMERAS``, e.g. ``observation.images.wrist`` + its depth and K) becomes the
  sample's ``views``; targets stay in the first camera's frame.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from posevla_core.config import STAGES, TokenizerConfig
from posevla_core.data.lerobot import EXTRA_CAMERAS, LeRobotReader, camera_keys
from posevla_core.data.motion import chunk_from_trajectory, waypoints_from_trajectory
from posevla_core.data.shards import DataFormatError, Sample, grounding_target, iter_shard_samples, read_meta
from posevla_core.geometry.se3 import pose7_to_T
from posevla_core.instructions import negative_instruction
from posevla_core.policies.flow.codec import robot_state
from posevla_core.policies.flow.configuration import ExpertConfig
from posevla_core.poses import Pose, PoseTarget


@dataclass
class SourceConfig:
    frame_stride: int = 1            # embodiment: use every n-th recorded frame
    open_threshold: float = 0.8      # embodiment: gripper opening >= this counts as "open"
    max_samples: int = 0             # 0 = all
    negative_fraction: float = 0.1   # shards with scene categories: extra "<no_object>" samples naming an absent object
    detect_fraction: float = 0.15    # grounding shards with scene objects: extra "detect the {category}" samples
    seed: int = 0                    # which samples get a negative twin, and which absent object it names
    expert: dict | None = None       # embodiment: also an action chunk per frame (expert.ExpertConfig fields)


def detect_format(root: str | Path) -> str:
    root = Path(root)
    if (root / "meta.json").is_file():
        return read_meta(root)["kind"]
    if (root / "meta" / "info.json").is_file():
        return "lerobot"
    if not root.exists():
        raise DataFormatError(f"{root}: data directory does not exist")
    raise DataFormatError(f"{root}: neither a shard dataset (meta.json) nor a LeRobot dataset (meta/info.json)")


def load_samples(root: str | Path, stage: str, tok: TokenizerConfig, cfg: SourceConfig = SourceConfig(),
                 progress: bool = True) -> list[Sample]:
    """All samples of ``root`` for ``stage``; the dataset kind must fit the stage."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    kind = detect_format(root)
    allowed = {"grounding": ("grounding", "motion", "lerobot"), "motion": ("motion", "lerobot"),
               "embodiment": ("lerobot", "motion")}[stage]
    if kind not in allowed:
        raise DataFormatError(f"{root}: a {kind} dataset cannot train the {stage} stage (needs {allowed})")
    if kind == "lerobot":
        out = embodiment_samples(root, tok, cfg, progress=progress)
        if stage == "grounding":
            out = [s for s in out if s.supervise_grounding]
            for s in out:
                s.target = replace(s.target, waypoints=[])
    else:
        out = []
        rng = np.random.default_rng([cfg.seed, STAGES.index(stage)])
        it = iter_shard_samples(root)
        for s in tqdm(it, desc=f"load {Path(root).name}", disable=not progress, leave=False):
            target = grounding_target(s)
            if kind == "motion" and stage != "grounding":
                target.waypoints = waypoints_from_trajectory(
                    s["traj_t"], pose7_to_T(s["traj_ee_base"]), s["traj_gripper"], pose7_to_T(s["camera_to_base"]),
                    float(s["t0"]), tok.num_waypoints, tok.waypoint_dt)
            out.append(Sample(s["rgb"], s["depth"], s["K"], s["instruction"], target, True, s["source"]))
            neg = negative_instruction(s.get("scene_categories"), tok.categories, rng) \
                if rng.random() < cfg.negative_fraction else None
            if neg is not None:
                out.append(Sample(s["rgb"], s["depth"], s["K"], neg, PoseTarget.absent(neg), True,
                                  s["source"] + "#negative"))
            if stage == "grounding" and "scene_object_pose" in s and rng.random() < cfg.detect_fraction:
                instr, det = detect_target(s, tok.categories, rng)
                out.append(Sample(s["rgb"], s["depth"], s["K"], instr, det, True, s["source"] + "#detect"))
            if cfg.max_samples and len(out) >= cfg.max_samples:
                break
    if not out:
        raise DataFormatError(f"{root}: no usable {stage} samples")
    return out



def detect_target(s: dict, categories: list[str], rng: np.random.Generator) -> tuple[str, PoseTarget]:
    """A "detect the {query}" prompt for a shard sample with its scene objects (near to far)
    and its answer: every instance whose category is the query or ends with it (``cube``
    matches ``red cube``), near to far; none -> ``<no_object>``. The query is a category or
    the last word of one (its shape), drawn uniformly."""
    words = sorted({c for c in categories if c != "object"} | {c.split()[-1] for c in categories if c != "object"})
    q = words[int(rng.integers(len(words)))]
    inst = []
    for k, cat in enumerate(s["scene_categories"]):
        if cat == q or cat.endswith(" " + q):
            box = tuple(float(x) for x in s["scene_box_xyxy"][k])
            p = s["scene_object_pose"][k]
            inst.append(PoseTarget(cat, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), Pose(p[:3], p[3:7]),
                                   box_xyxy=box, size=np.asarray(s["scene_object_size"][k], float)))
    instr = f"detect the {q}"
    if not inst:
        return instr, PoseTarget.absent(q)
    return instr, replace(inst[0], instances=inst)


def embodiment_samples(root: str | Path, tok: TokenizerConfig, cfg: SourceConfig = SourceConfig(),
                       progress: bool = True) -> list[Sample]:
    reader = LeRobotReader(root)
    need = ("observation.images.color", "observation.ee_pose_base", "observation.gripper",
            "observation.camera_intrinsics", "observation.camera_to_base")
    missing = [k for k in need if k not in reader.features]
    if missing:
        raise DataFormatError(f"{Path(root) / 'meta' / 'info.json'}: features {missing} are missing; "
                              "record with posevla_ros recorder_node")
    cams = [camera_keys(c) for c in EXTRA_CAMERAS if camera_keys(c)["rgb"] in reader.features]
    if any(c["K"] not in reader.features for c in cams):
        raise DataFormatError(f"{Path(root) / 'meta' / 'info.json'}: an extra camera image without its intrinsics "
                              f"({[c['K'] for c in cams]})")
    cats = reader.info.get("annotation_categories")
    chunk_cfg = None
    if cfg.expert is not None:
        chunk_cfg = ExpertConfig.from_dict(cfg.expert)
    out: list[Sample] = []
    for e in tqdm(range(reader.num_episodes), desc=f"load {Path(root).name}", disable=not progress, leave=False):
        ep = reader.read_episode(e)
        t = ep["frame_index"].astype(np.float64) / reader.fps    # exact, unlike float32 timestamps
        T_base_ee = pose7_to_T(ep["observation.ee_pose_base"])
        grip = ep["observation.gripper"].reshape(-1)
        annotated = cats is not None and all(f"annotation.{k}" in ep for k in ("object_pose_camera", "box_xyxy",
                                                                             "object_size"))
        for i in range(0, ep["length"], max(1, cfg.frame_stride)):
            T_base_cam = pose7_to_T(ep["observation.camera_to_base"][i])
            wps = waypoints_from_trajectory(t, T_base_ee, grip, T_base_cam, float(t[i]), tok.num_waypoints,
                                            tok.waypoint_dt, cfg.open_threshold)
            if annotated:
                p7 = ep["annotation.object_pose_camera"][i]
                cat = cats[int(ep["annotation.category_index"][i])]
                uv = tuple(float(x) for x in ep["annotation.box_uv"][i])
                box = tuple(float(x) for x in ep["annotation.box_xyxy"][i])
                size = ep["annotation.object_size"][i].astype(np.float64)
            else:   # placeholder grounding; its tokens are not supervised
                p7, cat, uv = np.r_[0, 0, 1.0, 0, 0, 0, 1], tok.categories[-1], (0.5, 0.5)
                box, size = (0.45, 0.45, 0.55, 0.55), np.full(3, 0.05)
            target = PoseTarget(cat, uv, Pose(p7[:3], p7[3:]), wps, box_xyxy=box, size=size)
            depth = ep["observation.depth"][i] if "observation.depth" in ep else None
            K = ep["observation.camera_intrinsics"][i].reshape(3, 3).astype(np.float64)
            views = [{"rgb": ep[c["rgb"]][i], "depth": ep[c["depth"]][i] if c["depth"] in ep else None,
                      "K": ep[c["K"]][i].reshape(3, 3).astype(np.float64)} for c in cams]
            chunk = state = None
            if chunk_cfg is not None:
                chunk = chunk_from_trajectory(t, T_base_ee, grip, T_base_cam, float(t[i]), chunk_cfg,
                                              cfg.open_threshold)
                state = robot_state(T_base_ee[i], grip[i], T_base_cam)
            out.append(Sample(ep["observation.images.color"][i], depth, K, ep["task"], target, annotated,
                              f"{root}#ep{e}/frame{i}", views or None, chunk, state))
            if cfg.max_samples and len(out) >= cfg.max_samples:
                return out
    return out
