"""Grammar-constrained greedy decoding of pose tokens with a KV cache.

The grammar has exactly one token block per step (see tokens.py), so the constraint is a
precomputed (steps, vocab) additive mask: -inf outside the step's block. Applying it costs
one add per step, and every decoded sequence parses, even with random weights.
The no-cache and unconstrained modes exist for the benchmark (what the cache and the mask
buy or cost); the policy always uses cache + constraint.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def greedy_decode(lm, prefix_embeds: torch.Tensor, prefix_mask: torch.Tensor, bos_embed: torch.Tensor,
                  embed_tokens, step_bias: torch.Tensor, use_cache: bool = True,
                  constrained: bool = True, extra_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Decode ``step_bias.shape[0]`` tokens for a batch.

    lm: a transformers causal LM called with inputs_embeds.
    prefix_embeds (B, P, D), prefix_mask (B, P) bool; bos_embed (D,); embed_tokens: ids -> embeds;
    step_bias (S, V): 0 for allowed tokens, -inf elsewhere (the grammar; off if not constrained).
    extra_logits (B, S, V): part of the model's own logits computed outside the LM (the
    pointer prior of model.py), always added.
    Returns (B, S) token ids.
    """
    B = prefix_embeds.shape[0]
    S = step_bias.shape[0]
    embeds = torch.cat([prefix_embeds, bos_embed.expand(B, 1, -1)], dim=1)
    mask = torch.cat([prefix_mask, prefix_mask.new_ones(B, 1)], dim=1).long()
    out = torch.empty(B, S, dtype=torch.long, device=prefix_embeds.device)
    past = None
    for s in range(S):
        if use_cache:
            res = lm(inputs_embeds=embeds if past is None else embeds[:, -1:], attention_mask=mask,
                     cache=past, use_cache=True, logits_to_keep=1)
            past = res.cache
        else:
            res = lm(inputs_embeds=embeds, attention_mask=mask, use_cache=False, logits_to_keep=1)
        logits = res.logits[:, -1].float()
        if extra_logits is not None:
            logits = logits + extra_logits[:, s]
        if constrained:
            logits = logits + step_bias[s]
        tok = logits.argmax(dim=-1)
        out[:, s] = tok
        if s + 1 < S:
            embeds = torch.cat([embeds, embed_tokens(tok)[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)
    return out
