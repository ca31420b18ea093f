"""Pose tokenizer: bounded quantization error over the whole range and all of SO(3)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posevla_core.config import TokenizerConfig
from posevla_core.tokens import EOS, PoseTokenizer
from posevla_core.types import Pose, PoseTarget, Waypoint

CFG = TokenizerConfig()
TOK = PoseTokenizer(CFG)
HALF_ROT = math.pi / CFG.rotation_bins          # half a rotation bin (radians)

unit = st.floats(-1.0, 1.0, allow_nan=False)
quats = st.tuples(unit, unit, unit, unit).filter(lambda q: np.linalg.norm(q) > 1e-3)


def positions(cfg=CFG):
    return st.tuples(*[st.floats(lo, hi, allow_nan=False) for lo, hi in zip(cfg.position_min, cfg.position_max)])


def target(pos, quat, n=CFG.num_waypoints, grip=1.0):
    pose = Pose(np.array(pos), np.array(quat))
    return PoseTarget("cube", (0.25, 0.75), pose, [Waypoint(pose, grip) for _ in range(n)])


@settings(max_examples=300, deadline=None)
@given(positions(), quats)
def test_round_trip_error_is_bounded(pos, quat):
    ids, clipped = TOK.encode(target(pos, quat))
    assert clipped == []
    assert len(ids) == TOK.seq_len and ids[-1] == EOS and TOK.is_valid(ids)
    dec = TOK.decode(ids)
    for a in range(3):
        half = TOK.bin_width("position", a) / 2
        assert abs(dec.object_pose.position[a] - pos[a]) <= half + 1e-9
    ang = (Rotation.from_quat(quat).inv() * Rotation.from_quat(dec.object_pose.quat_xyzw)).magnitude()
    assert ang <= math.sqrt(3) * HALF_ROT + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.floats(math.pi - 1e-3, math.pi), st.tuples(unit, unit, unit).filter(lambda v: np.linalg.norm(v) > 1e-2))
def test_rotation_error_bounded_near_pi(angle, axis):
    """Angles near pi are where rotation vectors flip sign: the error must stay bounded."""
    axis = np.array(axis) / np.linalg.norm(axis)
    q = Rotation.from_rotvec(axis * angle).as_quat()
    dec = TOK.decode(TOK.encode(target((0, 0, 1), q))[0])
    ang = (Rotation.from_quat(q).inv() * Rotation.from_quat(dec.object_pose.quat_xyzw)).magnitude()
    assert ang <= math.sqrt(3) * HALF_ROT + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 1e-4), st.tuples(unit, unit, unit).filter(lambda v: np.linalg.norm(v) > 1e-2))
def test_rotation_near_identity(angle, axis):
    axis = np.array(axis) / np.linalg.norm(axis)
    q = Rotation.from_rotvec(axis * angle).as_quat()
    dec = TOK.decode(TOK.encode(target((0, 0, 1), q))[0])
    assert (Rotation.from_quat(q).inv() * Rotation.from_quat(dec.object_pose.quat_xyzw)).magnitude() <= HALF_ROT * 1.01


def test_out_of_range_is_clipped_and_reported_not_wrapped():
    ids, clipped = TOK.encode(target((5.0, -5.0, 0.0), (0, 0, 0, 1)))
    assert set(clipped) >= {"object.x", "object.y", "object.z"}
    dec = TOK.decode(ids)
    # Clipped to the nearest edge bin: far right stays right, never wraps to the left.
    assert dec.object_pose.position[0] > CFG.position_max[0] - TOK.bin_width("position", 0)
    assert dec.object_pose.position[1] < CFG.position_min[1] + TOK.bin_width("position", 1)


def test_box_and_gripper_and_category():
    t = target((0.1, 0.2, 0.9), (0, 0, 0, 1), grip=0.0)
    t.category = "cylinder"
    dec = TOK.decode(TOK.encode(t)[0])
    assert dec.category == "cylinder"
    assert abs(dec.box_uv[0] - 0.25) <= 0.5 / CFG.box_bins + 1e-9
    assert all(w.gripper == 0.0 for w in dec.waypoints)


def test_grammar_ranges_and_invalid_sequences():
    mask = TOK.step_mask()
    assert mask.shape == (TOK.seq_len, TOK.vocab_size) and mask.any(1).all()
    with pytest.raises(ValueError, match="grammar"):
        TOK.decode([EOS] * TOK.seq_len)
    with pytest.raises(ValueError, match="unknown category"):
        TOK.encode(PoseTarget("dragon", (0.5, 0.5), Pose([0, 0, 1], [0, 0, 0, 1])))
    with pytest.raises(ValueError, match="non-finite"):
        TOK.encode(target((float("nan"), 0, 1), (0, 0, 0, 1)))


def test_grounding_target_encodes_prefix_only():
    ids, _ = TOK.encode(PoseTarget("cube", (0.5, 0.5), Pose([0, 0, 1], [0, 0, 0, 1])))
    assert len(ids) == TOK.num_grounding_steps


def test_config_validation_messages():
    with pytest.raises(ValueError, match="position_min"):
        TokenizerConfig(position_min=(1, 0, 0), position_max=(0, 1, 1))
    with pytest.raises(ValueError, match="gripper_bins"):
        TokenizerConfig(gripper_bins=1)
