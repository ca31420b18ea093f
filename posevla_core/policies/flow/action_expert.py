"""The flow-matching action expert's network (pi0 / SmolVLA style): a velocity field
v(x_t, t | prefix) over H action tokens, cross-attending to a backbone's prefix states.

    action expert: H noisy action tokens (+ flow time) --self-attention + cross-attention to the
                   prefix--> velocity field v(x_t, t); ``num_steps`` Euler steps from noise -> a chunk

Flow matching (rectified flow): x_t = (1 - t) * noise + t * action, the expert regresses the
velocity action - noise; 1 - t ~ Beta(1.5, 1) (pi0: most weight at the noisy end). Inference
integrates from ``noise_scale`` x Gaussian noise (1: pi0's sampling; 0: every chunk from x0 = 0,
one chunk per input, no sampling jitter between consecutive chunks).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from posevla_core.policies.flow.configuration import ACTION_DIM, ExpertConfig
from posevla_core.tokens.decoding import compile_step


def fourier(x: torch.Tensor, scales: tuple[float, ...]) -> torch.Tensor:
    """(..., n) -> (..., 2 n len(scales)): sin / cos of x / scale, for each scale."""
    ang = x[..., None] / torch.as_tensor(scales, dtype=x.dtype, device=x.device)
    return torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(-2)


ANCHOR_SCALES = (0.02, 0.05, 0.12, 0.3, 0.8)      # m: from a grasp offset to the workspace


# ---- the network -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _time_freqs(half: int, device: str) -> torch.Tensor:
    return 1000.0 * torch.exp(-math.log(1000.0) * torch.arange(half, device=device, dtype=torch.float32) / half)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the flow time t in [0, 1], (B,) -> (B, dim)."""
    ang = t.float()[:, None] * _time_freqs(dim // 2, str(t.device))[None]
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


class ActionExpert(nn.Module):
    """Velocity field v(x_t, t | prefix). Action tokens: MLP(action embedding, time embedding)
    (as pi0) + a learned position per chunk step; pre-norm transformer decoder layers
    (self-attention over the chunk, cross-attention to the projected prefix)."""

    def __init__(self, cfg: ExpertConfig, prefix_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.memory = nn.Sequential(nn.Linear(prefix_dim, w), nn.LayerNorm(w))
        self.action_in = nn.Linear(ACTION_DIM, w)
        self.token_mlp = nn.Sequential(nn.Linear(2 * w, w), nn.SiLU(), nn.Linear(w, w))
        self.position = nn.Parameter(torch.randn(cfg.horizon, w) * 0.02)
        # The mean of the prefix states added to every action token: a direct conditioning path
        # that trains in a few hundred steps (cross-attention alone was slow to be used at all).
        self.pooled = nn.Linear(w, w)
        if cfg.anchor:   # the grounded point (Fourier features) + "has one", added like the pooled prefix
            self.anchor_in = nn.Sequential(nn.Linear(6 * len(ANCHOR_SCALES) + 1, w), nn.SiLU(), nn.Linear(w, w))
        if cfg.state:    # the hand relative to the anchor (Fourier features) + its 6D rotation + gripper opening
            self.state_in = nn.Sequential(nn.Linear(6 * len(ANCHOR_SCALES) + 7, w), nn.SiLU(), nn.Linear(w, w))
        layer = nn.TransformerDecoderLayer(w, cfg.heads, cfg.ffn_mult * w, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerDecoder(layer, cfg.layers, norm=nn.LayerNorm(w))
        self.action_out = nn.Linear(w, ACTION_DIM)
        nn.init.zeros_(self.action_out.weight)
        nn.init.zeros_(self.action_out.bias)
        self.register_buffer("mean", torch.tensor(cfg.action_mean), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.action_std), persistent=False)
        self.register_buffer("anchor_default", torch.tensor(cfg.anchor_default), persistent=False)

    def set_stats(self, mean, std) -> None:
        """Normalization from absolute training chunks. With ``anchor`` their mean position is
        the fallback anchor and the offsets are normalized around 0 with the positions' spread."""
        mean, std = [float(x) for x in mean], [max(float(x), 1e-3) for x in std]
        if self.cfg.anchor:
            self.cfg.anchor_default = mean[:3]
            mean = [0.0, 0.0, 0.0] + mean[3:]
            self.anchor_default.copy_(torch.tensor(self.cfg.anchor_default))
        self.cfg.action_mean, self.cfg.action_std = mean, std
        self.mean.copy_(torch.tensor(self.cfg.action_mean))
        self.std.copy_(torch.tensor(self.cfg.action_std))

    def resolve_anchor(self, anchor: torch.Tensor | None, B: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """((B, 3) the point positions are relative to, (B,) whether the backbone gave one):
        the backbone's anchor where finite, else ``anchor_default``; zeros when ``anchor`` is off."""
        if not self.cfg.anchor:
            return torch.zeros(B, 3, device=device), torch.zeros(B, dtype=torch.bool, device=device)
        if anchor is None:
            anchor = torch.full((B, 3), float("nan"), device=device)
        anchor = anchor.to(device).float()
        has = torch.isfinite(anchor).all(-1)
        return torch.where(has[:, None], anchor, self.anchor_default[None]), has

    def anchor_features(self, point: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
        return self.anchor_in(torch.cat([fourier(point, ANCHOR_SCALES), has.float()[:, None]], dim=-1))

    def state_features(self, state: torch.Tensor | None, point: torch.Tensor) -> torch.Tensor:
        """(B, 10) ``state_vector`` rows -> (B, w); ``point``: the resolved anchor (zeros without one)."""
        if state is None:
            raise ValueError("this expert reads the robot state (ExpertConfig.state): pass state=robot_state(...)")
        state = state.to(point.device).float()
        return self.state_in(torch.cat([fourier(state[:, :3] - point, ANCHOR_SCALES), state[:, 3:]], dim=-1))

    def _offset(self, point: torch.Tensor) -> torch.Tensor:
        """(B, 1, ACTION_DIM) raw-action offset: the anchor on the position dims."""
        return F.pad(point, (0, ACTION_DIM - 3))[:, None]

    def _tokens(self, x: torch.Tensor, t: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        temb = time_embedding(t, self.cfg.width)[:, None].expand(-1, x.shape[1], -1)
        return self.token_mlp(torch.cat([self.action_in(x), temb], dim=-1)) + self.position + pooled[:, None]

    def pool(self, memory: torch.Tensor, pad: torch.Tensor, point: torch.Tensor | None = None,
             has: torch.Tensor | None = None, state: torch.Tensor | None = None) -> torch.Tensor:
        """The conditioning added to every action token: the mean prefix state (+ the anchor,
        + the robot state)."""
        keep = (~pad).float()[..., None]
        out = self.pooled((memory * keep).sum(1) / keep.sum(1).clamp(min=1))
        if self.cfg.anchor and point is not None:
            out = out + self.anchor_features(point, has)
        if self.cfg.state:
            if point is None:
                point = torch.zeros(memory.shape[0], 3, device=memory.device)
            out = out + self.state_features(state, point)
        return out

    def velocity(self, x: torch.Tensor, t: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor,
                 point: torch.Tensor | None = None, has: torch.Tensor | None = None,
                 state: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, H, 10) normalized actions at flow time t (B,); memory (B, L, w); pad (B, L) True = ignore;
        point / has: ``resolve_anchor``'s output (with ``anchor``); state: (B, 10) ``state_vector``
        rows (with ``state``)."""
        h = self._tokens(x, t, self.pool(memory, pad, point, has, state))
        h = self.blocks(h, memory, memory_key_padding_mask=pad)
        return self.action_out(h)

    def encode_memory(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.memory(hidden.float()), ~mask.bool()

    def flow_loss(self, actions: torch.Tensor, hidden: torch.Tensor, mask: torch.Tensor,
                  valid: torch.Tensor, anchor: torch.Tensor | None = None,
                  state: torch.Tensor | None = None) -> torch.Tensor:
        """Rectified-flow regression loss of (B, H, 10) raw actions; rows with valid False count 0;
        ``anchor`` (B, 3): the backbone's grounded point (NaN rows: none); ``state`` (B, 10)."""
        B = actions.shape[0]
        point, has = self.resolve_anchor(anchor, B, actions.device)
        a = (actions - self._offset(point) - self.mean) / self.std
        # pi0's schedule: 1 - t ~ Beta(1.5, 1), weighted toward the noisy end, where the chunk
        # must come from the prefix (a logit-normal t left the expert ignoring its prefix).
        t = 1 - 0.999 * torch.distributions.Beta(1.5, 1.0).sample((B,)).to(a.device)
        noise = torch.randn_like(a)
        x = (1 - t)[:, None, None] * noise + t[:, None, None] * a
        memory, pad = self.encode_memory(hidden, mask)
        err = ((self.velocity(x, t, memory, pad, point, has, state) - (a - noise)) ** 2).mean((1, 2))
        v = valid.float()
        return (err * v).sum() / v.sum().clamp(min=1)

    # ---- inference fast path: the prefix's cross-attention keys/values once per chunk (as pi0's
    # KV cache of the prefix), then per Euler step only the H action tokens; same weights and
    # math as ``velocity`` (tested equal), without nn.MultiheadAttention's per-call overhead.
    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.cfg.heads, -1).transpose(1, 2)

    def prefix_cache(self, memory: torch.Tensor, pad: torch.Tensor, point: torch.Tensor | None = None,
                     has: torch.Tensor | None = None, state: torch.Tensor | None = None) -> dict:
        w = self.cfg.width
        out = []
        for layer in self.blocks.layers:
            a = layer.multihead_attn
            kv = F.linear(memory, a.in_proj_weight[w:], a.in_proj_bias[w:])
            out.append(tuple(self._heads(z) for z in kv.chunk(2, dim=-1)))
        # The action-token MLP's first layer on [action_in(x), time embedding], folded: one
        # (ACTION_DIM -> w) matrix for the action, the time's share added as a bias per step.
        lin0 = self.token_mlp[0]
        w_act = lin0.weight[:, :w] @ self.action_in.weight
        b0 = lin0.weight[:, :w] @ self.action_in.bias + lin0.bias
        keep = None if not bool(pad.any()) else ~pad[:, None, None, :]     # no padding (one frame): no mask
        return {"kv": out, "keep": keep, "base": self.position + self.pool(memory, pad, point, has, state)[:, None],
                "w_act": w_act, "w_time": lin0.weight[:, w:], "b0": b0}

    def time_bias(self, t: torch.Tensor, cache: dict) -> torch.Tensor:
        """The action tokens' time-dependent part, (B,) flow times -> (B, width)."""
        return F.linear(time_embedding(t, self.cfg.width), cache["w_time"], cache["b0"])

    def velocity_cached(self, x: torch.Tensor, t: torch.Tensor, cache: dict) -> torch.Tensor:
        """``velocity`` with ``prefix_cache(memory, pad, ...)``: the same math, in plain tensor
        ops (no module calls: at H = 16 tokens a step is bound by per-op overhead)."""
        return self._velocity_step(x, self.time_bias(t, cache), cache)

    def _velocity_step(self, x: torch.Tensor, bias: torch.Tensor, cache: dict) -> torch.Tensor:
        """``velocity_cached`` given its time bias (B, w) (``sample`` computes every step's at once)."""
        w, keep = self.cfg.width, cache["keep"]
        h = F.linear(F.silu(F.linear(x, cache["w_act"]) + bias[:, None]), self.token_mlp[2].weight,
                     self.token_mlp[2].bias) + cache["base"]
        B, H, _ = h.shape
        for layer, (k, v) in zip(self.blocks.layers, cache["kv"]):
            sa, ca = layer.self_attn, layer.multihead_attn
            n1, n2, n3 = layer.norm1, layer.norm2, layer.norm3
            qkv = F.linear(F.layer_norm(h, (w,), n1.weight, n1.bias, n1.eps), sa.in_proj_weight, sa.in_proj_bias)
            q, k1, v1 = qkv.view(B, H, 3, self.cfg.heads, -1).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k1, v1).transpose(1, 2).reshape(B, H, w)
            h = h + F.linear(a, sa.out_proj.weight, sa.out_proj.bias)
            q = self._heads(F.linear(F.layer_norm(h, (w,), n2.weight, n2.bias, n2.eps), ca.in_proj_weight[:w],
                                     ca.in_proj_bias[:w]))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(B, H, w)
            h = h + F.linear(a, ca.out_proj.weight, ca.out_proj.bias)
            f = F.linear(F.layer_norm(h, (w,), n3.weight, n3.bias, n3.eps), layer.linear1.weight, layer.linear1.bias)
            h = h + F.linear(F.gelu(f), layer.linear2.weight, layer.linear2.bias)
        nf = self.blocks.norm
        return F.linear(F.layer_norm(h, (w,), nf.weight, nf.bias, nf.eps), self.action_out.weight, self.action_out.bias)

    @torch.no_grad()
    def sample(self, hidden: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None,
               anchor: torch.Tensor | None = None, state: torch.Tensor | None = None) -> torch.Tensor:
        """``num_steps`` Euler steps from Gaussian noise -> (B, H, 10) raw actions."""
        B, n = hidden.shape[0], self.cfg.num_steps
        point, has = self.resolve_anchor(anchor, B, hidden.device)
        cache = self.prefix_cache(*self.encode_memory(hidden, mask), point, has, state)
        x = self.cfg.noise_scale * torch.randn(B, self.cfg.horizon, ACTION_DIM, device=hidden.device,
                                               generator=generator)
        biases = self.time_bias(torch.arange(n, device=hidden.device) / n, cache)       # (n, w): t = i / n
        x = (self.__dict__.get("_compiled_integrate") or self._integrate)(x, biases, cache)
        return x * self.std + self.mean + self._offset(point)

    def _integrate(self, x: torch.Tensor, biases: torch.Tensor, cache: dict) -> torch.Tensor:
        """The Euler steps of ``sample``: x += v(x, t_i) / n for the n rows of ``biases``."""
        n, B = biases.shape[0], x.shape[0]
        for i in range(n):
            x = x + self._velocity_step(x, biases[i].expand(B, -1), cache) / n
        return x

    def compile_integration(self, prefix_dim: int) -> None:
        """Put the Euler steps under torch.compile (``decoding.compile_step``: one graph for the
        whole integration, shapes symbolic so any prefix length and batch reuse it) and compile it
        now on zeros (``prefix_dim``: the backbone's), not at a robot's first chunk. At H = 16
        tokens a step is bound by per-op overhead, which the compiled kernels remove."""
        self.__dict__["_compiled_integrate"] = compile_step(self._integrate, self.action_out.weight.device, dynamic=True)
        dev = self.action_out.weight.device
        state = torch.zeros(1, 10, device=dev) if self.cfg.state else None
        with torch.no_grad():
            # two lengths (the graph is the symbolic one from the start), with and without padding
            for L, pad in ((7, 0), (8, 0), (8, 1)):
                mask = torch.ones(1, L, dtype=torch.bool, device=dev)
                mask[:, L - pad:] = False
                self.sample(torch.zeros(1, L, prefix_dim, device=dev), mask, state=state)
