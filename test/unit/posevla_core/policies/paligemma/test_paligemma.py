"""PaliGemma Pose-VLA on a tiny random PaliGemma saved to a local directory (built offline by
test/helpers/tiny_vlm.py): pose tokens by name with mean embeddings, boxes on <loc> tokens,
prefix-LM attention, the geometry prior before the projector, grammar-constrained KV-cache
decoding, and save -> load giving identical tensors and tokens."""
import json
from test.helpers.models import forbid_no_object
from test.helpers.paligemma import INSTR, base, build, frame, target  # noqa: F401 - fixtures

import numpy as np
import pytest
import torch

from posevla_core.paths import architecture_of
from posevla_core.policies.factory import load_policy
from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA
from posevla_core.policies.paligemma.processor import new_token_names


def test_pose_tokens_added_by_name_with_mean_embeddings_and_boxes_on_loc_tokens(base):
    from transformers import AutoTokenizer, PaliGemmaForConditionalGeneration

    m = build(base)
    orig = PaliGemmaForConditionalGeneration.from_pretrained(str(base)).get_input_embeddings().weight
    n_orig = len(AutoTokenizer.from_pretrained(str(base)))
    emb = m.vlm.get_input_embeddings().weight
    assert m.vlm.get_output_embeddings().weight.data_ptr() == emb.data_ptr()        # still tied
    names = new_token_names(m.tokenizer)
    ids = m.text_tokenizer.convert_tokens_to_ids(names)
    assert sorted(ids) == list(range(n_orig, n_orig + len(names)))
    torch.testing.assert_close(emb[n_orig:], orig.mean(0).expand(len(names), -1))
    torch.testing.assert_close(emb[:n_orig], orig)                                   # pretrained rows untouched
    box = m.tokenizer.blocks["box"]
    assert m.text_tokenizer.convert_ids_to_tokens(m.id_map[box.start:box.stop].tolist()) == \
        [f"<loc{i:04d}>" for i in range(1024)]
    # The grammar mask allows exactly <loc> tokens at the box steps.
    allowed = torch.isfinite(m.step_bias[0, 1]).nonzero()[:, 0]
    assert allowed.tolist() == sorted(m.id_map[box.start:box.stop].tolist())


def test_prompt_is_paligemma_format_and_attention_is_prefix_lm(base):
    m = build(base).eval()
    p = m.processor
    ids = p.prompt_ids(INSTR)
    tok = m.text_tokenizer
    assert ids[: p.num_image_tokens] == [m.vlm.config.image_token_id] * p.num_image_tokens
    assert ids[p.num_image_tokens] == tok.bos_token_id and ids[-1] == tok.convert_tokens_to_ids("\n")
    assert tok.decode(ids[p.num_image_tokens + 1:-1]) == INSTR
    rgb, depth, K = frame()
    outs = []
    for instr in (INSTR, "pick up the red cylinder"):    # same length, differs in the LAST prompt word
        b = p.collate([p.make_example(rgb, depth, K, instr)])
        with torch.no_grad():
            out = m._lm(b["input_ids"], b["attention_mask"], torch.zeros_like(b["input_ids"]),
                        image=m.image_features(b))
        outs.append(out.logits[0, 0])
    # Bidirectional prefix: the first image token sees the last prompt word (a causal mask would not).
    assert not torch.allclose(outs[0], outs[1])


def test_geometry_prior_is_added_before_the_projector(base):
    m = build(base).eval()
    p = m.processor
    rgb, depth, K = frame()

    def feats(d, K_, **drop):
        b = p.collate([p.make_example(rgb, d, K_, INSTR)])
        b.update({k: torch.tensor([[v]]) for k, v in drop.items()})         # (batch, camera)
        with torch.no_grad():
            return m.image_features(b)

    base_f = feats(depth, K)
    assert not torch.allclose(base_f, feats(depth + 0.3, K))          # depth counts
    assert not torch.allclose(feats(None, K), feats(None, K * [[1.3], [1.3], [1]]))   # rays carry K without depth
    torch.testing.assert_close(feats(depth, K, use_depth=False), feats(None, K))   # a dropped prior = no depth
    vt = m.vlm.model.vision_tower
    b = p.collate([p.make_example(rgb, None, K, INSTR)])
    b["use_rays"][:] = False
    with torch.no_grad():
        pix = b["pixel_values"][:, 0].float() / 127.5 - 1
        plain = m.vlm.model.multi_modal_projector(vt(pixel_values=pix).last_hidden_state)
        torch.testing.assert_close(m.image_features(b), plain)        # both dropped: the pretrained path
    # In training each prior is dropped with p = 0.5, decided by the data rng.
    drops = [p.make_example(rgb, depth, K, INSTR, rng=np.random.default_rng(i)) for i in range(200)]
    assert 60 < sum(not e["use_rays"][0] for e in drops) < 140 and 60 < sum(not e["use_depth"][0] for e in drops) < 140


def test_decoding_parses_cache_equals_no_cache_and_batch_equals_single(base):
    # float64: random weights give near-ties between tokens, which float32 rounding of the
    # cached and the uncached paths could break differently
    m = build(base).double().eval()
    rgb, depth, K = frame()
    forbid_no_object(m)
    p = m.predict(rgb, depth, K, INSTR)
    assert p.valid and m.tokenizer.is_valid(p.token_ids) and len(p.waypoints) == 1
    assert m.predict(rgb, depth, K, INSTR, use_cache=False).token_ids == p.token_ids
    rgb2, depth2, K2 = frame(1, 48, 48)
    batch = m.predict_batch([{"rgb": rgb, "depth": depth, "K": K, "instruction": INSTR},
                             {"rgb": rgb2, "depth": None, "K": K2, "instruction": "put the blue cube in the white bin"}])
    assert batch[0].token_ids == p.token_ids               # left padding changes nothing
    assert m.predict(rgb2, None, K2, "put the blue cube in the white bin").token_ids == batch[1].token_ids


def test_letterboxed_target_box_round_trips(base):
    m = build(base)
    rgb, depth, K = frame()          # 4:3
    ex = m.processor.make_example(rgb, depth, K, INSTR, target(0.3, 0.6))
    tok = m.tokenizer
    box0 = tok.blocks["box"].start
    lb = ex["letterbox"]
    from posevla_core.image import unletterbox_uv

    # box x1, y1, x2, y2 (steps 1..4) on <loc> bins of the letterboxed image, back to the camera image
    for (kx, ky), (want_u, want_v) in (((1, 2), (0.25, 0.55)), ((3, 4), (0.35, 0.65))):
        uv = [(ex["labels"][k] - box0 + 0.5) / 1024 for k in (kx, ky)]
        back = unletterbox_uv(uv, lb[:4], lb[4], lb[5], m.processor.image_size)
        assert abs(back[0] - want_u) < 2.0 / 1024 * 40 / 32 and abs(back[1] - want_v) < 2.0 / 1024 * 40 / 32


def test_save_load_gives_identical_tensors_and_tokens(base, tmp_path):
    m = build(base).eval()
    rgb, depth, K = frame()
    before = m.predict(rgb, depth, K, INSTR).token_ids
    m.save_pretrained(tmp_path / "ckpt")
    assert architecture_of(tmp_path / "ckpt") == "paligemma"
    m2 = load_policy(tmp_path / "ckpt", device="cpu")
    assert type(m2) is PaliGemmaPoseVLA
    assert m2.vlm.get_output_embeddings().weight.data_ptr() == m2.vlm.get_input_embeddings().weight.data_ptr()
    s1, s2 = m.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys()
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k
    assert m2.predict(rgb, depth, K, INSTR).token_ids == before
    vocab = tmp_path / "ckpt" / "pose_vocab.json"
    vocab.write_text(json.dumps(json.loads(vocab.read_text())[:-1]))
    with pytest.raises(ValueError, match="does not match"):
        load_policy(tmp_path / "ckpt", device="cpu")


def test_missing_base_directory_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        PaliGemmaPoseVLA.from_base(tmp_path / "paligemma-3b-pt-224")


def test_a_second_camera_gets_its_own_image_tokens_and_prior(base):
    """Scene + wrist camera: image tokens for both in the prompt, each camera's own ray/depth
    prior, the pose tokens in the first camera's frame; the loss trains with both."""
    m = build(base).eval()
    p = m.processor
    rgb, depth, K = frame()
    wrist = {"rgb": frame(3, 24, 32)[0], "depth": None, "K": np.array([[20.0, 0, 15.5], [0, 20.0, 11.5], [0, 0, 1]])}
    ex = p.make_example(rgb, depth, K, INSTR, target(), views=[wrist])
    assert ex["pixel_values"].shape[0] == 2 and list(ex["use_depth"]) == [True, False]
    assert ex["input_ids"].tolist().count(m.vlm.config.image_token_id) == 2 * p.num_image_tokens
    b = p.collate([ex])
    with torch.no_grad():
        f = m.image_features(b)
        single = m.image_features(p.collate([p.make_example(rgb, depth, K, INSTR)]))
    assert f.shape[1] == 2 * p.num_image_tokens
    torch.testing.assert_close(f[:, : p.num_image_tokens], single)       # the scene camera's tokens unchanged
    wrist2 = dict(wrist, K=wrist["K"] * [[1.4], [1.4], [1]])
    with torch.no_grad():
        f2 = m.image_features(p.collate([p.make_example(rgb, depth, K, INSTR, views=[wrist2])]))
    assert not torch.allclose(f[:, p.num_image_tokens:], f2[:, p.num_image_tokens:])   # the wrist's own rays
    pred = m.predict(rgb, depth, K, INSTR, views=[wrist])
    assert pred.valid and m.tokenizer.is_valid(pred.token_ids)
    m.train()
    opt = torch.optim.AdamW(m.param_groups(0.0), lr=3e-3)
    losses = []
    for _ in range(10):
        loss, _ = m.compute_loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses
