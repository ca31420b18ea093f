"""How the sim scene looks, apart from where the camera stands (camera.py): ``SceneLook``.

Training renders one lighting (a key light from above, a fill light, a dim headlight) and one
wooden table. A look changes them, so the generalization suite (posevla_ros/cli/bench_generalization.py)
can measure how much of the policy's success is tied to them:

    SceneLook(light=0.4)                          # every light at 40 % of its intensity
    SceneLook(light_color=(1.0, 0.75, 0.5))       # warm light (multiplies each light's color)
    SceneLook(light_azimuth_deg=-90, light_elevation_deg=30)   # the key light low from the robot's right
    SceneLook(table_rgb=(0.9, 0.9, 0.9))          # a white table
    SceneLook.parse("light=0.4,light_color=1:0.75:0.5,table=0.9:0.9:0.9")   # the --look text

Only the rendered images change: geometry, physics and the task stay as they are. No mujoco
import here: a bad value fails in one line before anything heavy loads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from posevla_core.sim.camera import CAMERA_NOMINAL_TARGET

KEY_LIGHT_DISTANCE_M = 1.6   # a moved key light stands this far from the table target, pointing at it


def _rgb(name: str, value) -> tuple[float, float, float] | None:
    if value is None:
        return None
    v = tuple(float(x) for x in value)
    if len(v) != 3 or not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in v):
        raise ValueError(f"scene look {name}: expected 3 values in [0, 1] (r:g:b), got {list(value)}")
    return v


@dataclass(frozen=True)
class SceneLook:
    """light: scale of every light's diffuse color and the headlight (1 = as trained);
    light_color: r, g, b multipliers of the lights (None = white);
    light_azimuth_deg / light_elevation_deg: where the key light comes from, seen from the
    table target (azimuth about the vertical from the base's +x toward +y; None = as built,
    nearly overhead); table_rgb: the table top's color (None = the wooden brown)."""

    light: float = 1.0
    light_color: tuple[float, float, float] | None = None
    light_azimuth_deg: float | None = None
    light_elevation_deg: float = 45.0
    table_rgb: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(float(self.light)) and 0.0 <= float(self.light) <= 5.0):
            raise ValueError(f"scene look light: an intensity scale in [0, 5], got {self.light}")
        object.__setattr__(self, "light_color", _rgb("light_color", self.light_color))
        object.__setattr__(self, "table_rgb", _rgb("table", self.table_rgb))
        if self.light_azimuth_deg is not None and not math.isfinite(float(self.light_azimuth_deg)):
            raise ValueError(f"scene look light_azimuth: degrees, got {self.light_azimuth_deg}")
        if not 5.0 <= float(self.light_elevation_deg) <= 90.0:
            raise ValueError(f"scene look light_elevation: degrees in [5, 90], got {self.light_elevation_deg}")

    def apply(self, model, key_light: str = "key", table_geom: str = "table") -> None:
        """Change ``model`` (a compiled MjModel of scene.build_model) in place."""
        # MuJoCo: optional (the sim extra); sim.gl picks its GL backend first
        import mujoco

        tint = np.array(self.light_color or (1.0, 1.0, 1.0))
        model.light_diffuse[:] = model.light_diffuse * self.light * tint
        model.light_specular[:] = model.light_specular * self.light * tint
        model.vis.headlight.diffuse[:] = np.asarray(model.vis.headlight.diffuse) * self.light * tint
        model.vis.headlight.ambient[:] = np.asarray(model.vis.headlight.ambient) * self.light * tint
        if self.light_azimuth_deg is not None:
            k = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_LIGHT, key_light)
            az, el = math.radians(self.light_azimuth_deg), math.radians(self.light_elevation_deg)
            u = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            model.light_pos[k] = CAMERA_NOMINAL_TARGET + KEY_LIGHT_DISTANCE_M * u
            model.light_dir[k] = -u
        if self.table_rgb is not None:
            g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, table_geom)
            model.geom_rgba[g, :3] = self.table_rgb

    _KEYS = {"light": "light", "light_color": "light_color", "light_azimuth": "light_azimuth_deg",
             "light_elevation": "light_elevation_deg", "table": "table_rgb"}

    @classmethod
    def parse(cls, text: str | None) -> "SceneLook | None":
        """``key=value`` pairs joined by commas (keys: light, light_color, light_azimuth,
        light_elevation, table; colors as r:g:b); empty = None. ValueError in one line."""
        text = (text or "").strip()
        if not text:
            return None
        values = {}
        for item in text.split(","):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or key not in cls._KEYS:
                raise ValueError(f"scene look {item.strip()!r}: use key=value with keys {', '.join(cls._KEYS)} "
                                 f"(colors r:g:b)")
            try:
                values[cls._KEYS[key]] = (tuple(float(x) for x in value.split(":")) if key in ("light_color", "table")
                                          else float(value))
            except ValueError:
                raise ValueError(f"scene look {key}={value!r}: not a number") from None
        return cls(**values)

    def format(self) -> str:
        """The text ``parse`` reads back (only what differs from the defaults)."""
        out = []
        inv = {v: k for k, v in self._KEYS.items()}
        for f in fields(self):
            v = getattr(self, f.name)
            if v == f.default:
                continue
            out.append(f"{inv[f.name]}={':'.join(f'{x:g}' for x in v) if isinstance(v, tuple) else f'{v:g}'}")
        return ",".join(out)
