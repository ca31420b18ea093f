"""Rotation token schemes measured on the sim's label distribution (the numbers behind
docs/pose_tokens.md).

Labels: ``--scenes`` training scenes (seeds >= 100000, as ``make checkpoint`` uses), camera
optical frame: every object and bin of the scene (``SimEnv.object_labels``) and the expert's
hand keyframes (``pipeline.expert_clock``). Objects are measured raw and canonical under
their symmetry (symmetry.canonicalize against the scheme's reference).

Schemes (3 tokens each):
  rotvec        rotation vector of R, 255 linear bins over [-pi, pi] per component (pose tokens v1)
  rotvec_ref    rotation vector of R_ref^T R (fitted reference), 255 linear bins
  euler         Euler xyz of R, 360 circular bins (the official implementation's choice)
  euler_ref     Euler xyz of R_ref^T R, 360 circular bins (pose tokens v2: tokens.PoseTokenizer
                with the references of tokens.fit_bins)

Per scheme and label set:
  quant_mean_deg / quant_max_deg  geodesic error of decode(encode(R)) (half a bin per value)
  near_disc     fraction of labels within 20 degrees (geodesic) of the representation's
                discontinuity: a rotation angle of pi for rotation vectors (the distance is
                180 - angle); the gimbal lock for Euler angles (middle angle at +-90 degrees;
                the distance is 90 - |middle|). The +-pi wrap of a circular Euler bin is not a
                discontinuity: first and last bins are neighbours in the soft labels and decoding.
  near_canon    (canonical objects) fraction within 20 degrees of a canonicalization boundary,
                where the canonical label jumps by a symmetry (cube / square: half the angle
                gap between the two rotations closest to the reference, an upper bound of the
                rate; cylinder: the axis within 20 degrees of perpendicular to the reference's).
  jump_eighth / jump_half  fraction of labels where one of 8 random 5-degree perturbations
                (seeded; objects re-canonicalized after it) moves some token by more than an
                eighth / half of its range (circular distance for circular bins, which can
                never exceed half the range: its jump_half is 0 by construction; an eighth of
                a circular Euler angle is 45 degrees, of a rotation-vector component pi / 4 rad,
                so a cube label jumping by its 90-degree symmetry counts).

    .venv/bin/python -m benchmarks.rotation_tokens [--scenes 300] [--out bench_results]
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from benchmarks.common import write_result
from scipy.spatial.transform import Rotation

NEAR_DEG = 20.0
PERTURB_DEG = 5.0
PERTURBATIONS = 8
ROTVEC_BINS = 255


@dataclass
class Labels:
    obj_R: np.ndarray          # (N, 3, 3) camera-frame object rotations
    obj_kind: list[str]        # symmetry kind of each
    hand_R: np.ndarray         # (M, 3, 3) camera-frame hand keyframe rotations
    targets: list              # PoseTargets (for tokens.fit_bins)


def collect(scenes: int, seed0: int) -> Labels:
    from posevla_core.config import TokenizerConfig
    from posevla_core.geometry import se3
    from posevla_core.poses import Pose, PoseTarget, Waypoint
    from posevla_core.sim.mujoco import scene as sim_scene
    from posevla_core.sim.mujoco.env import SimEnv
    from posevla_core.train.pipeline import expert_clock

    dt = TokenizerConfig().waypoint_dt
    obj_R, kinds, hand_R, targets = [], [], [], []
    with SimEnv(width=64, height=64) as env:
        for i in range(scenes):
            spec = env.reset(seed=seed0 + i)
            cam_inv = se3.inv_T(env.camera_pose_in_base())
            _, poses, grip = expert_clock(env, dt)
            wps = [Waypoint(Pose.from_matrix(cam_inv @ T), g) for T, g in zip(poses[1:], grip[1:])]
            hand_R += [w.pose.matrix()[:3, :3] for w in wps]
            for name in list(spec.objects) + list(spec.bins):
                g = env.object_labels(name)
                pose = Pose(g["object_pose"][:3], g["object_pose"][3:])
                obj_R.append(pose.matrix()[:3, :3])
                kinds.append(sim_scene.symmetry_of(name))
                targets.append(PoseTarget(g["category"], tuple(g["box_uv"]), pose,
                                          wps if name == spec.target else [], box_xyxy=tuple(g["box_xyxy"]),
                                          size=g["object_size"]))
    return Labels(np.array(obj_R), kinds, np.array(hand_R), targets)


def fitted_refs(labels: Labels, canonical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Object and hand references of tokens.fit_bins (objects: with or without symmetries)."""
    from posevla_core.config import TokenizerConfig
    from posevla_core.tokens.grammar import fit_bins
    from posevla_core.train.demo_model import sim_categories, sim_symmetries

    cfg = TokenizerConfig(categories=sim_categories(), symmetries=sim_symmetries() if canonical else {})
    out = fit_bins(labels.targets, cfg)
    return (Rotation.from_quat(out["object_rotation_ref"]).as_matrix(),
            Rotation.from_quat(out["hand_rotation_ref"]).as_matrix())


# ---- schemes: (tokens of a rotation, rotation of tokens, bins, circular, distance to the discontinuity)
@dataclass
class Scheme:
    encode: Callable[[np.ndarray], np.ndarray]
    decode: Callable[[np.ndarray], np.ndarray]
    bins: int
    circular: bool
    disc_deg: Callable[[np.ndarray], float]


def rotvec_scheme(ref: np.ndarray) -> Scheme:
    w = 2 * math.pi / ROTVEC_BINS

    def enc(R):
        rv = Rotation.from_matrix(ref.T @ R).as_rotvec()
        return np.clip(np.floor((rv + math.pi) / w), 0, ROTVEC_BINS - 1).astype(int)

    def dec(ids):
        return ref @ Rotation.from_rotvec(-math.pi + (np.asarray(ids) + 0.5) * w).as_matrix()

    def disc(R):
        return 180.0 - math.degrees(Rotation.from_matrix(ref.T @ R).magnitude())

    return Scheme(enc, dec, ROTVEC_BINS, False, disc)


def euler_scheme(ref: np.ndarray) -> Scheme:
    """Through the shipped tokenizer (PoseTokenizer.rotation_tokens / rotation_from_tokens)."""
    from posevla_core.config import TokenizerConfig
    from posevla_core.tokens.grammar import PoseTokenizer

    q = tuple(Rotation.from_matrix(ref).as_quat())
    tok = PoseTokenizer(TokenizerConfig(object_rotation_ref=q))
    start = tok.blocks["rotation"].start

    def enc(R):
        return np.array(tok.rotation_tokens(R, "object")) - start

    def dec(ids):
        return tok.rotation_from_tokens([int(i) + start for i in ids], "object")

    def disc(R):
        b = Rotation.from_matrix(ref.T @ R).as_euler(tok.cfg.rotation_order)[1]
        return 90.0 - abs(math.degrees(b))

    return Scheme(enc, dec, tok.cfg.rotation_bins, True, disc)


def canon_boundary_deg(R: np.ndarray, kind: str, ref: np.ndarray) -> float:
    """Distance (degrees; a lower bound for the finite groups) from R to where its canonical
    label jumps to another member of the group."""
    from posevla_core.geometry import symmetry

    if kind in ("none", "sphere"):
        return math.inf
    if kind == "cylinder":
        return abs(90.0 - math.degrees(math.acos(np.clip(R[:, 2] @ ref[:, 2], -1, 1))))
    ang = np.sort(np.degrees(symmetry._angle(ref.T[None] @ (R[None] @ symmetry.group(kind)))))
    return 0.5 * (ang[1] - ang[0])


def measure(scheme: Scheme, Rs: np.ndarray, label_of: Callable[[np.ndarray, int], np.ndarray],
            canon: Callable[[np.ndarray, int], float] | None, rng: np.random.Generator) -> dict:
    """``label_of(R_raw, k)``: the label of the k-th raw rotation (canonicalized or not)."""
    quant, near, near_c, je, jh = [], 0, 0, 0, 0
    for k, R in enumerate(Rs):
        L = label_of(R, k)
        ids = scheme.encode(L)
        quant.append(math.degrees((Rotation.from_matrix(scheme.decode(ids)).inv() * Rotation.from_matrix(L)).magnitude()))
        near += scheme.disc_deg(L) < NEAR_DEG
        if canon is not None:
            near_c += canon(R, k) < NEAR_DEG
        axes = rng.normal(size=(PERTURBATIONS, 3))
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        jump = 0.0
        for P in Rotation.from_rotvec(axes * math.radians(PERTURB_DEG)).as_matrix():
            d = np.abs(scheme.encode(label_of(R @ P, k)) - ids)
            if scheme.circular:
                d = np.minimum(d, scheme.bins - d)
            jump = max(jump, float(d.max()) / scheme.bins)
        je += jump > 0.125
        jh += jump > 0.5
    n = len(Rs)
    out = {"n": n, "quant_mean_deg": float(np.mean(quant)), "quant_max_deg": float(np.max(quant)),
           "near_disc": near / n, "jump_eighth": je / n, "jump_half": jh / n}
    if canon is not None:
        out["near_canon"] = near_c / n
    return out


def run(scenes: int = 300, out_dir: str = "bench_results", seed0: int = 100_000) -> dict:
    from posevla_core.geometry import symmetry

    t0 = time.perf_counter()
    labels = collect(scenes, seed0)
    t1 = time.perf_counter()
    ref_obj, ref_hand = fitted_refs(labels, canonical=True)
    ref_obj_raw, _ = fitted_refs(labels, canonical=False)
    eye = np.eye(3)
    schemes = {"rotvec": (rotvec_scheme, eye, eye, eye), "rotvec_ref": (rotvec_scheme, ref_obj, ref_obj_raw, ref_hand),
               "euler": (euler_scheme, eye, eye, eye), "euler_ref": (euler_scheme, ref_obj, ref_obj_raw, ref_hand)}
    kinds = labels.obj_kind
    res: dict = {"scenes": scenes, "seeds": [seed0, seed0 + scenes - 1], "near_deg": NEAR_DEG,
                 "perturb_deg": PERTURB_DEG, "perturbations": PERTURBATIONS,
                 "objects_by_kind": {k: kinds.count(k) for k in sorted(set(kinds))},
                 "object_rotation_ref_xyzw": Rotation.from_matrix(ref_obj).as_quat().tolist(),
                 "hand_rotation_ref_xyzw": Rotation.from_matrix(ref_hand).as_quat().tolist(), "results": {}}
    for name, (make, r_obj, r_raw, r_hand) in schemes.items():
        rng = np.random.default_rng(0)
        so, sr, sh = make(r_obj), make(r_raw), make(r_hand)
        res["results"][name] = {
            "objects_canonical": measure(so, labels.obj_R, lambda R, k, r=r_obj: symmetry.canonicalize(R, kinds[k], r),
                                         lambda R, k, r=r_obj: canon_boundary_deg(R, kinds[k], r), rng),
            "objects_raw": measure(sr, labels.obj_R, lambda R, k: R, None, rng),
            "hands": measure(sh, labels.hand_R, lambda R, k: R, None, rng),
        }
    # The new scheme per symmetry kind: where the canonical labels' own jumps come from.
    so = euler_scheme(ref_obj)
    res["euler_ref_objects_by_kind"] = {}
    for kind in sorted(set(kinds)):
        idx = [k for k, x in enumerate(kinds) if x == kind]
        res["euler_ref_objects_by_kind"][kind] = measure(
            so, labels.obj_R[idx], lambda R, j, kind=kind: symmetry.canonicalize(R, kind, ref_obj),
            lambda R, j, kind=kind: canon_boundary_deg(R, kind, ref_obj), np.random.default_rng(0))
    res["seconds"] = {"labels": t1 - t0, "measure": time.perf_counter() - t1}
    path = write_result(out_dir, "rotation_tokens", res)
    print(table(res))
    print(f"wrote {path}")
    return res


def table(res: dict) -> str:
    rows = ["| labels | scheme | n | quant. mean / max (deg) | within 20 deg of a discontinuity | "
            "within 20 deg of a canon. boundary | 5-deg jump > 1/8 range | > 1/2 range |",
            "|---|---|---|---|---|---|---|---|"]
    for labels in ("objects_canonical", "objects_raw", "hands"):
        for name, r in res["results"].items():
            m = r[labels]
            nc = f"{100 * m['near_canon']:.1f} %" if "near_canon" in m else "-"
            rows.append(f"| {labels} | {name} | {m['n']} | {m['quant_mean_deg']:.2f} / {m['quant_max_deg']:.2f} | "
                        f"{100 * m['near_disc']:.1f} % | {nc} | {100 * m['jump_eighth']:.1f} % | "
                        f"{100 * m['jump_half']:.1f} % |")
    rows += ["", "| euler_ref, canonical objects by symmetry | n | within 20 deg of a canon. boundary | "
                 "5-deg jump > 1/8 range |", "|---|---|---|---|"]
    for kind, m in res.get("euler_ref_objects_by_kind", {}).items():
        rows.append(f"| {kind} | {m['n']} | {100 * m['near_canon']:.1f} % | {100 * m['jump_eighth']:.1f} % |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=300, help="training scenes (seeds from 100000)")
    p.add_argument("--out", default="bench_results", help="result directory")
    args = p.parse_args(argv)
    run(args.scenes, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
