"""The model contract (posevla_core/policies/base.py): one loader dispatching on config.json's
architecture, the shared grammar mask, the small model's optional ray prior, and the
letterbox that keeps K right."""
import json
import math

import numpy as np
import pytest
import torch

from posevla_core.image import letterbox, unletterbox_uv
from posevla_core.paths import architecture_of
from posevla_core.policies.base import PosePolicy
from posevla_core.policies.factory import load_policy
from posevla_core.policies.geometry_prior import ray_map
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.tokens.decoding import grammar_bias


def test_load_policy_dispatches_and_reports_bad_directories(tmp_path):
    m = PoseVLA(PoseVLAConfig.tiny()).eval()
    m.save_pretrained(tmp_path / "small")
    assert json.loads((tmp_path / "small" / "config.json").read_text())["architecture"] == "small"
    loaded = load_policy(tmp_path / "small", device="cpu")
    assert isinstance(loaded, PosePolicy) and type(loaded) is PoseVLA
    meta = json.loads((tmp_path / "small" / "config.json").read_text())
    del meta["architecture"]                          # configs written before the key = small
    (tmp_path / "small" / "config.json").write_text(json.dumps(meta))
    assert architecture_of(tmp_path / "small") == "small" and type(load_policy(tmp_path / "small", "cpu")) is PoseVLA
    meta["architecture"] = "qwen2.5-vl"
    (tmp_path / "small" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown architecture 'qwen2.5-vl'"):
        load_policy(tmp_path / "small")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_policy(tmp_path / "nope")


def test_one_grammar_mask_for_every_backbone():
    tok = PoseVLA(PoseVLAConfig.tiny()).tokenizer
    bias = grammar_bias(tok, tok.vocab_size)              # (grammars ACT / DETECT, steps, vocab)
    masks = torch.as_tensor(tok.masks)
    assert torch.equal(torch.isfinite(bias), masks) and torch.equal(masks[0], torch.as_tensor(tok.step_mask()))
    perm = torch.randperm(tok.vocab_size) + 7          # pose ids scattered in a bigger vocabulary
    mapped = grammar_bias(tok, tok.vocab_size + 7, perm)
    assert torch.equal(torch.isfinite(mapped[..., perm]), masks)
    assert int(torch.isfinite(mapped).sum()) == int(masks.sum())


def test_small_model_ray_prior_is_an_option_that_carries_K():
    cfg = PoseVLAConfig.tiny()
    assert cfg.geometry.use_rays is False and not hasattr(PoseVLA(cfg), "ray_prior")
    d = cfg.to_dict()
    d["geometry"]["use_rays"] = True
    torch.manual_seed(0)
    m = PoseVLA(PoseVLAConfig.from_dict(d)).eval()
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    with torch.no_grad():
        a, _ = m.encode_prefix(m.collate([m.make_example(rgb, None, K, "x")]))
        b, _ = m.encode_prefix(m.collate([m.make_example(rgb, None, K * [[1.5], [1.5], [1]], "x")]))
    assert not torch.allclose(a, b)                   # without depth, K still reaches the model


def test_letterbox_keeps_the_whole_image_and_K():
    rng = np.random.default_rng(0)
    H, W, S = 480, 640, 224
    rgb = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 2.0, (H, W)).astype(np.float32)
    K = np.array([[600.0, 0, 319.5], [0, 610.0, 239.5], [0, 0, 1]])
    img, d, K2, tf = letterbox(rgb, depth, K, S)
    assert img.shape == (S, S, 3) and d.shape == (S, S)
    sx, sy, x0, y0 = tf
    assert x0 == 0 and y0 == (S - 168) // 2 and np.isnan(d[0]).all() and np.isfinite(d[y0:y0 + 168]).all()
    assert (img[:y0] == 0).all()
    for X in ([0.1, -0.05, 1.0], [-0.5, 0.3, 1.2]):     # a 3D point projects to the same image place
        u, v = K[0, 0] * X[0] / X[2] + K[0, 2], K[1, 1] * X[1] / X[2] + K[1, 2]
        u2, v2 = K2[0, 0] * X[0] / X[2] + K2[0, 2], K2[1, 1] * X[1] / X[2] + K2[1, 2]
        back = unletterbox_uv(((u2 + 0.5) / S, (v2 + 0.5) / S), tf, W, H, S)
        assert abs(back[0] - (u + 0.5) / W) < 1e-9 and abs(back[1] - (v + 0.5) / H) < 1e-9
    rays = ray_map(K2, S, S)
    np.testing.assert_allclose(rays[:, 100, 50], np.linalg.inv(K2) @ [50, 100, 1], rtol=1e-6)


def test_no_object_threshold_refuses_when_unsure():
    """<no_object> wins at the first step when its probability reaches the threshold, even
    when a category scores higher; 1.0 is plain argmax. The rest of the row is not decoded."""
    from posevla_core.tokens.decoding import constrained_greedy
    from posevla_core.tokens.grammar import NO_OBJECT

    tok = PoseVLA(PoseVLAConfig.tiny()).tokenizer
    bias = grammar_bias(tok, tok.vocab_size)[0]
    cat = tok.blocks["category"].start
    first = torch.full((2, tok.vocab_size), -30.0)
    first[:, cat], first[:, NO_OBJECT] = 1.0, 0.0            # P(<no_object>) = 1 / (1 + e) = 0.27
    first[1, NO_OBJECT] = -3.0                                 # second row: P = 0.02

    def step(prev):
        return first if prev is None else torch.zeros(2, tok.vocab_size)

    for floor, want in ((None, [cat, cat]), ((NO_OBJECT, 1.0), [cat, cat]), ((NO_OBJECT, 0.25), [NO_OBJECT, cat]),
                        ((NO_OBJECT, 0.01), [NO_OBJECT, NO_OBJECT])):
        out = constrained_greedy(step, 2, bias, "cpu", stop_ids=(NO_OBJECT,), first_floor=floor)
        assert out[:, 0].tolist() == want
    # the first-step probability is returned (the prediction's score is 1 - it) ...
    out, p = constrained_greedy(step, 2, bias, "cpu", stop_ids=(NO_OBJECT,), first_floor=(NO_OBJECT, 1.0),
                                return_first_prob=True)
    assert p.tolist() == pytest.approx([1 / (1 + math.e), 1 / (1 + math.e ** 4)], rel=1e-4)
    # ... and a "detect the ..." prompt (it moves nothing) is never refused by the floor, only by argmax
    from posevla_core.tokens.decoding import no_object_floor
    from posevla_core.tokens.grammar import ACT, DETECT

    floor = no_object_floor(torch.tensor([DETECT, ACT]), 0.01)
    assert floor.tolist() == pytest.approx([1.0, 0.01])
    out = constrained_greedy(step, 2, bias, "cpu", stop_ids=(NO_OBJECT,), first_floor=(NO_OBJECT, floor))
    assert out[:, 0].tolist() == [cat, NO_OBJECT]
    with pytest.raises(ValueError, match="no_object_threshold"):
        PoseVLAConfig(no_object_threshold=0.0)
