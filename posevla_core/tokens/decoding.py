"""Grammar-constrained greedy decoding of pose tokens with a KV cache, for every backbone.

Why one module: the grammar mask, the KV caches and the decode loop (eager, static and
compiled) are one algorithm; every backbone calls it the same way.

Every grammar step allows a fixed token set (see grammar.py), so the constraint is a
precomputed (grammars, steps, vocab) additive mask: -inf outside the step's set. ``grammar_bias``
is the one place that mask is built; a backbone whose pose tokens are not one contiguous id
range (PaliGemma: boxes on its own ``<loc>`` tokens, the rest appended to its vocabulary)
passes an id map. ``constrained_greedy`` is the one decode loop: a backbone supplies a
``step`` callable that feeds the previous token through its own KV cache.
The no-cache and unconstrained modes exist for the benchmark (what the cache and the mask
buy or cost); the policy always uses cache + constraint.
"""
from __future__ import annotations

import functools
import inspect
import threading
from typing import Callable

import torch

from posevla_core.tokens.grammar import DETECT


@functools.lru_cache(maxsize=None)
def _cache_keyword(forward_fn) -> str:
    return "cache" if "cache" in inspect.signature(forward_fn).parameters else "past_key_values"


def cache_kwargs(model, cache) -> dict:
    """The KV-cache keyword for ``model``'s forward: ``cache`` from transformers 5.24 on,
    ``past_key_values`` before (5.20.2 is the newest release that installs on Python 3.10, the
    Python of ROS 2 Humble). Checked on the model class's own signature (once per class: this
    runs once per decoded token), not on a version number."""
    return {_cache_keyword(type(model).forward): cache}


def returned_cache(out):
    """The KV cache a forward returned, under either name (see ``cache_kwargs``)."""
    return out.cache if hasattr(out, "cache") else out.past_key_values


def no_object_floor(grammar: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per row, the first-step probability of ``<no_object>`` that makes the answer a refusal:
    ``threshold`` for an instruction (ACT: the robot would move on it, and unsure means do not
    move), the plain argmax (1.0) for a "detect the ..." prompt (it moves nothing; a floor there
    only drops correct detections: measured, 15 % false refusals on held-out grounding scenes
    at 0.1)."""

    return torch.where(grammar == DETECT, 1.0, float(threshold)).float()


def refusal_floor(grammar: torch.Tensor, threshold: float, p_match: torch.Tensor | None = None,
                  verify_threshold: float = 0.0) -> torch.Tensor:
    """``no_object_floor``, and 0 (refuse whatever the decoder says) on the instruction rows
    whose object verifier (policies.small.layers.ObjectVerifier) gives P(match) below ``verify_threshold``.
    Every head refuses through this one rule: the token head as its first-step floor, an
    action expert as ``p_absent >= floor``."""

    floor = no_object_floor(grammar, threshold)
    if p_match is None:
        return floor
    reject = (grammar != DETECT) & (p_match.to(floor.device).float() < verify_threshold)
    return torch.where(reject, torch.zeros_like(floor), floor)


def refusal_score(p_absent: torch.Tensor, grammar: torch.Tensor, p_match: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) confidence that the instructed object is there: 1 - P(<no_object>), times the
    verifier's P(match) for instructions (what a detection is ranked by in AP)."""

    score = 1.0 - p_absent.float()
    if p_match is None:
        return score
    return torch.where(grammar.to(score.device) == DETECT, score, score * p_match.to(score.device).float())


def first_step_prob(logits: torch.Tensor, step_bias: torch.Tensor, grammar: torch.Tensor, token: int) -> torch.Tensor:
    """(B,) probability of ``token`` at the first decoded step, inside each row's grammar
    (``step_bias`` as in ``constrained_greedy``, (grammars, S, V)): the ``<no_object>``
    probability a head without token decoding (an action expert) refuses on."""
    return (logits.float() + step_bias[grammar, 0]).softmax(-1)[:, token]


def grammar_bias(tokenizer, vocab_size: int, id_map: torch.Tensor | None = None) -> torch.Tensor:
    """(grammars, seq_len, vocab_size) float mask: 0 where ``tokenizer``'s grammar (ACT, DETECT)
    allows a token at a step, -inf elsewhere. ``id_map[i]`` is the backbone vocabulary id of
    pose token ``i`` (identity when None)."""
    mask = torch.as_tensor(tokenizer.masks)                             # (G, S, pose vocab) bool
    G, S, P = mask.shape
    bias = torch.full((G, S, vocab_size), float("-inf"))
    if id_map is None:
        bias[..., :P] = torch.where(mask, 0.0, float("-inf"))
        return bias
    for g in range(G):
        for s in range(S):
            bias[g, s, id_map[mask[g, s]]] = 0.0
    return bias


@torch.no_grad()
def constrained_greedy(step: Callable[[torch.Tensor | None], torch.Tensor], batch: int, step_bias: torch.Tensor,
                       device, constrained: bool = True, extra_logits: torch.Tensor | None = None,
                       stop_ids: tuple[int, ...] = (), first_floor: tuple[int, float] | None = None,
                       return_first_prob: bool = False):
    """Decode ``step_bias.shape[-2]`` tokens. ``step(prev)`` returns the (B, V) logits of the
    next token given the previously decoded (B,) ids (None at the first step). ``step_bias``:
    (S, V), or (B, S, V) for a grammar per row. ``stop_ids`` (``<no_object>``, EOS): a row that
    chose one is finished; when every row is, decoding stops and the rest repeats the stop
    token (nothing after it is read). ``first_floor`` = (id, p): at the first step, choose ``id``
    whenever its probability (inside the grammar) is at least ``p`` (a float, or (B,) per row),
    even when another token scores higher (the ``<no_object>`` answer: on a robot, unsure means
    do not move).
    ``return_first_prob``: return (ids, (B,) that first-step probability of ``first_floor[0]``)."""
    S = step_bias.shape[-2]
    out = torch.empty(batch, S, dtype=torch.long, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    stops = torch.tensor(stop_ids, dtype=torch.long, device=device)
    prev = None
    first_p = torch.zeros(batch, device=device)
    for s in range(S):
        logits = step(prev).float()
        if extra_logits is not None:
            logits = logits + extra_logits[:, s]
        if constrained:
            logits = logits + (step_bias[:, s] if step_bias.dim() == 3 else step_bias[s])
        prev = logits.argmax(dim=-1)
        if s == 0 and first_floor is not None:
            first_p = torch.softmax(logits, dim=-1)[:, first_floor[0]]
            floor = torch.as_tensor(first_floor[1], device=device, dtype=first_p.dtype)
            if bool((floor < 1.0).any()):
                prev = torch.where(first_p >= floor, torch.full_like(prev, first_floor[0]), prev)
        out[:, s] = prev
        if len(stop_ids):
            done |= torch.isin(prev, stops)
            if bool(done.all()) and s + 1 < S:
                out[:, s + 1:] = prev[:, None]
                break
    return (out, first_p) if return_first_prob else out


@torch.no_grad()
def greedy_decode(lm, prefix_embeds: torch.Tensor, prefix_mask: torch.Tensor, bos_embed: torch.Tensor,
                  embed_tokens, step_bias: torch.Tensor, use_cache: bool = True,
                  constrained: bool = True, extra_logits: torch.Tensor | None = None,
                  stop_ids: tuple[int, ...] = (), first_floor: tuple[int, float] | None = None,
                  return_first_prob: bool = False):
    """Decode for a causal LM fed with ``inputs_embeds`` (the small model).

    prefix_embeds (B, P, D), prefix_mask (B, P) bool; bos_embed (D,); embed_tokens: ids -> embeds;
    step_bias (S, V) or (B, S, V): see ``grammar_bias``. extra_logits (B, S, V): part of the model's own
    logits computed outside the LM (the pointer prior of the small model), always added.
    Returns (B, S) token ids.
    """
    B = prefix_embeds.shape[0]
    state = {"embeds": torch.cat([prefix_embeds, bos_embed.expand(B, 1, -1)], dim=1),
             "mask": torch.cat([prefix_mask, prefix_mask.new_ones(B, 1)], dim=1).long(), "past": None}

    def step(prev):
        if prev is not None:
            state["embeds"] = torch.cat([state["embeds"], embed_tokens(prev)[:, None]], dim=1)
            state["mask"] = torch.cat([state["mask"], state["mask"].new_ones(B, 1)], dim=1)
        embeds, mask, past = state["embeds"], state["mask"], state["past"]
        if use_cache:
            res = lm(inputs_embeds=embeds if past is None else embeds[:, -1:], attention_mask=mask,
                     use_cache=True, logits_to_keep=1, **cache_kwargs(lm, past))
            state["past"] = returned_cache(res)
        else:
            res = lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False, logits_to_keep=1)
        return res.logits[:, -1]

    return constrained_greedy(step, B, step_bias, prefix_embeds.device, constrained, extra_logits, stop_ids,
                              first_floor, return_first_prob)


# ---- static-cache decoding -----------------------------------------------------------------------
# The same greedy answer as ``constrained_greedy`` + a growing KV cache, without the per-token
# overhead: the KV cache is preallocated once per (batch, length), the per-step work is a fixed-shape
# function of device tensors (a CUDA graph under ``compile`` on CUDA), the grammar mask and the
# pointer prior are added as one precomputed tensor, and the decoded ids stay on the device. The
# host looks at the answer only at the steps where the grammar lets a row stop (<no_object> at step
# 0, EOS where an answer may end): the early exit of ``constrained_greedy``, without its per-token
# sync. Uncompiled, a step runs the eager path's kernels on the same shapes (SDPA over the keys
# written so far, a view of the preallocated cache), so its logits are the eager ones bit for bit;
# compiled, it attends over the whole preallocated cache, masked beyond the written keys (one fixed
# shape: one CUDA graph), which moves the logits by float rounding (~1e-6 relative, measured). The
# tests compare the tokens of both with the eager ones, token for token.
DECODING_MODES = ("eager", "static", "static-compile")


def check_decoding(mode: str, use_cache: bool = True) -> bool:
    """True for a static-cache mode; a clear error for an unknown mode or static without the cache."""
    if mode not in DECODING_MODES:
        raise ValueError(f"unknown decoding mode {mode!r}; choose from {', '.join(DECODING_MODES)}")
    if mode != "eager" and not use_cache:
        raise ValueError(f"decoding={mode!r} is a KV-cache path; use_cache=False needs decoding='eager'")
    return mode != "eager"


def _stop_steps(add: torch.Tensor | None, S: int, stop_ids: tuple[int, ...], constrained: bool) -> set[int]:
    """The steps after which some row may have chosen a stop token: step 0 (the first-step floor
    forces ``<no_object>`` whatever the mask says) and every step whose mask allows a stop id in
    some row (all steps without the constraint). One host read, before the loop."""
    if not stop_ids:
        return set()
    if not constrained or add is None:
        return set(range(S))
    allowed = torch.isfinite(add[..., list(stop_ids)]).any(-1).any(0)
    return {0, *torch.nonzero(allowed).flatten().tolist()}


@torch.no_grad()
def static_greedy(step: Callable[[torch.Tensor, int], torch.Tensor], first_logits: torch.Tensor,
                  step_bias: torch.Tensor, constrained: bool = True, extra_logits: torch.Tensor | None = None,
                  stop_ids: tuple[int, ...] = (), first_floor: tuple[int, float] | None = None,
                  return_first_prob: bool = False, step_ids: Callable | None = None):
    """``constrained_greedy``'s answer (same arguments, same (B, S) ids, same fill after the last
    row stopped) from ``first_logits`` (B, V), the prefill's logits of step 0, and ``step(prev, s)``,
    the (B, V) logits of step s >= 1 given the (B,) ids of step s - 1. The mask and the prior are
    summed once up front (the mask is 0 or -inf, so the sum is the eager one bit for bit); the
    first-step floor is a ``torch.where`` (no host read of it); the host reads the ids only at
    ``_stop_steps``. ``step_ids(prev, s, add_s)``, in place of ``step``: the (B,) ids of step
    s >= 1 themselves, the argmax of its logits plus ``add_s`` (B, V) (zeros where nothing is
    added), so that a compiled step does the whole greedy step in one call."""
    B, V = first_logits.shape
    device = first_logits.device
    S = step_bias.shape[-2]
    add = None
    if constrained:
        add = step_bias if step_bias.dim() == 3 else step_bias.expand(B, S, V)
    if extra_logits is not None:
        add = extra_logits if add is None else extra_logits + add
    if step_ids is not None:
        # one layout for every call of a compiled step_ids: add[:, s] is a contiguous (B, V) row
        rows = first_logits.new_zeros(S, B, V, dtype=torch.float32)
        if add is not None:
            rows.copy_(add.transpose(0, 1))
        add = rows.transpose(0, 1)
    checks = _stop_steps(add, S, stop_ids, constrained)
    out = torch.empty(B, S, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    stops = torch.tensor(stop_ids, dtype=torch.long, device=device)
    first_p = torch.zeros(B, device=device)
    prev = None
    for s in range(S):
        if s and step_ids is not None:
            prev = step_ids(prev, s, add[:, s])
        else:
            logits = (first_logits if s == 0 else step(prev, s)).float()
            if add is not None:
                logits = logits + add[:, s]
            prev = logits.argmax(dim=-1)
        if s == 0 and first_floor is not None:
            first_p = torch.softmax(logits, dim=-1)[:, first_floor[0]]
            floor = torch.as_tensor(first_floor[1], device=device, dtype=first_p.dtype)
            force = (floor < 1.0).any() & (first_p >= floor)       # the eager rule, on the device
            prev = torch.where(force, torch.full_like(prev, first_floor[0]), prev)
        out[:, s] = prev
        if s in checks:
            done |= torch.isin(prev, stops)
            if s + 1 < S and bool(done.all()):
                out[:, s + 1:] = prev[:, None]
                break
    return (out, first_p) if return_first_prob else out


def compile_step(fn: Callable, device: torch.device, dynamic: bool | None = None,
                 fullgraph: bool = True) -> Callable:
    """``fn`` under torch.compile, the one place that decides how a decode or integration step is
    compiled: CUDA graphs on CUDA ("reduce-overhead"); on a CPU inductor's C++ kernels with its
    C++ wrapper, which calls them without a Python frame per kernel (the small model's 4-layer
    step is ~150 tiny ops, so launch overhead is its whole cost: measured on a sim frame, 1
    thread, decode 74 -> 41 ms, against 48 ms with the Python wrapper). ``fullgraph`` False for a
    transformers forward that breaks the graph (PaliGemma's)."""
    if device.type == "cuda":
        return torch.compile(fn, mode="reduce-overhead", fullgraph=fullgraph, dynamic=dynamic)
    return torch.compile(fn, fullgraph=fullgraph, dynamic=dynamic, options={"cpp_wrapper": True})


def compile_failed(error: Exception, what: str, instead: str) -> RuntimeError:
    """The one-line error of a compilation that failed (inductor's errors have no common base
    class and can run to pages): ``what`` could not be compiled, ``instead`` says what runs."""
    first = str(error).splitlines()[0] if str(error) else ""
    return RuntimeError(f"decoding='static-compile' could not compile {what} ({type(error).__name__}: {first}); "
                        f"{instead}")


class StaticLlamaDecoder:
    """A preallocated KV cache and a fixed-shape decode step for a transformers Llama fed with
    ``inputs_embeds`` (the small model's decoder): its own modules and weights on the eager path's
    kernels (see the note above ``DECODING_MODES``). The prefill is the eager one (transformers'
    forward, its cache copied in), so step 0, the refusal decision, is the eager step bit for bit. Transformers' own StaticCache forward is not used here: its per-call mask
    and cache bookkeeping cost more than the 4-layer decoder does on a CPU (measured, sim frame:
    1.2x slower per token than the eager dynamic cache; this step: faster than it, see
    bench_model). ``compile``: the step under torch.compile (``compile_step``); ``warm_up``
    compiles it ahead of the first prediction. Not thread-safe: the caller holds ``lock``."""

    def __init__(self, lm, batch: int, max_len: int, dtype: torch.dtype, device, compile: bool = False) -> None:
        cfg = lm.config
        if cfg.num_key_value_heads != cfg.num_attention_heads or cfg._attn_implementation != "sdpa":
            raise ValueError("StaticLlamaDecoder needs a Llama with sdpa attention and as many key/value heads as "
                             "query heads (the small model's decoder); use decoding='eager'")
        self.lm, self.batch, self.max_len = lm, batch, max_len
        self.heads = cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        n = len(lm.model.layers)
        self.keys = torch.zeros(n, batch, self.heads, max_len, self.head_dim, dtype=dtype, device=device)
        self.values = torch.zeros_like(self.keys)
        self.valid = torch.zeros(batch, 1, 1, max_len, dtype=torch.bool, device=device)
        self.lock = threading.Lock()
        self.compiled, self.warm = None, False
        if compile:
            for t in (self.keys, self.values, self.valid):
                torch._dynamo.mark_static_address(t)
            self.compiled = compile_step(self._next_ids, torch.device(device), dynamic=False)

    @torch.no_grad()
    def warm_up(self) -> None:
        """Run the compiled step once on zeros, so the compilation (seconds; inductor caches it on
        disk for later processes) happens here and not at a robot's first prediction, on inputs
        laid out as ``decode``'s. The cache written is garbage; ``prefill`` resets what a decode
        reads."""
        if self.compiled is None or self.warm:
            return
        B, V = self.batch, self.lm.config.vocab_size
        ids = torch.zeros(B + 1, dtype=torch.long, device=self.keys.device)
        self.length = 0
        cos, sin = self.rotary_table(1, self.keys)
        try:
            self.compiled(ids[:B], ids[B:], cos, sin, self.keys.new_zeros(2, B, V, dtype=torch.float32)[1])
        except torch._dynamo.exc.FailOnRecompileLimitHit:
            # dynamo keeps torch._dynamo.config.recompile_limit (8) graphs of one function: the
            # decoder of a batch size beyond that runs the same step uncompiled (same tokens)
            self.compiled = None
        self.valid.zero_()
        self.warm = True

    def prefill(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The eager prefill over ``embeds`` (B, P, D) with ``mask`` (B, P); its keys/values go to
        the first P cache slots. Returns the (B, V) logits of the last position."""
        self.warm_up()              # compiled: the decode loop runs no guards, so compile before it
        res = self.lm(inputs_embeds=embeds, attention_mask=mask, use_cache=True, logits_to_keep=1)
        cache = returned_cache(res)
        P = embeds.shape[1]
        if P >= self.max_len:
            raise ValueError(f"prefix of {P} tokens does not fit the static cache of {self.max_len}")
        for i, layer in enumerate(cache.layers):
            self.keys[i, :, :, :P].copy_(layer.keys)
            self.values[i, :, :, :P].copy_(layer.values)
        self.valid.zero_()
        self.valid[:, 0, 0, :P] = mask.bool()
        self.length = P
        # transformers drops an all-ones padding mask (SDPA then runs unmasked); so does the step
        self.dense = bool(mask.bool().all())
        return res.logits[:, -1]

    def rotary_table(self, steps: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (steps, 1, head_dim) of the positions the next ``steps`` tokens take: row
        ``[s:s + 1]`` is step s's (1, 1, head_dim), with strides that do not depend on ``steps``
        (a compiled step guards on its inputs' strides: one compilation for every answer length)."""
        pos = torch.arange(self.length, self.length + steps, device=like.device)[None]
        return tuple(t[0].unsqueeze(1) for t in self.lm.model.rotary_emb(like, position_ids=pos))

    def _step(self, x: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
              n: int = 0) -> torch.Tensor:
        """Logits (B, V) of the token after ``x`` (B, 1, D), written to cache slot ``pos`` (1,).
        ``n`` > 0: attend over the first ``n`` slots (the eager shapes); 0: over all of them, the
        unwritten ones masked (one shape for every step: what a CUDA graph captures)."""
        # transformers: heavy, only the PaliGemma path needs it
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        B, H, hd = x.shape[0], self.heads, self.head_dim
        self.valid.index_fill_(-1, pos, True)
        L = n or self.max_len
        mask = None if n and self.dense else self.valid[..., :L]
        h = x
        for i, layer in enumerate(self.lm.model.layers):
            attn = layer.self_attn
            hn = layer.input_layernorm(h)
            q = attn.q_proj(hn).view(B, 1, H, hd).transpose(1, 2)
            k = attn.k_proj(hn).view(B, 1, H, hd).transpose(1, 2)
            v = attn.v_proj(hn).view(B, 1, H, hd).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            self.keys[i].index_copy_(2, pos, k)
            self.values[i].index_copy_(2, pos, v)
            o = torch.nn.functional.scaled_dot_product_attention(q, self.keys[i, :, :, :L], self.values[i, :, :, :L],
                                                                  attn_mask=mask, scale=attn.scaling)
            h = h + attn.o_proj(o.transpose(1, 2).reshape(B, 1, -1))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        return self.lm.lm_head(self.lm.model.norm(h))[:, -1]

    def _next_ids(self, prev: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                  add: torch.Tensor, n: int = 0) -> torch.Tensor:
        """One whole greedy step: the (B,) ids after ``prev`` (B,), i.e. the argmax of ``_step``'s
        logits plus ``add`` (B, V). Compiled, the embedding lookup, the bias and the argmax are
        kernels of the one graph, not eager ops between its calls."""
        x = self.lm.get_input_embeddings()(prev)[:, None]
        return (self._step(x, pos, cos, sin, n).float() + add).argmax(dim=-1)

    def decode(self, embed_tokens, first_logits: torch.Tensor, step_bias: torch.Tensor, **kw):
        """``static_greedy`` after ``prefill``: token s >= 1 feeds the ids of step s - 1.
        ``embed_tokens`` must be the decoder's input embedding (the compiled step looks the ids
        up itself)."""
        S = step_bias.shape[-2]
        if self.length + S - 1 > self.max_len:
            raise ValueError(f"{self.length} prefix + {S} pose tokens do not fit the static cache of {self.max_len}")
        if embed_tokens is not self.lm.get_input_embeddings():
            raise ValueError("StaticLlamaDecoder embeds the fed-back ids with its own model's input embedding")
        cos, sin = self.rotary_table(S - 1, first_logits.new_empty(0).to(self.keys.dtype))
        slots = torch.arange(self.length, self.length + S - 1, device=first_logits.device)

        def step_ids(prev: torch.Tensor, s: int, add: torch.Tensor) -> torch.Tensor:
            pos, c, si = slots[s - 1:s], cos[s - 1:s], sin[s - 1:s]
            if self.compiled is None:
                return self._next_ids(prev, pos, c, si, add, self.length + s)
            if s == 1:
                try:
                    return self.compiled(prev, pos, c, si, add)
                except torch._dynamo.exc.FailOnRecompileLimitHit:
                    # global state changed since warm_up and dynamo already keeps its limit of
                    # graphs of this step: this decoder runs uncompiled from here (same tokens).
                    # The limit is checked before the graph runs, so nothing was written.
                    self.compiled = None
                    return self._next_ids(prev, pos, c, si, add, self.length + s)
            # Without dynamo's guard checks (~80 us a call, 10 % of a prediction on 2 CPU cores):
            # step 1 ran every guard (and compiled again had the global state changed since
            # warm_up: the grad mode, torch.set_num_threads), and later steps pass the same shapes,
            # strides, buffers and global state, so only the guards that tell this decoder's graph
            # from another's are needed. (set_stance as a decorator of the compiled function did
            # not skip them, measured; the context manager does.)
            with torch.compiler.set_stance(skip_guard_eval_unsafe=True):
                return self.compiled(prev, pos, c, si, add)

        return static_greedy(None, first_logits, step_bias, step_ids=step_ids, **kw)


@torch.no_grad()
def static_greedy_decode(decoder: StaticLlamaDecoder, prefix_embeds: torch.Tensor, prefix_mask: torch.Tensor,
                         bos_embed: torch.Tensor, embed_tokens, step_bias: torch.Tensor, constrained: bool = True,
                         extra_logits: torch.Tensor | None = None, stop_ids: tuple[int, ...] = (),
                         first_floor: tuple[int, float] | None = None, return_first_prob: bool = False):
    """``greedy_decode`` (with the cache) on ``decoder``'s preallocated cache: same arguments, same ids."""
    B = prefix_embeds.shape[0]
    embeds = torch.cat([prefix_embeds, bos_embed.expand(B, 1, -1)], dim=1)
    mask = torch.cat([prefix_mask, prefix_mask.new_ones(B, 1)], dim=1).long()
    with decoder.lock:
        first = decoder.prefill(embeds, mask)
        return decoder.decode(embed_tokens, first, step_bias, constrained=constrained, extra_logits=extra_logits,
                              stop_ids=stop_ids, first_floor=first_floor, return_first_prob=return_first_prob)
