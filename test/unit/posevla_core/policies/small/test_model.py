"""PoseVLA: outputs always parse, depth is wired in, input conversions agree (the loss falling:
test/integration/test_model_training.py)."""
from test.helpers.models import forbid_no_object, frame

import numpy as np
import pytest
import torch

from posevla_core.image import decode_color
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.tokens.grammar import NO_OBJECT


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return PoseVLA(PoseVLAConfig.tiny()).eval()


@pytest.mark.parametrize("seed", range(5))
def test_outputs_always_parse_with_random_weights(seed):
    torch.manual_seed(seed)
    m = PoseVLA(PoseVLAConfig.tiny()).eval()
    rgb, depth, K = frame(seed)
    p = m.predict(rgb, depth if seed % 2 else None, K, "pick up the red cube")
    assert p.valid and m.tokenizer.is_valid(p.token_ids)
    if not p.found:           # a random model may answer <no_object>: then nothing else
        assert p.waypoints == [] and p.token_ids == [NO_OBJECT]
    else:
        assert len(p.waypoints) == m.cfg.tokens.num_waypoints and p.category in m.cfg.tokens.categories
        assert len(p.box_xyxy) == 4 and p.size.shape == (3,)
    # with <no_object> forbidden the same model must still produce a full, parsable prediction
    forbid_no_object(m)
    p = m.predict(rgb, depth if seed % 2 else None, K, "pick up the red cube")
    assert p.found and len(p.waypoints) == m.cfg.tokens.num_waypoints and p.category in m.cfg.tokens.categories
    assert 0 <= p.box_uv[0] <= 1 and p.waypoint_dt == m.cfg.tokens.waypoint_dt
    assert {"preprocess", "decode", "total"} <= set(p.timings_ms)


def test_depth_changes_the_prediction(model):
    rgb, depth, K = frame(1)
    a = model.make_example(rgb, depth, K, "x")
    b = model.make_example(rgb, depth + 0.4, K, "x")
    with torch.no_grad():
        pa, _ = model.encode_prefix(model.collate([a]))
        pb, _ = model.encode_prefix(model.collate([b]))
        pn, _ = model.encode_prefix(model.collate([model.make_example(rgb, None, K, "x")]))
    assert not torch.allclose(pa, pb) and not torch.allclose(pa, pn)
    # the decoder's output distribution (not just the prefix) moves with depth
    with torch.no_grad():
        first = []
        for d in (depth, depth + 0.4, None):
            prefix, mask = model.encode_prefix(model.collate([model.make_example(rgb, d, K, "pick up the red cube")]))
            h = model.lm.model(inputs_embeds=prefix, attention_mask=mask.long()).last_hidden_state[:, -1]
            first.append(model.lm.lm_head(h))
    assert not torch.allclose(first[0], first[1]) and not torch.allclose(first[0], first[2])


def test_cache_and_no_cache_agree(model):
    rgb, depth, K = frame(2)
    a = model.predict(rgb, depth, K, "pick up the blue cube")
    b = model.predict(rgb, depth, K, "pick up the blue cube", use_cache=False)
    assert a.token_ids == b.token_ids


def test_padded_and_bgr_images_give_the_same_input_tensor(model):
    rgb, depth, K = frame(3)
    h, w = rgb.shape[:2]
    bgr_padded = np.concatenate([rgb[..., ::-1], np.zeros((h, 5, 3), np.uint8)], axis=1)
    decoded = decode_color(bgr_padded.tobytes(), h, w, "bgr8", step=(w + 5) * 3)
    a = model.collate([model.make_example(rgb, depth, K, "x")])["image"]
    b = model.collate([model.make_example(decoded, depth, K, "x")])["image"]
    assert torch.equal(a, b)


def test_batch_matches_single(model):
    items = [dict(zip(("rgb", "depth", "K"), frame(s)), instruction=t) for s, t in ((4, "grab the cube"), (5, "lift it"))]
    batch = model.predict_batch(items)
    for it, p in zip(items, batch):
        assert model.predict(it["rgb"], it["depth"], it["K"], it["instruction"]).token_ids == p.token_ids


def test_bad_inputs_raise(model):
    rgb, depth, K = frame(7)
    with pytest.raises(ValueError, match="uint8"):
        model.predict(rgb.astype(np.float32), depth, K, "x")
    with pytest.raises(ValueError, match="depth"):
        model.predict(rgb, depth[:10], K, "x")
    with pytest.raises(ValueError, match="intrinsics"):
        model.predict(rgb, depth, np.zeros((3, 3)), "x")


def test_pointer_prior_peaks_at_the_anchor(model):
    """The copy prior of each ordinal step peaks at the bin of its anchor (offset 0 at init) and
    is off (zero) for position steps when there is no depth."""
    tok = model.tokenizer
    anchors = torch.tensor([[0.30, 0.70, 0.05, -0.10, 0.90]])
    with torch.no_grad():
        pr = model.pointer_prior(anchors, torch.tensor([[True, True, True, True, True]]))
        pr_nodepth = model.pointer_prior(anchors, torch.tensor([[True, True, False, False, False]]))
    for s, (name, block) in enumerate(tok.steps):
        lo, hi = tok.allowed_range(s)
        values = tok.step_values(s)
        if block == "box":       # x1 / x2 follow u, y1 / y2 follow v
            want = 0.30 if name[-2] == "x" else 0.70
            assert int(pr[0, s, lo:hi].argmax()) == int(np.abs(values - want).argmin())
        elif block == "position":
            want = float(anchors[0, 2 + "xyz".index(name[-1])])
            assert int(pr[0, s, lo:hi].argmax()) == int(np.abs(values - want).argmin())
            assert torch.all(pr_nodepth[0, s] == 0)
        else:
            assert torch.all(pr[0, s] == 0)
