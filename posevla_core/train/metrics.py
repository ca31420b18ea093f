"""Offline metrics of decoded predictions against camera-frame targets.

grounding: category accuracy, 3D center error (m), rotation error (deg), 2D box-center
error (pixels of the input image). waypoints (motion / embodiment): mean position and
rotation error over the T waypoints, error of the last waypoint, gripper accuracy.
A prediction that failed to decode counts as wrong (errors are taken as NaN-free maxima).
"""
from __future__ import annotations

import math

import numpy as np

from posevla_core import se3
from posevla_core.data.shards import Sample
from posevla_core.types import Prediction

INVALID_POS_M = 1.0
INVALID_ROT_DEG = 180.0


def sample_metrics(pred: Prediction, s: Sample) -> dict:
    t = s.target
    H, W = s.rgb.shape[:2]
    m: dict = {}
    ok = bool(pred.valid)
    if s.supervise_grounding:
        m["category_acc"] = float(ok and pred.category == t.category)
        if ok:
            m["center_err_m"] = float(np.linalg.norm(pred.object_pose.position - t.object_pose.position))
            m["rot_err_deg"] = math.degrees(se3.rotation_angle_between(pred.object_pose.quat_xyzw,
                                                                       t.object_pose.quat_xyzw))
            m["box_err_px"] = float(np.hypot((pred.box_uv[0] - t.box_uv[0]) * W, (pred.box_uv[1] - t.box_uv[1]) * H))
        else:
            m.update(center_err_m=INVALID_POS_M, rot_err_deg=INVALID_ROT_DEG, box_err_px=float(max(H, W)))
    if t.waypoints:
        if ok and len(pred.waypoints) == len(t.waypoints):
            pe = [float(np.linalg.norm(a.pose.position - b.pose.position)) for a, b in zip(pred.waypoints, t.waypoints)]
            re = [math.degrees(se3.rotation_angle_between(a.pose.quat_xyzw, b.pose.quat_xyzw))
                  for a, b in zip(pred.waypoints, t.waypoints)]
            ga = [float((a.gripper >= 0.5) == (b.gripper >= 0.5)) for a, b in zip(pred.waypoints, t.waypoints)]
            m.update(wp_pos_err_m=float(np.mean(pe)), wp_rot_err_deg=float(np.mean(re)),
                     wp_last_pos_err_m=pe[-1], gripper_acc=float(np.mean(ga)))
        else:
            m.update(wp_pos_err_m=INVALID_POS_M, wp_rot_err_deg=INVALID_ROT_DEG, wp_last_pos_err_m=INVALID_POS_M,
                     gripper_acc=0.0)
    m["valid"] = float(ok)
    return m


def aggregate(rows: list[dict]) -> dict:
    """Mean of every metric over the samples that have it (+ medians of the errors)."""
    keys = sorted({k for r in rows for k in r})
    out: dict = {"num_samples": len(rows)}
    for k in keys:
        v = np.array([r[k] for r in rows if k in r], dtype=float)
        out[k] = float(v.mean())
        if k.endswith(("_m", "_deg", "_px")):
            out[k.replace("_err", "_err_median", 1) if "_err" in k else k + "_median"] = float(np.median(v))
    return out


def format_table(metrics: dict, title: str = "") -> str:
    lines = [title] if title else []
    w = max(len(k) for k in metrics) if metrics else 0
    for k, v in metrics.items():
        lines.append(f"  {k:<{w}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{w}}  {v}")
    return "\n".join(lines)
