"""Sim options beyond the camera (camera.py) and the look (look.py) that the generalization
suite sweeps: the depth sensor's faults, how many objects stand on the table, their size.
``scene_options`` reads them (the sim_node parameters / launch arguments ``depth_noise``,
``objects``, ``object_scale``) into SimEnv keyword arguments; each default is the scene as trained.

The sim renders a perfect depth image; a RealSense-class sensor loses readings at depth edges
and on dark surfaces, drops blobs and adds noise growing with z^2 (sim/randomize.py
DepthNoise). ``--depth-noise`` names a level:

    parse_depth_noise("realsense")            # DepthNoise() as training's randomization draws it
    parse_depth_noise("heavy")                # most edges and dark patches lost, more and bigger holes
    parse_depth_noise("heavy,holes=12")       # a level with some fields changed
    parse_depth_noise("axial_sigma_per_m2=0.01")   # "realsense" with one field changed
    parse_depth_noise("")                     # None: the clean depth, as today

No mujoco import here: a bad value fails in one line before anything heavy loads.
"""
from __future__ import annotations

import math
from dataclasses import fields, replace

from posevla_core.sim.mujoco.randomize import DepthNoise
from posevla_core.sim.mujoco.scene import check_object_scale
from posevla_core.sim.tasks import check_objects

DEPTH_NOISE_LEVELS = {
    "realsense": DepthNoise(),
    # a sensor at the edge of its range or in sunlight: twice the axial noise, nearly every
    # edge pixel and most dark patches lost, up to 12 holes of up to 8 % of the image height;
    # it loses ~10 % of a 224 px frame's readings (seeds 1000-1004; "realsense": ~5 %)
    "heavy": DepthNoise(axial_sigma_per_m2=0.005, edge_jump_m=0.02, edge_drop=0.95, dark_luma=60.0,
                        dark_drop=0.6, patch_px=8, holes=12, hole_radius_frac=0.08),
}
_PROBABILITIES = ("edge_drop", "dark_drop")


def parse_depth_noise(text: str | None) -> DepthNoise | None:
    """``text``: "" / "none" (None: clean depth), a level of DEPTH_NOISE_LEVELS, and/or
    ``field=value`` pairs of DepthNoise (comma separated; fields alone change "realsense").
    ValueError in one line on a bad value."""
    raw = (text or "").strip()
    if raw.lower() in ("", "none", "off", "clean"):
        return None
    levels, kw = [], {}
    names = {f.name: f.type for f in fields(DepthNoise)}
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        if "=" not in part:
            if part.lower() not in DEPTH_NOISE_LEVELS:
                raise ValueError(f"depth noise {raw!r}: unknown level {part!r}; use one of "
                                 f"{', '.join(DEPTH_NOISE_LEVELS)}, none, or field=value ({', '.join(names)})")
            levels.append(part.lower())
            continue
        k, v = (x.strip() for x in part.split("=", 1))
        if k not in names:
            raise ValueError(f"depth noise {raw!r}: unknown field {k!r}; fields: {', '.join(names)}")
        try:
            value = int(v) if k in ("patch_px", "holes") else float(v)
        except ValueError:
            raise ValueError(f"depth noise {raw!r}: {k}={v!r} is not a number") from None
        if not math.isfinite(value) or value < 0 or (k in _PROBABILITIES and value > 1):
            raise ValueError(f"depth noise {raw!r}: {k} must be {'in [0, 1]' if k in _PROBABILITIES else '>= 0'}, "
                             f"got {v}")
        kw[k] = value
    if len(levels) > 1:
        raise ValueError(f"depth noise {raw!r}: name one level, not {', '.join(levels)}")
    if kw.get("patch_px", 1) < 1:
        raise ValueError(f"depth noise {raw!r}: patch_px must be >= 1")
    return replace(DEPTH_NOISE_LEVELS[levels[0] if levels else "realsense"], **kw)


DEFAULTS = {"depth_noise": "", "objects": 0, "object_scale": 1.0}   # as trained


def scene_options(depth_noise: str | None = "", objects: int | None = 0, object_scale: float | None = 1.0) -> dict:
    """SimEnv keyword arguments of the options that differ from the scene as trained (an empty
    dict: none): ``depth_noise`` (parse_depth_noise), ``objects`` (tasks.check_objects),
    ``object_scale`` (scene.check_object_scale). ValueError in one line on a bad value."""

    out = {"depth_noise": parse_depth_noise(depth_noise), "objects": check_objects(objects),
           "object_scale": check_object_scale(1.0 if object_scale is None else object_scale)}
    return {k: v for k, v in out.items() if v is not None and not (k == "object_scale" and v == 1.0)}
