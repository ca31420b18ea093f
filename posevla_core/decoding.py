"""Grammar-constrained greedy decoding of pose tokens with a KV cache, for every backbone.

Every grammar step allows a fixed token set (see tokens.py), so the constraint is a
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
from typing import Callable

import torch


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
    from posevla_core.tokens import DETECT

    return torch.where(grammar == DETECT, 1.0, float(threshold)).float()


def refusal_floor(grammar: torch.Tensor, threshold: float, p_match: torch.Tensor | None = None,
                  verify_threshold: float = 0.0) -> torch.Tensor:
    """``no_object_floor``, and 0 (refuse whatever the decoder says) on the instruction rows
    whose object verifier (model.ObjectVerifier) gives P(match) below ``verify_threshold``.
    Every head refuses through this one rule: the token head as its first-step floor, an
    action expert as ``p_absent >= floor``."""
    from posevla_core.tokens import DETECT

    floor = no_object_floor(grammar, threshold)
    if p_match is None:
        return floor
    reject = (grammar != DETECT) & (p_match.to(floor.device).float() < verify_threshold)
    return torch.where(reject, torch.zeros_like(floor), floor)


def refusal_score(p_absent: torch.Tensor, grammar: torch.Tensor, p_match: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) confidence that the instructed object is there: 1 - P(<no_object>), times the
    verifier's P(match) for instructions (what a detection is ranked by in AP)."""
    from posevla_core.tokens import DETECT

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
    logits computed outside the LM (the pointer prior of model.py), always added.
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
