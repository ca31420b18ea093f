"""Why pick success falls with camera distance: one static frame per held-out scene, the
camera on the nominal orbit at several distances, and for each the checkpoint's first
prediction against the simulator's truth.

Per distance it reports, averaged over scenes: the target's box size in the model's input
pixels, the share of true positions (object + the scripted demonstrator's waypoints, camera
frame) outside the checkpoint's position bins, refusals, the pointer's 2D error (pixels of the
model input), and the object's 3D error split into depth (along the viewing ray) and lateral.

    .venv/bin/python benchmarks/diagnose_distance.py --checkpoint checkpoints/demo --scenes 12
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="checkpoints/demo")
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--distances", default="0.6,0.8,0.97,1.2,1.6")
    ap.add_argument("--fov", type=float, default=None, help="vertical fov (default: the scene's 50 deg)")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args(argv)

    from posevla_core.policies.factory import load_policy
    from posevla_core.sim.camera import CameraPlacement, Orbit
    from posevla_core.sim.mujoco.env import SimEnv
    from posevla_core.train.pipeline import expert_targets_in_camera

    pol = load_policy(a.checkpoint, device="cpu")
    tok = pol.cfg.tokens
    edges = np.array([[e[0], e[-1]] for e in tok.position_edges]) if tok.position_edges else \
        np.stack([tok.position_min, tok.position_max], 1)
    side = pol.cfg.image_size
    rows = []
    for dist in [float(x) for x in a.distances.split(",")]:
        cam = CameraPlacement(orbit=Orbit(distance_m=dist), fov_deg=a.fov)
        acc = {"box_px": [], "outside_bins": [], "refused": 0, "uv_err_px": [], "depth_err_m": [],
               "lateral_err_m": [], "z_true_m": []}
        with SimEnv(width=224, height=224, camera=cam) as env:
            for s in range(a.seed, a.seed + a.scenes):
                spec = env.reset(seed=s, task="pick")
                rgb, depth, K = env.render()
                lab = env.object_labels(spec.target)
                x1, y1, x2, y2 = lab["box_xyxy"]
                crop = min(rgb.shape[:2])
                acc["box_px"].append(max(x2 - x1, y2 - y1) * rgb.shape[1] * side / crop)
                pts = np.vstack([lab["object_pose"][:3], expert_targets_in_camera(env, tok.waypoint_dt)[0]])
                acc["outside_bins"].append(float(np.mean(np.any((pts < edges[:, 0]) | (pts > edges[:, 1]), axis=1))))
                p = pol.predict(rgb, depth, K, spec.instruction)
                true_p = np.asarray(lab["object_pose"][:3])
                acc["z_true_m"].append(float(np.linalg.norm(true_p)))
                if not p.found or not p.valid:
                    acc["refused"] += 1
                    continue
                acc["uv_err_px"].append(float(np.linalg.norm((np.array(p.box_uv) - lab["box_uv"]) * side)))
                e = np.asarray(p.object_pose.position) - true_p
                ray = true_p / np.linalg.norm(true_p)
                acc["depth_err_m"].append(abs(float(e @ ray)))
                acc["lateral_err_m"].append(float(np.linalg.norm(e - (e @ ray) * ray)))
        med = lambda v: float(np.median(v)) if v else float("nan")  # noqa: E731
        row = {"distance_m": dist, "scenes": a.scenes, "object_range_m": med(acc["z_true_m"]),
               "box_px": med(acc["box_px"]), "outside_bins": float(np.mean(acc["outside_bins"])),
               "refused": acc["refused"], "uv_err_px": med(acc["uv_err_px"]),
               "uv_err_gt_patch": float(np.mean(np.array(acc["uv_err_px"]) > pol.cfg.patch_size)) if acc["uv_err_px"] else float("nan"),
               "depth_err_m": med(acc["depth_err_m"]), "lateral_err_m": med(acc["lateral_err_m"])}
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"checkpoint": a.checkpoint, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
