"""Static-cache decoding (decoding.static_greedy, StaticLlamaDecoder, PaliGemma on transformers'
StaticCache) gives the eager decoder's tokens, token for token: on the tiny small model (float32:
its logits are the eager ones bit for bit) and the tiny random PaliGemma (float64, as in
test_paligemma: random weights have near-ties that float32 rounding may break either way), batch 1
and batch > 1, full answers, refusals and rows that stop at different steps."""
from test.helpers.models import forbid_no_object, random_frame

import pytest
import torch

from posevla_core.config import TokenizerConfig
from posevla_core.policies.paligemma.configuration import VLMConfig
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.tokens.decoding import constrained_greedy, greedy_decode, static_greedy, static_greedy_decode
from posevla_core.tokens.grammar import BOS, DETECT, EOS, NO_OBJECT

INSTR = ("pick up the red cube", "detect the blue cylinder", "put the green cube in the white bin", "detect the object")


def items(n, seed=0):
    out = []
    for i in range(n):
        rgb, depth, K = random_frame(seed + i, 40 + 8 * i, 56, f=50.0, depth=(0.5, 1.5))
        out.append({"rgb": rgb, "depth": None if i == 2 else depth, "K": K, "instruction": INSTR[i % len(INSTR)]})
    return out


def assert_same(model, batch, **kw):
    """Eager and static predictions of ``batch`` agree token for token (and in their scores)."""
    eager = model.predict_batch(batch, decoding="eager", **kw)
    static = model.predict_batch(batch, decoding="static", **kw)
    assert [p.token_ids for p in static] == [p.token_ids for p in eager]
    assert [p.score for p in static] == [p.score for p in eager]
    return eager


def refuse_instructions(model, nid=NO_OBJECT):
    """Instructions (ACT) refuse at step 0 (floor 0: the verifier-rejection floor); detect prompts
    are forbidden to refuse, so they decode on."""
    model.cfg.no_object_threshold = 0.0 if isinstance(model, PoseVLA) else 1e-30
    model.step_bias[DETECT, 0, nid] = float("-inf")
    return model


@pytest.fixture
def small():
    torch.manual_seed(0)
    return PoseVLA(PoseVLAConfig(**{**PoseVLAConfig.tiny().__dict__, "verifier": True,
                                    "verify_threshold": 0.0})).eval()


def test_static_loop_stops_and_fills_like_the_eager_loop():
    """Rows that stop at different steps, all rows stopping mid-sequence, the first-step floor."""
    torch.manual_seed(0)
    B, S, V = 3, 9, 12
    table = torch.randn(B, S, V)
    bias = torch.zeros(B, S, V)
    bias[:, :, EOS] = float("-inf")
    bias[:, [3, 6], EOS] = 0.0                            # a stop is allowed at steps 3 and 6 only
    table[0, 3, EOS] = 50.0                               # row 0 stops at 3, row 1 at 6, row 2 never
    table[1, 6, EOS] = 50.0
    for stop_row2 in (False, True):
        if stop_row2:
            table[2, 6, EOS] = 50.0                       # now everyone is done after step 6
        for floor in (1.0, torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.2, 0.3, 1.0])):
            kw = dict(stop_ids=(NO_OBJECT, EOS), first_floor=(NO_OBJECT, floor), return_first_prob=True)
            state = {"s": 0}

            def eager_step(prev):
                state["s"] += prev is not None
                return table[:, state["s"]]

            a, pa = constrained_greedy(eager_step, B, bias, "cpu", **kw)
            b, pb = static_greedy(lambda prev, s: table[:, s], table[:, 0], bias, **kw)
            assert torch.equal(a, b) and torch.equal(pa, pb)
    state = {"s": 0}                                      # without the grammar: a stop check every step

    def step(prev):
        state["s"] += prev is not None
        return table[:, state["s"]]

    a = constrained_greedy(step, B, bias, "cpu", constrained=False, stop_ids=(EOS,))
    b = static_greedy(lambda prev, s: table[:, s], table[:, 0], bias, constrained=False, stop_ids=(EOS,))
    assert torch.equal(a, b)


def test_small_model_static_equals_eager_full_answers(small):
    forbid_no_object(small)
    full = assert_same(small, items(1))
    assert full[0].found and len(full[0].token_ids) == small.tokenizer.seq_len
    for seed in (0, 10):                                  # batch > 1, the same preallocated cache twice
        assert_same(small, items(4, seed))
    assert_same(small, items(2), constrained=False)


def test_small_model_static_equals_eager_with_refusals(small):
    refuse_instructions(small)
    out = assert_same(small, items(1))                    # a refusal alone: decoding stops after step 0
    assert out[0].token_ids == [NO_OBJECT]
    out = assert_same(small, items(4))                    # refused rows beside detect rows that decode on
    assert [p.token_ids[0] == NO_OBJECT for p in out] == [True, False, True, False]


def test_small_model_whole_id_tensors_and_logits_match(small):
    """Below predict: the (B, S) ids (what comes after a row's stop included) and p(<no_object>)."""
    refuse_instructions(small)
    batch = small.collate([small.make_example(it["rgb"], it["depth"], it["K"], it["instruction"]) for it in items(4)])
    with torch.no_grad():
        prefix, pmask, aux = small.encode_prefix(batch, return_aux=True)
        emb = small.lm.get_input_embeddings()
        kw = dict(extra_logits=aux["prior"], stop_ids=(NO_OBJECT, EOS), return_first_prob=True,
                  first_floor=(NO_OBJECT, torch.tensor([0.0, 1.0, 0.0, 1.0])))
        bias = small.step_bias[aux["grammar"]]
        a, pa = greedy_decode(small.lm, prefix, pmask, emb.weight[BOS], emb, bias, **kw)
        b, pb = static_greedy_decode(small.static_decoder(4), prefix, pmask, emb.weight[BOS], emb, bias, **kw)
    assert torch.equal(a, b) and torch.equal(pa, pb)


def test_decoding_option_is_checked(small):
    it = items(1)
    with pytest.raises(ValueError, match="unknown decoding mode"):
        small.predict_batch(it, decoding="fast")
    with pytest.raises(ValueError, match="use_cache=False"):
        small.predict_batch(it, decoding="static", use_cache=False)
    small.decoding = "static"                              # the model's default; use_cache=False stays eager
    assert small.predict_batch(it, use_cache=False)[0].token_ids == small.predict_batch(it)[0].token_ids


@pytest.mark.slow
def test_small_model_compiled_static_step_equals_eager(small):
    """torch.compile of the fixed-shape step (inductor's C++ kernels on a CPU; CUDA graphs on CUDA),
    compiled ahead by set_decoding as policy_node does, then one compilation for every step."""
    forbid_no_object(small)
    batch = items(2)
    eager = small.predict_batch(batch, decoding="eager")
    assert small.set_decoding("static-compile", batch=2) == "static-compile"
    dec = small.static_decoder(2, compile=True)
    compiled = small.predict_batch(batch)
    assert [p.token_ids for p in compiled] == [p.token_ids for p in eager]
    assert small.predict_batch(batch)[0].token_ids == eager[0].token_ids
    assert small.static_decoder(2, compile=True) is dec           # kept: no second compilation
    # another batch size, never warmed: its decoder compiles before its first decode (the decode
    # loop skips dynamo's guards, so a compilation inside it would raise)
    one = batch[:1]
    assert small.predict_batch(one)[0].token_ids == small.predict_batch(one, decoding="eager")[0].token_ids
    assert small.static_decoder(1, compile=True).warm
    # global state a graph is guarded on, changed after the warm-up: the decode's first step
    # compiles again (the later ones skip the guards)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert [p.token_ids for p in small.predict_batch(batch)] == [p.token_ids for p in eager]
    finally:
        torch.set_num_threads(threads)
    # past dynamo's limit of graphs per function, a batch size decodes uncompiled, same tokens
    torch._dynamo.config.recompile_limit, limit = 2, torch._dynamo.config.recompile_limit
    try:
        three = batch + batch[:1]
        assert [p.token_ids for p in small.predict_batch(three)] == [p.token_ids for p in eager + eager[:1]]
        assert small.static_decoder(3, compile=True).compiled is None
        # a warmed decoder whose first step must compile again (another thread count) past the
        # limit: that decode goes on uncompiled, same tokens, instead of raising mid-answer
        assert small.static_decoder(2, compile=True).compiled is not None
        torch.set_num_threads(threads + 1)
        assert [p.token_ids for p in small.predict_batch(batch)] == [p.token_ids for p in eager]
        assert small.static_decoder(2, compile=True).compiled is None
    finally:
        torch._dynamo.config.recompile_limit = limit
        torch.set_num_threads(threads)
    small.decoding = "static"


def test_set_decoding_falls_back_to_static_when_compiling_fails(small, monkeypatch):
    """No C++ compiler (or a torch build inductor cannot use): the model keeps decoding, uncompiled,
    and the caller gets one line to log."""
    import posevla_core.tokens.decoding as D

    def broken(fn, device, **kw):
        def step(*a, **k):
            raise OSError("no C++ compiler found")
        return step

    monkeypatch.setattr(D, "compile_step", broken)
    small.__dict__.pop("_static_decoders", None)
    with pytest.raises(RuntimeError, match="decoding 'static' instead"):
        small.set_decoding("static-compile")
    assert small.decoding == "static"
    from posevla_core.policies.base import use_decoding  # what policy_node / posevla serve call: a line to log
    assert "no C++ compiler found" in use_decoding(small, "static-compile") and small.decoding == "static"
    assert use_decoding(object(), "static-compile") is None                     # a model without the option
    it = items(1)
    assert small.predict_batch(it)[0].token_ids == small.predict_batch(it, decoding="eager")[0].token_ids
    with pytest.raises(ValueError, match="unknown decoding mode"):
        small.set_decoding("fast")


@pytest.fixture(scope="module")
def paligemma():
    from posevla_core.policies.paligemma.modeling import PaliGemmaPoseVLA
    from posevla_core.policies.paligemma.random_init import random_paligemma

    torch.manual_seed(0)
    vlm, tok = random_paligemma("tiny")
    tokens = TokenizerConfig(box_bins=1024, num_waypoints=2, position_bins=32, rotation_bins=31)
    return PaliGemmaPoseVLA.from_vlm(vlm, tok, VLMConfig(tokens=tokens)).double().eval()


def test_paligemma_static_equals_eager(paligemma):
    m = paligemma
    saved = m.step_bias.clone()
    try:
        out = assert_same(m, items(1))                    # random weights: a refusal
        assert out[0].token_ids == [NO_OBJECT]
        refuse_instructions(m, int(m.id_map[NO_OBJECT]))
        out = assert_same(m, items(4))                    # left-padded prompts, refused and decoding rows
        assert [p.token_ids[0] == NO_OBJECT for p in out] == [True, False, True, False]
        forbid_no_object(m)
        m.cfg.no_object_threshold = 1.0
        out = assert_same(m, items(1))
        assert out[0].found and len(out[0].token_ids) == m.tokenizer.seq_len
        assert_same(m, items(3, 5))
    finally:
        m.step_bias.copy_(saved)
        m.cfg.no_object_threshold = 1.0
