"""Oriented 3D box IoU (eval3d) and the Objectron-style offline metrics (train.metrics)."""
import math
from test.helpers.rotation_cases import quats

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.spatial.transform import Rotation

from posevla_core.data.shards import Sample
from posevla_core.geometry import symmetry
from posevla_core.geometry.eval3d import box_corners, box_iou_3d, intersection_volume
from posevla_core.poses import Pose, PoseTarget, Prediction, Waypoint
from posevla_core.train.metrics import aggregate, sample_metrics


def T_of(p=(0.0, 0.0, 0.0), R=None) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.eye(3) if R is None else R
    T[:3, 3] = p
    return T


def test_identical_boxes_iou_one():
    R = Rotation.from_euler("xyz", [0.3, -0.7, 1.1]).as_matrix()
    assert box_iou_3d(T_of((0.1, 0.2, 0.9), R), (0.05, 0.07, 0.1), T_of((0.1, 0.2, 0.9), R), (0.05, 0.07, 0.1)) \
        == pytest.approx(1.0, abs=1e-9)


def test_disjoint_and_touching_boxes_iou_zero():
    assert box_iou_3d(T_of((0, 0, 0)), (1, 1, 1), T_of((3, 0, 0)), (1, 1, 1)) == 0.0
    # Overlapping bounding spheres but separated boxes (rotated 45 degrees, 1.6 apart).
    assert box_iou_3d(T_of((0, 0, 0)), (1, 1, 1), T_of((1.3, 0, 0), Rotation.from_euler("z", 45, degrees=True)
                                                       .as_matrix()), (1, 1, 1)) == 0.0
    assert box_iou_3d(T_of((0, 0, 0)), (1, 1, 1), T_of((1, 0, 0)), (1, 1, 1)) == 0.0     # a shared face only


@pytest.mark.parametrize("shift, expect", [
    ((0.5, 0, 0), 0.5 / 1.5),                         # half overlap along x: 0.5 / (2 - 0.5)
    ((0.5, 0.5, 0), 0.25 / 1.75),
    ((0.5, 0.5, 0.5), 0.125 / 1.875),
])
def test_axis_aligned_overlaps_by_hand(shift, expect):
    assert box_iou_3d(T_of((0, 0, 0)), (1, 1, 1), T_of(shift), (1, 1, 1)) == pytest.approx(expect, abs=1e-9)


def test_nested_boxes_and_different_sizes():
    # A 1x1x1 box inside a 2x2x2 box: IoU = 1/8.
    assert box_iou_3d(T_of((0.2, 0, -0.3)), (1, 1, 1), T_of(), (2, 2, 2)) == pytest.approx(1 / 8, abs=1e-9)
    # A 2x1x1 and a 1x2x1 box crossing at the origin: intersection 1, union 2 + 2 - 1.
    assert box_iou_3d(T_of(), (2, 1, 1), T_of(), (1, 2, 1)) == pytest.approx(1 / 3, abs=1e-9)


def test_rotated_square_about_its_axis_by_hand():
    # Unit square prism turned by 45 degrees about z: octagon of area 2(sqrt2 - 1), height 1.
    R = Rotation.from_euler("z", 45, degrees=True).as_matrix()
    inter = 2 * (math.sqrt(2) - 1)
    assert intersection_volume(T_of(), (1, 1, 1), T_of(R=R), (1, 1, 1)) == pytest.approx(inter, abs=1e-9)
    assert box_iou_3d(T_of(), (1, 1, 1), T_of(R=R), (1, 1, 1)) == pytest.approx(inter / (2 - inter), abs=1e-9)


@pytest.mark.parametrize("kind, size", [("cube", (0.05, 0.05, 0.05)), ("square", (0.2, 0.2, 0.08))])
def test_box_turned_by_its_symmetry_is_the_same_box(kind, size):
    R = Rotation.from_euler("xyz", [0.4, 0.2, -1.0]).as_matrix()
    for g in symmetry.group(kind):
        assert box_iou_3d(T_of((0, 0, 1), R), size, T_of((0, 0, 1), R @ g), size) == pytest.approx(1.0, abs=1e-9)
    # ...and the 180-degree flip of any box about one of its axes.
    flip = np.diag([1.0, -1.0, -1.0])
    assert box_iou_3d(T_of((0, 0, 1), R), (0.1, 0.2, 0.3), T_of((0, 0, 1), R @ flip), (0.1, 0.2, 0.3)) \
        == pytest.approx(1.0, abs=1e-9)


def test_corners_are_the_box():
    c = box_corners(T_of((1, 2, 3)), (0.2, 0.4, 0.6))
    assert np.allclose(c.min(0), [0.9, 1.8, 2.7]) and np.allclose(c.max(0), [1.1, 2.2, 3.3])


sizes = st.tuples(*[st.floats(0.02, 0.5)] * 3)
centers = st.tuples(*[st.floats(-0.3, 0.3)] * 3)


@settings(max_examples=150, deadline=None)
@given(centers, quats, sizes, centers, quats, sizes)
def test_iou_symmetric_and_in_unit_interval(p1, q1, s1, p2, q2, s2):
    T1, T2 = T_of(p1, Rotation.from_quat(q1).as_matrix()), T_of(p2, Rotation.from_quat(q2).as_matrix())
    a, b = box_iou_3d(T1, s1, T2, s2), box_iou_3d(T2, s2, T1, s1)
    assert 0.0 <= a <= 1.0
    assert a == pytest.approx(b, abs=1e-9)
    # The intersection never exceeds the smaller box.
    assert intersection_volume(T1, s1, T2, s2) <= min(np.prod(s1), np.prod(s2)) * (1 + 1e-9)


@settings(max_examples=30, deadline=None)
@given(centers, quats, sizes, centers, quats, sizes)
def test_intersection_volume_matches_monte_carlo(p1, q1, s1, p2, q2, s2):
    T1, T2 = T_of(p1, Rotation.from_quat(q1).as_matrix()), T_of(p2, Rotation.from_quat(q2).as_matrix())
    rng = np.random.default_rng(0)
    n = 20000
    pts = rng.uniform(-0.5, 0.5, (n, 3)) * np.array(s1)
    local = (pts @ T1[:3, :3].T + T1[:3, 3] - T2[:3, 3]) @ T2[:3, :3]
    frac = float(np.all(np.abs(local) <= np.array(s2) / 2, axis=1).mean())
    # 5 standard deviations of the binomial estimate, plus a little.
    tol = 5 * math.sqrt(max(frac * (1 - frac), 1 / n) / n) + 1e-3
    assert intersection_volume(T1, s1, T2, s2) / np.prod(s1) == pytest.approx(frac, abs=tol)


# ---- offline metrics --------------------------------------------------------------------------
SYM = {"red cube": "cube", "blue cylinder": "cylinder"}
RGB = np.zeros((100, 200, 3), np.uint8)
K = np.eye(3)
R0 = Rotation.from_euler("xyz", [0.3, -0.2, 0.9]).as_matrix()


def obj_target(category="red cube", R=R0, p=(0.0, 0.1, 0.9), size=(0.05, 0.05, 0.05), wps=0):
    pose = Pose.from_matrix(T_of(p, R))
    w = [Waypoint(Pose.from_matrix(T_of(np.add(p, (0, 0, -0.1 * k)), R)), 1.0) for k in range(wps)]
    return PoseTarget(category, (0.5, 0.5), pose, w, box_xyxy=(0.4, 0.4, 0.6, 0.6), size=np.array(size))


def pred_of(t: PoseTarget, **kw) -> Prediction:
    return Prediction(t.category, t.box_uv, t.object_pose, t.waypoints, box_xyxy=t.box_xyxy, size=t.size,
                      found=t.found, instances=t.instances, **kw)


def sample(t: PoseTarget) -> Sample:
    return Sample(RGB, None, K, "pick up the red cube", t)


def test_symmetric_rotation_error_and_perfect_box():
    t = obj_target()
    g = symmetry.group("cube")[5]
    m = sample_metrics(pred_of(obj_target(R=R0 @ g)), sample(t), symmetries=SYM)
    assert m["rot_err_deg"] == pytest.approx(0.0, abs=1e-6)
    assert m["raw_rot_err_deg"] > 10.0                   # the plain angle calls it wrong
    assert m["iou3d"] == pytest.approx(1.0, abs=1e-9) and m["center_err_m"] == 0.0 and m["size_err_m"] == 0.0
    assert m["category_acc"] == 1.0 and m["false_refusal"] == 0.0


def test_absent_target_refused_and_false_positive():
    absent = sample(PoseTarget.absent("yellow cylinder"))
    refused = sample_metrics(Prediction.absent("yellow cylinder"), absent, symmetries=SYM)
    assert refused["absent_refused"] == 1.0
    grounded = sample_metrics(pred_of(obj_target()), absent, symmetries=SYM)
    assert grounded["absent_refused"] == 0.0
    # No grounding error rows for an absent target, whatever the model answered.
    for m in (refused, grounded):
        assert not {"center_err_m", "rot_err_deg", "iou3d", "size_err_m", "category_acc"} & set(m)


def test_false_refusal_is_a_miss_not_an_error_value():
    t = obj_target(wps=3)
    m = sample_metrics(Prediction.absent(), sample(t), symmetries=SYM)
    assert m["false_refusal"] == 1.0 and m["category_acc"] == 0.0
    assert "center_err_m" not in m and "wp_pos_err_m" not in m


def test_invalid_prediction_counts_as_wrong():
    t = obj_target(wps=2)
    bad = Prediction("", (float("nan"), float("nan")), None, [], valid=False)
    m = sample_metrics(bad, sample(t), symmetries=SYM)
    assert m["valid"] == 0.0 and m["rot_err_deg"] == 180.0 and m["iou3d"] == 0.0 and m["wp_rot_err_deg"] == 180.0
    assert m["false_refusal"] == 0.0


def test_aggregate_ap_precision_recall_and_percentiles():
    I = np.eye(3)
    t = obj_target(R=I)
    shifted = obj_target(R=I, p=(0.0125, 0.1, 0.9))     # 1/4 of the width along x: IoU 0.75 / 1.25 = 0.6
    far = obj_target(R=I, p=(0.025, 0.1, 0.9))          # half the width: IoU 0.5 / 1.5 = 1/3
    rows = [sample_metrics(pred_of(t), sample(t), symmetries=SYM),                       # TP at both
            sample_metrics(pred_of(shifted), sample(t), symmetries=SYM),                 # TP at both
            sample_metrics(pred_of(far), sample(t), symmetries=SYM),                     # TP at 0.25 only
            sample_metrics(Prediction.absent(), sample(t), symmetries=SYM),              # miss
            sample_metrics(pred_of(t), sample(PoseTarget.absent()), symmetries=SYM),     # false positive
            sample_metrics(Prediction.absent(), sample(PoseTarget.absent()), symmetries=SYM)]
    agg = aggregate(rows)
    assert agg["iou3d"] == pytest.approx((1 + 0.6 + 1 / 3) / 3, abs=1e-6)
    # 4 detections, 4 present targets; TP = 3 at IoU 0.25, 2 at 0.5.
    assert agg["precision_iou25"] == pytest.approx(3 / 4, abs=1e-6) and agg["recall_iou25"] == pytest.approx(3 / 4)
    assert agg["ap_iou25"] == pytest.approx(9 / 16, abs=1e-6)
    assert agg["ap_iou50"] == pytest.approx((2 / 4) * (2 / 4), abs=1e-6)
    assert agg["absent_refused"] == 0.5 and agg["false_refusal"] == 0.25
    assert {"center_err_median_m", "center_err_p90_m", "rot_err_p90_deg", "rot_err_median_deg"} <= set(agg)
    assert not any(k.startswith("_") for k in agg)


def test_ap_ranks_detections_by_the_models_score():
    """The same answers as above, now with the model's scores: the object "found" for a negative
    instruction is the least sure, so the ranked AP at IoU 0.25 is 3/4 (not P * R = 9/16); the
    final precision / recall (what the robot acts on) do not change."""
    I = np.eye(3)
    t = obj_target(R=I)
    shifted, far = obj_target(R=I, p=(0.0125, 0.1, 0.9)), obj_target(R=I, p=(0.025, 0.1, 0.9))

    def scored(target, s):
        p = pred_of(target)
        p.score = s
        return p

    rows = [sample_metrics(scored(t, 0.9), sample(t), symmetries=SYM),
            sample_metrics(scored(shifted, 0.8), sample(t), symmetries=SYM),
            sample_metrics(scored(far, 0.7), sample(t), symmetries=SYM),
            sample_metrics(Prediction.absent(), sample(t), symmetries=SYM),
            sample_metrics(scored(t, 0.2), sample(PoseTarget.absent()), symmetries=SYM)]
    agg = aggregate(rows)
    assert agg["ap_iou25"] == pytest.approx(3 / 4) and agg["ap_iou50"] == pytest.approx(2 / 4)
    assert agg["precision_iou25"] == pytest.approx(3 / 4) and agg["recall_iou25"] == pytest.approx(3 / 4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.1, 0.5, 0.7, 0.9, 1.0]), st.booleans()), min_size=1, max_size=30),
       st.integers(0, 10))
def test_ranked_ap_against_a_threshold_sweep(dets, extra_misses):
    """ranked_ap = the area under the interpolated curve of a brute-force sweep over the score
    thresholds; it is never below the final P * R, and equals it when every score ties."""
    from posevla_core.train.metrics import ranked_ap

    scores = np.array([s for s, _ in dets])
    tp = np.array([h for _, h in dets], dtype=float)
    num_pos = tp.sum() + extra_misses
    if num_pos == 0:
        return
    ap, p, r = ranked_ap(scores, tp, num_pos)
    levels = sorted(set(scores), reverse=True)
    pts = [(tp[scores >= c].sum() / (scores >= c).sum(), tp[scores >= c].sum() / num_pos) for c in levels]
    area, prev_r = 0.0, 0.0
    for i, (_, rc) in enumerate(pts):
        area += (rc - prev_r) * max(q for q, _ in pts[i:])
        prev_r = rc
    assert ap == pytest.approx(area) and (p, r) == pytest.approx(pts[-1])
    assert ap >= p * r - 1e-12
    if len(levels) == 1:
        assert ap == pytest.approx(p * r)


def test_waypoint_rotation_percentiles():
    rows = []
    for k in range(10):
        t = obj_target(wps=2)
        R = Rotation.from_euler("z", k, degrees=True).as_matrix() @ R0
        p = pred_of(t)
        p.waypoints = [Waypoint(Pose.from_matrix(T_of(w.pose.position, R)), 1.0) for w in t.waypoints]
        rows.append(sample_metrics(p, sample(t), symmetries=SYM))
    agg = aggregate(rows)
    assert agg["wp_rot_err_deg"] == pytest.approx(4.5, abs=1e-6)
    assert agg["wp_rot_err_p90_deg"] == pytest.approx(np.percentile(np.arange(10), 90), abs=1e-6)
    assert agg["wp_last_rot_err_median_deg"] == pytest.approx(4.5, abs=1e-6)


def test_detect_answers_are_matched_one_to_one_in_any_order():
    from dataclasses import replace

    I = np.eye(3)
    a, b = obj_target(R=I, p=(0.0, 0.1, 0.8)), obj_target(R=I, p=(0.2, 0.1, 0.9))
    c = obj_target("blue cylinder", R=I, p=(-0.2, 0.1, 1.0))
    truth = replace(a, instances=[a, b, c])
    # Listed far to near, the cylinder half a width off along x (IoU 1/3), one extra cube.
    c_off = obj_target("blue cylinder", R=I, p=(-0.175, 0.1, 1.0))
    extra = obj_target(R=I, p=(0.4, 0.4, 1.5))
    pred = pred_of(replace(c_off, instances=[c_off, b, a, extra]))
    m = sample_metrics(pred, Sample(RGB, None, K, "detect the object", truth), symmetries=SYM)
    assert m["detect_count_acc"] == 0.0 and m["false_refusal"] == 0.0
    assert m["detect_iou3d"] == pytest.approx((1 + 1 + 1 / 3) / 3, abs=1e-6)
    assert not {"center_err_m", "rot_err_deg", "category_acc"} & set(m)
    agg = aggregate([m])
    assert agg["precision_iou25"] == pytest.approx(3 / 4) and agg["recall_iou25"] == pytest.approx(1.0)
    assert agg["precision_iou50"] == pytest.approx(2 / 4) and agg["recall_iou50"] == pytest.approx(2 / 3)
    # A detect prompt for a category that is not there: every listed object is a false positive.
    absent = Sample(RGB, None, K, "detect the ball", PoseTarget.absent("ball"))
    m2 = sample_metrics(pred, absent, symmetries=SYM)
    assert m2["absent_refused"] == 0.0
    assert aggregate([m, m2])["precision_iou25"] == pytest.approx(3 / 8)
