"""Object verifier (model.ObjectVerifier, train/verifier.py): one refusal rule for both heads,
checkpoints that carry it, examples from the scene, and a rejected pointer moving to the next
peak (training the verifier: test/integration/test_verifier_training.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test.helpers.verifier import with_verifier, write_scenes

from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.tokens.decoding import no_object_floor, refusal_floor, refusal_score
from posevla_core.tokens.grammar import ACT, DETECT


def test_config_needs_a_glimpse_and_a_threshold_below_one():
    with pytest.raises(ValueError, match="glimpse"):
        PoseVLAConfig(verifier=True, glimpse_size=0)
    with pytest.raises(ValueError, match="verify_threshold"):
        PoseVLAConfig(verify_threshold=1.0)


def test_one_refusal_rule_gates_instructions_not_detect_prompts():
    g = torch.tensor([ACT, ACT, DETECT])
    assert torch.equal(refusal_floor(g, 0.1), no_object_floor(g, 0.1))
    floor = refusal_floor(g, 0.1, torch.tensor([0.2, 0.9, 0.0]), 0.5)
    assert floor.tolist() == pytest.approx([0.0, 0.1, 1.0])       # rejected -> floor 0 (always refuse)
    score = refusal_score(torch.tensor([0.1, 0.1, 0.1]), g, torch.tensor([0.5, 1.0, 0.0]))
    assert score.tolist() == pytest.approx([0.45, 0.9, 0.9])        # detect prompts: 1 - P(<no_object>)


def test_examples_label_pointers_and_boxes_from_the_scene(tmp_path):
    from posevla_core.train.verifier import VerifierConfig, collect_examples, other_category, swap_category

    assert swap_category("grab the red cube and lift it", "red cube", "blue cube") == "grab the blue cube and lift it"
    assert swap_category("pick up the cube", "cylinder", "bin") is None
    rng = np.random.default_rng(0)
    cats = ["red cube", "red cylinder", "blue cube", "blue cylinder", "white bin", "object"]
    draws = [other_category("red cube", cats, rng) for _ in range(200)]
    assert "red cube" not in draws and "object" not in draws
    assert 0.6 < np.mean([d in ("red cylinder", "blue cube") for d in draws]) < 0.95   # mostly near misses
    root = write_scenes(tmp_path / "g", 6)
    _, model = with_verifier()
    ex = collect_examples(model, [root], VerifierConfig(), progress=False)
    n = len(ex["text"])
    # per scene: the pointer for its instruction and for the other category, and 2 objects x (own, other) boxes
    assert n == 6 * (2 + 4) and ex["crop"].shape == (n, 3, 32, 32) and ex["scenes"] == 6
    box = ex["kind"] == 1
    assert ex["label"][box].sum() == 12                               # one positive per object
    pos_texts = [t for t, b, lab in zip(ex["text"], box.tolist(), ex["label"].tolist()) if b and lab]
    assert sorted(pos_texts) == ["pick up the cube"] * 6 + ["pick up the cylinder"] * 6
    # pointer crops sit at the heatmap's first peak whatever the verifier being trained says
    pointer = ex["kind"] == 0
    for bias in (-20.0, 20.0):
        _, m = with_verifier(bias=bias)
        other = collect_examples(m, [root], VerifierConfig(), progress=False)
        assert torch.equal(other["crop"][pointer], ex["crop"][pointer]) and m.cfg.verify_proposals == 3


class RedMeansYes(torch.nn.Module):
    """A stand-in verifier with a known answer: accepts crops that are mostly red."""

    def forward(self, crop, sentence):
        return (crop[:, 0].mean((1, 2)) - crop[:, 2].mean((1, 2))) * 50.0


def test_a_rejected_pointer_moves_to_the_next_peak_before_refusing():
    """Heatmap peaks on a blue square first, a red one second; the verifier accepts red only:
    an instruction is pointed at the red square (the first accepted proposal), a detect prompt
    keeps the first peak, and with one proposal allowed the instruction keeps it and is rejected."""
    from posevla_core.policies.small.layers import STEM_STRIDE

    _, m = with_verifier()
    m.verifier = RedMeansYes()
    rgb = np.full((64, 64, 3), 100, np.uint8)
    rgb[27:37, 11:21] = (250, 0, 0)          # red, centered at u = 0.25
    rgb[27:37, 43:53] = (0, 0, 250)          # blue, centered at u = 0.75
    K = np.array([[60.0, 0, 31.5], [0, 60.0, 31.5], [0, 0, 1]])
    depth = np.full((64, 64), 0.8, np.float32)
    batch = m.collate([m.make_example(rgb, depth, K, t) for t in ("pick up the cube", "detect the cube")])
    S = m.cfg.image_size // STEM_STRIDE
    heat = torch.full((2, S * S), -10.0)
    heat[:, (S // 2) * S + int(0.75 * S)] = 5.0     # blue: the best peak
    heat[:, (S // 2) * S + int(0.25 * S)] = 4.0     # red: the next one
    hr = batch["image_hr"].float() / 255.0
    hr = (hr - 0.5) / 0.25
    patches = torch.zeros(2, m.cfg.num_patches, m.cfg.backbone.hidden_size)
    grammar = batch["grammar"]
    with torch.no_grad():
        _, anchors, _, _, _, match = m._point(heat, patches, batch, hr, torch.zeros(2, 384), grammar)
        assert anchors[0, 0] == pytest.approx(0.25, abs=0.05) and match[0] > 0      # instruction: re-pointed
        assert anchors[1, 0] == pytest.approx(0.75, abs=0.05) and match[1] < 0      # detect: first peak
        m.cfg.verify_proposals = 1
        _, anchors, _, _, _, match = m._point(heat, patches, batch, hr, torch.zeros(2, 384), grammar)
        assert anchors[0, 0] == pytest.approx(0.75, abs=0.05) and match[0] < 0      # kept, and refused later
