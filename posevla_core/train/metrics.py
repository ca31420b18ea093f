"""Offline metrics of decoded predictions against camera-frame targets (Objectron-style).

Per sample (``sample_metrics``; keys present only where they apply):

* grounding, target present: ``category_acc``; and where the model answered with an object:
  ``center_err_m`` (3D box center), ``rot_err_deg`` (geodesic angle minimized over the
  category's symmetry group, symmetry.rotation_error_deg: the plain angle cannot tell a
  correct pose of a cube from a wrong one), ``raw_rot_err_deg`` (the plain angle, to show the
  difference), ``size_err_m`` (mean absolute error over the 3 axes), ``iou3d`` (oriented 3D box
  IoU, eval3d.box_iou_3d), ``box_err_px`` (2D box center, pixels of the input image).
  ``false_refusal``: 1 when the model answered ``<no_object>`` for an object that is there.
* grounding, target absent (a negative instruction): only ``absent_refused`` (1 when the model
  answered ``<no_object>``); a pose predicted for an absent object has nothing to be compared
  with, so it adds no error rows (it is a false positive of the AP below).
* grounding, a "detect the {category}" prompt (``target.instances``: every instance, near to
  far): ``detect_count_acc`` (as many objects answered as there are), ``detect_iou3d`` (mean
  over the true instances of the 3D IoU of their matched answer, 0 when unmatched; answers are
  matched one-to-one by ``match_instances``), ``false_refusal``; an absent category counts as
  a negative (``absent_refused``).
* waypoints (motion / embodiment), where the model answered with waypoints: ``wp_pos_err_m``,
  ``wp_rot_err_deg`` (means over the T waypoints), ``wp_last_pos_err_m``,
  ``wp_last_rot_err_deg``, ``gripper_acc``.

Pose errors are measured where the model gave a pose: a refusal of a present object counts in
``false_refusal`` and as a miss of the AP, not as an error value. A prediction that failed to
decode (``valid`` False) counts as wrong everywhere: the maximal errors below, IoU 0, no
detection, not a refusal.

``aggregate``: the mean of every key over the samples that have it, plus the median and the
90th percentile of every error (``*_m``, ``*_deg``, ``*_px``), plus ``ap_iou25`` / ``ap_iou50``:

AP at 3D IoU tau. Every object the model answers with is a detection (one for an
instruction, every listed instance for a detect prompt, none for ``<no_object>``), scored by
the prediction's ``score`` (1 - p(<no_object>) at the first decoded step: how sure the model
is that the named object is in view); every present object with a known size is a ground
truth. Within a sample, detections and ground truths are matched one-to-one (same category,
maximal summed IoU); a match with IoU >= tau is a true positive, every other detection a
false positive (a wrong box, a wrong category, an object "found" for a negative instruction),
every unmatched ground truth a miss (``<no_object>`` answers included). Detections are ranked
by score over all evaluated samples; the AP is the area under the interpolated precision /
recall envelope (VOC / COCO / Objectron: all points), with tied scores entering the curve
together (so a model without scores, every score 1, gets the single point (P, R) and
``ap = P * R``). ``precision_iou*`` and ``recall_iou*`` are the curve's last point: every
detection the model made (what a robot acts on at the checkpoint's ``no_object_threshold``).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from posevla_core.data.shards import Sample
from posevla_core.geometry import symmetry
from posevla_core.geometry.eval3d import box_iou_3d
from posevla_core.poses import Prediction

INVALID_POS_M = 1.0
INVALID_ROT_DEG = 180.0
AP_IOU = {"iou25": 0.25, "iou50": 0.5}
_DETS = "_dets"         # row keys consumed by aggregate (not averaged): (score, true positive at each
_POS = "_pos"           # AP_IOU threshold) per detection, and the number of objects present


def _rot_deg(R_pred: np.ndarray, R_true: np.ndarray, kind: str = "none") -> float:
    return symmetry.rotation_error_deg(R_pred, R_true, kind)


def _box(t) -> tuple[np.ndarray, np.ndarray]:
    return t.object_pose.matrix(), np.asarray(t.size if t.size is not None else np.zeros(3), float)


def match_instances(preds: list, targets: list) -> list[tuple[int, int, float]]:
    """One-to-one matching of predicted and true objects that maximizes the summed 3D IoU
    (Hungarian, scipy's linear_sum_assignment); a pair of different categories scores 0.
    Returns (pred index, target index, IoU) of the matched pairs with IoU > 0."""
    if not preds or not targets:
        return []
    iou = np.array([[box_iou_3d(*_box(p), *_box(t)) if p.category == t.category else 0.0 for t in targets]
                    for p in preds])
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return [(int(i), int(j), float(iou[i, j])) for i, j in zip(rows, cols) if iou[i, j] > 0]


def _ap_counts(preds: list, targets: list, score: float = 1.0, pairs: list | None = None) -> dict:
    """The AP row keys of one sample: each detection's (score, {threshold: true positive}) and
    the number of present objects. ``pairs``: ``match_instances(preds, targets)`` when known."""
    iou_of = {i: iou for i, _, iou in (match_instances(preds, targets) if pairs is None else pairs)}
    dets = [(float(score), {k: iou_of.get(i, 0.0) >= tau for k, tau in AP_IOU.items()}) for i in range(len(preds))]
    return {_DETS: dets, _POS: float(len(targets))}


def _answers(pred: Prediction) -> list:
    """The objects the model answered with (none for <no_object> or an invalid decode)."""
    if not (pred.valid and pred.found):
        return []
    return list(pred.instances) if pred.instances is not None else [pred]


def _detect(pred: Prediction, t) -> dict:
    """A "detect the {category}" answer against every instance in view (t.instances)."""
    preds, targets = _answers(pred), [x for x in t.instances if x.size is not None]
    pairs = match_instances(preds, targets)
    m = {"false_refusal": float(bool(pred.valid) and not pred.found),
         "detect_count_acc": float(bool(pred.valid) and len(_answers(pred)) == len(t.instances)),
         **_ap_counts(preds, targets, pred.score, pairs)}
    if targets:     # mean over the true instances of their matched IoU (0 when unmatched)
        m["detect_iou3d"] = sum(iou for _, _, iou in pairs) / len(targets)
    return m


def _grounding(pred: Prediction, t, H: int, W: int, symmetries: Mapping[str, str]) -> dict:
    m: dict = {}
    ok = bool(pred.valid)
    answered = ok and pred.found
    has_box3d = t.size is not None
    if not t.found:
        m["absent_refused"] = float(ok and not pred.found)
        m.update(_ap_counts(_answers(pred), [], pred.score))
        return m
    if t.instances is not None:
        return _detect(pred, t)
    m["category_acc"] = float(answered and pred.category == t.category)
    m["false_refusal"] = float(ok and not pred.found)
    if has_box3d:
        m.update(_ap_counts(_answers(pred), [t], pred.score))
    if not ok:
        m.update(center_err_m=INVALID_POS_M, rot_err_deg=INVALID_ROT_DEG, raw_rot_err_deg=INVALID_ROT_DEG,
                 box_err_px=float(max(H, W)))
        if has_box3d:
            m.update(size_err_m=INVALID_POS_M, iou3d=0.0)
        return m
    if not pred.found:
        return m
    Tp, Tt = pred.object_pose.matrix(), t.object_pose.matrix()
    m["center_err_m"] = float(np.linalg.norm(Tp[:3, 3] - Tt[:3, 3]))
    m["rot_err_deg"] = _rot_deg(Tp[:3, :3], Tt[:3, :3], symmetries.get(t.category, "none"))
    m["raw_rot_err_deg"] = _rot_deg(Tp[:3, :3], Tt[:3, :3])
    m["box_err_px"] = float(np.hypot((pred.box_uv[0] - t.box_uv[0]) * W, (pred.box_uv[1] - t.box_uv[1]) * H))
    if has_box3d:
        size_p = _box(pred)[1]
        m["size_err_m"] = float(np.mean(np.abs(size_p - np.asarray(t.size, float))))
        m["iou3d"] = box_iou_3d(Tp, size_p, Tt, t.size)
    return m


def sample_metrics(pred: Prediction, s: Sample, *, symmetries: Mapping[str, str]) -> dict:
    """Metrics of one prediction (module docstring). ``symmetries``: category -> symmetry
    kind, the model's ``TokenizerConfig.symmetries`` (categories not in it: no symmetry)."""
    t = s.target
    H, W = s.rgb.shape[:2]
    ok = bool(pred.valid)
    m: dict = {}
    if s.supervise_grounding:
        m.update(_grounding(pred, t, H, W, symmetries))
    if t.found and t.waypoints:
        if ok and len(pred.waypoints) == len(t.waypoints):
            pe = [float(np.linalg.norm(a.pose.position - b.pose.position)) for a, b in zip(pred.waypoints, t.waypoints)]
            re = [_rot_deg(a.pose.matrix()[:3, :3], b.pose.matrix()[:3, :3]) for a, b in zip(pred.waypoints, t.waypoints)]
            ga = [float((a.gripper >= 0.5) == (b.gripper >= 0.5)) for a, b in zip(pred.waypoints, t.waypoints)]
            m.update(wp_pos_err_m=float(np.mean(pe)), wp_rot_err_deg=float(np.mean(re)), wp_last_pos_err_m=pe[-1],
                     wp_last_rot_err_deg=re[-1], gripper_acc=float(np.mean(ga)))
        elif not (ok and not pred.found):      # a refusal is counted in false_refusal, not here
            m.update(wp_pos_err_m=INVALID_POS_M, wp_rot_err_deg=INVALID_ROT_DEG, wp_last_pos_err_m=INVALID_POS_M,
                     wp_last_rot_err_deg=INVALID_ROT_DEG, gripper_acc=0.0)
    m["valid"] = float(ok)
    return m


def _stat_key(k: str, stat: str) -> str:
    return k.replace("_err", f"_err_{stat}", 1) if "_err" in k else f"{k}_{stat}"


def average_precision(rows: list[dict]) -> dict:
    """``ap_*``, ``precision_*`` and ``recall_*`` at each AP_IOU threshold (module docstring);
    empty when no row has a present target with a 3D box."""
    pos = sum(r.get(_POS, 0.0) for r in rows)
    if pos == 0:
        return {}
    dets = [d for r in rows for d in r.get(_DETS, [])]
    scores = np.array([sc for sc, _ in dets], dtype=float)
    out = {}
    for k in AP_IOU:
        tp = np.array([hit[k] for _, hit in dets], dtype=float)
        ap, p, rc = ranked_ap(scores, tp, pos)
        out.update({f"ap_{k}": ap, f"precision_{k}": p, f"recall_{k}": rc})
    return out


def ranked_ap(scores: np.ndarray, tp: np.ndarray, num_pos: float) -> tuple[float, float, float]:
    """(AP, final precision, final recall) of detections with ``scores`` and true-positive
    flags ``tp`` against ``num_pos`` ground truths: all-point interpolated area under the
    precision / recall curve; detections with equal scores form one point of the curve."""
    if len(scores) == 0:
        return 0.0, 0.0, 0.0
    order = np.argsort(-scores, kind="stable")
    s, hits = scores[order], tp[order]
    last = np.r_[s[1:] != s[:-1], True]                 # the last detection of each score level
    ctp = np.cumsum(hits)[last]
    n = np.flatnonzero(last) + 1.0
    precision, recall = ctp / n, ctp / num_pos
    envelope = np.maximum.accumulate(precision[::-1])[::-1]   # best precision at >= this recall
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * envelope))
    return ap, float(precision[-1]), float(recall[-1])


def aggregate(rows: list[dict]) -> dict:
    """Mean of every metric over the samples that have it, the median and p90 of the errors,
    and the AP at 3D IoU 0.25 / 0.5 (module docstring)."""
    keys = sorted({k for r in rows for k in r if not k.startswith("_")})
    out: dict = {"num_samples": len(rows)}
    for k in keys:
        v = np.array([r[k] for r in rows if k in r], dtype=float)
        out[k] = float(v.mean())
        if k.endswith(("_m", "_deg", "_px")):
            out[_stat_key(k, "median")] = float(np.median(v))
            out[_stat_key(k, "p90")] = float(np.percentile(v, 90))
    out.update(average_precision(rows))
    return out


def format_table(metrics: dict, title: str = "") -> str:
    lines = [title] if title else []
    w = max(len(k) for k in metrics) if metrics else 0
    for k, v in metrics.items():
        lines.append(f"  {k:<{w}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{w}}  {v}")
    return "\n".join(lines)
