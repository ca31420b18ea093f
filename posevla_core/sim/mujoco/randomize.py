"""Per-episode domain randomization of the sim: where the camera stands, its lens, the light,
the table, and a real RGB-D sensor's depth: ``DomainRandomization``.

A checkpoint trained from one viewpoint learns that viewpoint (docs/generalization: 0-1/5
pick success with the camera 30 % closer or farther). The model reasons in the camera frame
with the ray prior (K enters every patch), so nothing ties it to one camera but the data;
these draws make the data span the cameras and rooms a lab has:

    env = SimEnv(randomize=DomainRandomization())   # every reset draws a camera, a look, a sensor

Each draw comes from its own stream of the episode seed, so an episode is the same scene
(objects, instruction, arm start) with or without randomization, and the same seed always
gives the same camera. No mujoco import here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from posevla_core.sim.camera import CAMERA_NOMINAL_TARGET, NOMINAL_AZIMUTH_DEG, Orbit, look_at_optical
from posevla_core.sim.mujoco.look import SceneLook

# the table workspace the camera must keep in view: objects at x 0.35-0.62, |y| <= 0.25 and
# bins up to |y| 0.32 lie within this radius of the orbit target (camera.CAMERA_NOMINAL_TARGET)
WORKSPACE_RADIUS_M = 0.36


@dataclass(frozen=True)
class DepthNoise:
    """A structured-light / stereo depth sensor's faults, applied to a clean rendered depth:
    axial noise growing with z^2, readings lost at depth edges (the flying-pixel filter of
    RealSense-class cameras), on dark surfaces (too little IR return), and in a few blobs.
    Lost readings are NaN, as the sim's "no reading"."""

    axial_sigma_per_m2: float = 0.0025   # sigma = this * z^2 (m): 2.5 mm at 1 m, 6 mm at 1.5 m
    edge_jump_m: float = 0.03            # a neighbour this much nearer or farther marks an edge
    edge_drop: float = 0.7               # probability an edge pixel is lost
    dark_luma: float = 30.0              # 0-255 luminance below which a surface may return nothing
    dark_drop: float = 0.3               # in patches of ``patch_px``: dropouts come in clumps
    patch_px: int = 6
    holes: int = 3                       # random missing blobs per frame, up to
    hole_radius_frac: float = 0.04       # of the image height

    def apply(self, depth: np.ndarray, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        z = np.array(depth, np.float32, copy=True)
        h, w = z.shape
        valid = np.isfinite(z)
        filled = np.where(valid, z, 0.0)   # edges of the true surface, not of the noise
        z[valid] += (rng.standard_normal(int(valid.sum())) * self.axial_sigma_per_m2 * z[valid] ** 2).astype(np.float32)
        jump = np.zeros_like(z, bool)
        jump[:, 1:] |= np.abs(np.diff(filled, axis=1)) > self.edge_jump_m
        jump[:, :-1] |= np.abs(np.diff(filled, axis=1)) > self.edge_jump_m
        jump[1:, :] |= np.abs(np.diff(filled, axis=0)) > self.edge_jump_m
        jump[:-1, :] |= np.abs(np.diff(filled, axis=0)) > self.edge_jump_m
        lost = jump & (rng.random(z.shape) < self.edge_drop)
        luma = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        p = max(1, int(self.patch_px))
        clumps = rng.random((-(-h // p), -(-w // p))) < self.dark_drop
        lost |= (luma < self.dark_luma) & np.repeat(np.repeat(clumps, p, 0), p, 1)[:h, :w]
        yy, xx = np.mgrid[0:h, 0:w]
        for _ in range(int(rng.integers(0, self.holes + 1))):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(0.3, 1.0, 2) * self.hole_radius_frac * h
            lost |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1.0
        z[lost] = np.nan
        return z


@dataclass(frozen=True)
class DomainRandomization:
    """Ranges of the per-episode draws (uniform unless noted).

    Camera: an orbit about the table target (camera.Orbit) with the target itself moved by up
    to ``target_jitter_m``, and a vertical fov drawn from ``fov_deg`` but never so narrow that
    the workspace (``WORKSPACE_RADIUS_M``) leaves the square center crop the model sees.
    ``nominal_fraction`` of the episodes keep the nominal camera with its few-cm jitter, so
    the viewpoint most users start from stays dense in the data.
    Look: every light scaled, tinted and the key light moved; the table recolored with
    probability ``table_prob``, in muted colors (gray to pastel, ``table_saturation``): a
    table as saturated as the objects would make "the yellow cube" ambiguous to any eye. Sensor: ``depth_noise`` with probability ``depth_noise_prob``.
    """

    azimuth_deg: tuple[float, float] = (-65.0, 65.0)
    elevation_deg: tuple[float, float] = (18.0, 72.0)
    distance_m: tuple[float, float] = (0.55, 1.7)
    roll_deg: tuple[float, float] = (-12.0, 12.0)
    target_jitter_m: float = 0.05
    fov_deg: tuple[float, float] = (38.0, 85.0)
    nominal_fraction: float = 0.15
    light: tuple[float, float] = (0.35, 1.8)
    light_tint: float = 0.3              # each channel's multiplier in [1 - tint, 1]
    table_prob: float = 0.6
    table_saturation: float = 0.35
    depth_noise: DepthNoise | None = DepthNoise()
    depth_noise_prob: float = 0.6

    def sample_camera(self, seed: int) -> tuple[np.ndarray, float] | None:
        """(4x4 optical pose in base, vertical fov) of episode ``seed``, or None: the nominal camera."""

        rng = np.random.default_rng([int(seed), 11])
        if rng.random() < self.nominal_fraction:
            return None
        o = Orbit(azimuth_deg=rng.uniform(*self.azimuth_deg), elevation_deg=rng.uniform(*self.elevation_deg),
                  distance_m=rng.uniform(*self.distance_m), roll_deg=rng.uniform(*self.roll_deg))
        pos = o.matrix()[:3, 3]
        target = CAMERA_NOMINAL_TARGET + rng.uniform(-self.target_jitter_m, self.target_jitter_m, 3)
        fov_min = math.degrees(2 * math.atan(WORKSPACE_RADIUS_M / max(float(np.linalg.norm(pos - target)), 1e-3)))
        lo = min(max(self.fov_deg[0], fov_min), self.fov_deg[1])
        return look_at_optical(pos, target, o.roll_deg), float(rng.uniform(lo, self.fov_deg[1]))

    def sample_look(self, seed: int) -> SceneLook:
        rng = np.random.default_rng([int(seed), 12])
        tint = tuple(float(v) for v in rng.uniform(1.0 - self.light_tint, 1.0, 3))
        gray, hue = rng.uniform(0.08, 0.95), rng.uniform(0.0, 1.0, 3)
        table = (tuple(float(v) for v in np.clip(gray + self.table_saturation * (hue - hue.mean()), 0, 1))
                 if rng.random() < self.table_prob else None)
        return SceneLook(light=float(rng.uniform(*self.light)), light_color=tint,
                         light_azimuth_deg=float(NOMINAL_AZIMUTH_DEG + rng.uniform(-180.0, 180.0)),
                         light_elevation_deg=float(rng.uniform(25.0, 90.0)), table_rgb=table)

    def sensor_rng(self, seed: int) -> np.random.Generator | None:
        """The depth-noise stream of episode ``seed``, or None: a clean sensor this episode."""
        rng = np.random.default_rng([int(seed), 13])
        return rng if self.depth_noise is not None and rng.random() < self.depth_noise_prob else None
