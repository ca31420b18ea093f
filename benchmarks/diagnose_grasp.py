"""Where a checkpoint puts its grasp, one static frame per held-out scene (the nominal camera):
the first predicted waypoint with the gripper closed against the scripted demonstrator's, both
in the camera frame, plus the grounded object's position error. A closed-loop pick that closes
the gripper on nothing shows up here as a large grasp error on its first frame.
``--drop-target-depth``: the target's own pixels (MuJoCo's segmentation render of its geoms)
are removed from the depth image (NaN), as a RealSense loses depth on a black or shiny object.

    .venv/bin/python benchmarks/diagnose_grasp.py --checkpoints checkpoints/demo checkpoints/wide --scenes 30
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def grasp_row(pol, rgb, depth, K, instruction, true_object, expert_pos, expert_grip) -> dict:
    """One checkpoint's answer on one frame: refused, or its object / grasp errors in mm and the
    share of valid depth around its grounded box center."""
    from posevla_core.policies.geometry_prior import depth_support

    p = pol.predict(rgb, depth, K, instruction)
    if not p.found:
        return {"refused": True}
    wp = np.array([w.pose.position for w in p.waypoints])
    closed = np.array([w.gripper for w in p.waypoints]) < 0.5
    H, W = depth.shape[:2]
    u, v = p.box_uv
    row = {"refused": False, "object_err_mm": 1e3 * float(np.linalg.norm(p.object_pose.position - true_object)),
           # what policy_node's min_object_depth_support checks (inference.PolicyCore.check_object_depth)
           "depth_support": depth_support(depth, (u * W - 0.5, v * H - 0.5))}
    if closed.any() and (expert_grip < 0.5).any():
        i, j = int(np.argmax(closed)), int(np.argmax(expert_grip < 0.5))
        row.update(grasp_step=i, expert_grasp_step=j, grasp_err_mm=1e3 * float(np.linalg.norm(wp[i] - expert_pos[j])),
                   grasp_err_xyz_mm=np.round(1e3 * (wp[i] - expert_pos[j]), 1).tolist())
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", nargs="+", default=["checkpoints/demo", "checkpoints/wide"])
    ap.add_argument("--scenes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--drop-target-depth", action="store_true", help="NaN depth on the target's own pixels")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args(argv)

    from posevla_core.policies.factory import load_policy
    from posevla_core.sim.mujoco.env import SimEnv, body_mask
    from posevla_core.train.pipeline import expert_targets_in_camera

    pols = {c: load_policy(c, device="cpu") for c in a.checkpoints}
    dt = next(iter(pols.values())).cfg.tokens.waypoint_dt
    rows = []
    with SimEnv(width=224, height=224) as env:
        for s in range(a.seed, a.seed + a.scenes):
            spec = env.reset(seed=s, task="pick")
            rgb, depth, K = env.render()
            if a.drop_target_depth:
                depth = np.where(body_mask(env, spec.target), np.nan, depth).astype(depth.dtype)
            lab = env.object_labels(spec.target)
            expert_pos, expert_grip = expert_targets_in_camera(env, dt)
            row = {"seed": s, "instruction": spec.instruction}
            for c, pol in pols.items():
                row[c] = grasp_row(pol, rgb, depth, K, spec.instruction, np.asarray(lab["object_pose"][:3]),
                                   expert_pos, expert_grip)
            rows.append(row)
            print(f"{s} {spec.instruction[:34]:<34} " + " | ".join(
                f"{c.rsplit('/', 1)[-1]}: " + ("refused" if r["refused"] else
                                               f"object {r['object_err_mm']:.0f} mm, grasp {r.get('grasp_err_mm', float('nan')):.0f} mm")
                for c, r in ((c, row[c]) for c in pols)), flush=True)
    for c in pols:
        g = [r[c]["grasp_err_mm"] for r in rows if "grasp_err_mm" in r[c]]
        low = sum(r[c].get("depth_support", 1.0) < 0.1 for r in rows)
        print(f"{c}: grasp error median {np.median(g):.1f} mm, p90 {np.percentile(g, 90):.1f} mm, "
              f"max {np.max(g):.0f} mm over {len(g)} frames; refused {sum(r[c]['refused'] for r in rows)}; "
              f"depth support < 0.1 at the box center (policy_node refuses): {low}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
