"""Pose-VLA on a pretrained PaliGemma (transformers ``PaliGemmaForConditionalGeneration``),
loaded from a LOCAL Hugging Face directory: nothing is downloaded at run time.

    <image> x N  <bos> {instruction} \\n  |  <no_object> | category box(x1 y1 x2 y2) object-pose size waypoints... <eos>
    '----------- prefix: bidirectional ---------'  '------------ suffix: causal -------------'

- Prefix-LM attention, as PaliGemma was pretrained: ``token_type_ids`` 0 over image + prompt
  (bidirectional), 1 over the pose tokens (causal).
- 2D box centers are PaliGemma's own ``<loc0000>``..``<loc1023>`` tokens; the other pose
  tokens are added to its vocabulary BY NAME (``PoseTokenizer.token_names``), with embeddings
  initialized to the mean of the pretrained ones.
- The geometry prior of the paper: rays K^-1 [u, v, 1] and depth + valid mask, each patchified
  at the vision patch size and passed through an MLP to the vision width, ADDED to the vision
  tower's output before the projector; each dropped with p = ``prior_dropout`` in training.
- Letterbox resizing (processor), so K stays right and no side of a 4:3 image is lost.
- Grammar-constrained greedy decoding with PaliGemma's KV cache (decoding.py, shared with
  the small model).

A checkpoint is self-contained: config.json (``architecture: paligemma``, our VLMConfig,
the backbone's HF config), model.safetensors (all weights, LoRA layers included),
tokenizer/ (the HF tokenizer with the pose tokens) and pose_vocab.json.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from posevla_core.config import PALIGEMMA_LOC_TOKENS, VLMConfig
from posevla_core.tokens.decoding import (cache_kwargs, check_decoding, compile_step, constrained_greedy, first_step_prob, grammar_bias, no_object_floor, returned_cache, static_greedy)
from posevla_core.policies.geometry_prior import RayDepthPrior, depth_map, ray_map
from posevla_core.image import check_frame, letterbox, unletterbox_uv
from posevla_core.policies.base import (CONFIG_FILE, PosePolicy, eval_mode, prediction_from_tokens, resolve_device)
from posevla_core.tokens.grammar import BOS, EOS, NO_OBJECT, PAD, PoseTokenizer, grammar_of
from posevla_core.poses import PoseTarget, Prediction

IGNORE = -100
WEIGHTS_FILE, VOCAB_FILE, TOKENIZER_DIR = "model.safetensors", "pose_vocab.json", "tokenizer"
SEPARATOR = "\n"          # ends PaliGemma's prompt


def loc_token(i: int) -> str:
    return f"<loc{i:04d}>"


def new_token_names(pose: PoseTokenizer) -> list[str]:
    """Names of the pose tokens added to the VLM vocabulary: everything but the special
    tokens (PaliGemma's own pad/bos/eos) and the box bins (its own <loc> tokens)."""
    names = pose.token_names()
    box = pose.blocks["box"]
    return [n for i, n in enumerate(names) if i > EOS and not box.start <= i < box.stop]


def pose_id_map(pose: PoseTokenizer, text_tokenizer) -> torch.Tensor:
    """(pose vocab,) the VLM vocabulary id of every pose token, looked up by name."""
    names = pose.token_names()
    box = pose.blocks["box"]
    ids = []
    for i, name in enumerate(names):
        if i == PAD:
            ids.append(text_tokenizer.pad_token_id)
        elif i == BOS:
            ids.append(text_tokenizer.bos_token_id)
        elif i == EOS:
            ids.append(text_tokenizer.eos_token_id)
        else:
            tok = loc_token(i - box.start) if box.start <= i < box.stop else name
            tid = text_tokenizer.convert_tokens_to_ids(tok)
            if tid is None or tid == text_tokenizer.unk_token_id:
                raise ValueError(f"the VLM tokenizer has no token {tok!r}; a base PaliGemma directory needs "
                                 f"{PALIGEMMA_LOC_TOKENS} <loc> tokens, a Pose-VLA checkpoint also its pose tokens")
            ids.append(tid)
    if any(i is None for i in ids[:3]):
        raise ValueError("the VLM tokenizer needs pad, bos and eos tokens")
    return torch.tensor(ids, dtype=torch.long)


def add_pose_tokens(vlm, text_tokenizer, pose: PoseTokenizer) -> int:
    """Add the pose tokens by name and initialize their embedding rows (input and output) to
    the mean of the pretrained rows. Returns the first new id (rows below it are pretrained)."""
    from tokenizers import AddedToken

    first = len(text_tokenizer)
    text_tokenizer.add_tokens([AddedToken(n, normalized=False, special=True) for n in new_token_names(pose)])
    rows = vlm.get_input_embeddings().weight.shape[0]
    vlm.resize_token_embeddings(max(rows, len(text_tokenizer)), mean_resizing=False)
    with torch.no_grad():
        for emb in {id(m.weight): m.weight for m in (vlm.get_input_embeddings(), vlm.get_output_embeddings())}.values():
            emb[first:len(text_tokenizer)] = emb[:first].float().mean(0).to(emb.dtype)
    return first


def tied_names(module: torch.nn.Module) -> dict[str, str]:
    """{name: the name it repeats} of the tensors that repeat another one (the tied lm_head and
    embeddings): the first name of each group in sorted order is the one kept, as safetensors
    chooses. Found by object identity, not by storage, so it also holds on a sharded (FSDP)
    module whose full storage is not local."""
    groups: dict[int, list[str]] = {}
    for n, t in (*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)):
        groups.setdefault(id(t), []).append(n)
    return {n: sorted(g)[0] for g in groups.values() for n in sorted(g)[1:]}


class VLMProcessor:
    """Camera frame (+ target) -> a numpy example; examples -> a left-padded batch."""

    def __init__(self, cfg: VLMConfig, pose: PoseTokenizer, text_tokenizer, image_size: int, num_image_tokens: int,
                 image_token_id: int) -> None:
        self.cfg, self.pose, self.text_tokenizer = cfg, pose, text_tokenizer
        self.image_size, self.num_image_tokens, self.image_token_id = image_size, num_image_tokens, image_token_id
        self.sep_id = text_tokenizer.convert_tokens_to_ids(SEPARATOR)
        if self.sep_id is None or self.sep_id == text_tokenizer.unk_token_id:
            raise ValueError("the VLM tokenizer has no '\\n' token (PaliGemma's prompt separator)")

    def prompt_ids(self, instruction: str, cameras: int = 1) -> list[int]:
        """PaliGemma's prompt format: <image> x N per camera, <bos>, the prompt text, '\\n'."""
        text = self.text_tokenizer(self.cfg.prompt.format(instruction=instruction), add_special_tokens=False).input_ids
        return ([self.image_token_id] * self.num_image_tokens * cameras + [self.text_tokenizer.bos_token_id]
                + list(text[: self.cfg.max_prompt_tokens]) + [self.sep_id])

    def camera(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray,
               rng: np.random.Generator | None = None) -> dict:
        """One camera's model inputs: letterboxed image, its ray and depth maps (each with its own
        prior), and the letterbox transform. ``rng`` (training): drop each prior with p = prior_dropout."""
        K = check_frame(rgb, depth, K)
        H, W = rgb.shape[:2]
        S = self.image_size
        img, d, K2, tf = letterbox(rgb, depth, K, S)
        use_rays, use_depth = True, depth is not None
        if rng is not None:
            use_rays = bool(rng.random() >= self.cfg.prior_dropout)
            use_depth = use_depth and bool(rng.random() >= self.cfg.prior_dropout)
        return {"pixel_values": np.ascontiguousarray(img.transpose(2, 0, 1)), "rays": ray_map(K2, S, S),
                "depth": depth_map(d if use_depth else None, S, S), "use_rays": np.bool_(use_rays),
                "use_depth": np.bool_(use_depth), "letterbox": np.array([*tf, W, H], np.float64)}

    def make_example(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str,
                     target: PoseTarget | None = None, rng: np.random.Generator | None = None,
                     views: list[dict] | None = None) -> dict:
        """The first camera (rgb, depth, K) is the one whose frame the pose tokens are in; ``views``
        are more cameras (e.g. a wrist camera: dicts with rgb, depth, K), each with its own
        prior, their image tokens after the first camera's. Image arrays get a camera axis."""
        if 1 + len(views or []) > self.cfg.max_cameras:
            raise ValueError(f"{1 + len(views or [])} cameras, but this model takes at most "
                             f"{self.cfg.max_cameras} (VLMConfig.max_cameras)")
        cams = [self.camera(rgb, depth, K, rng)] + [self.camera(v["rgb"], v.get("depth"), v["K"], rng)
                                                    for v in views or []]
        ex = {k: np.stack([c[k] for c in cams]) for k in ("pixel_values", "rays", "depth", "use_rays", "use_depth")}
        ex["letterbox"] = cams[0]["letterbox"]
        ex["input_ids"] = np.array(self.prompt_ids(instruction, len(cams)), np.int64)
        ex["grammar"] = np.int64(grammar_of(instruction))
        H, W = rgb.shape[:2]
        S = self.image_size
        if target is not None:
            sx, sy, x0, y0 = ex["letterbox"][:4]
            t2 = target.map_image(lambda uv: ((uv[0] * W * sx + x0) / S, (uv[1] * H * sy + y0) / S))
            ids, clipped = self.pose.encode(t2)
            labels = np.full(self.pose.seq_len, IGNORE, np.int64)
            labels[: len(ids)] = ids
            ex["labels"], ex["clipped"] = labels, clipped
        return ex

    def collate(self, examples: list[dict]) -> dict:
        """Prompts are LEFT-padded (so every row's last prefix token is the '\\n' the first pose
        token is predicted from); positions count real tokens only."""
        P = max(len(e["input_ids"]) for e in examples)
        ids = np.full((len(examples), P), self.text_tokenizer.pad_token_id, np.int64)
        mask = np.zeros((len(examples), P), np.int64)
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[i, P - n:], mask[i, P - n:] = e["input_ids"], 1
        out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        for k in ("pixel_values", "rays", "depth", "use_rays", "use_depth", "letterbox", "grammar", "labels"):
            if k in examples[0]:
                out[k] = torch.from_numpy(np.stack([e[k] for e in examples]))
        return out


class PaliGemmaPoseVLA(PosePolicy):
    architecture = "paligemma"

    def __init__(self, cfg: VLMConfig, vlm, text_tokenizer) -> None:
        """``vlm`` must already hold the pose tokens (``from_base`` adds them); no I/O here."""
        super().__init__()
        self.cfg, self.vlm, self.text_tokenizer = cfg, vlm, text_tokenizer
        self.max_cameras = cfg.max_cameras
        self.tokenizer = PoseTokenizer(cfg.tokens)
        vc = vlm.config.vision_config
        size, patch = int(vc.image_size), int(vc.patch_size)
        id_map = pose_id_map(self.tokenizer, text_tokenizer)
        V = vlm.get_output_embeddings().weight.shape[0]
        if int(id_map.max()) >= V:
            raise ValueError(f"pose token id {int(id_map.max())} is outside the VLM's {V} embedding rows")
        inverse = torch.full((V,), -1, dtype=torch.long)
        inverse[id_map] = torch.arange(len(id_map))
        self.register_buffer("id_map", id_map, persistent=False)
        self.register_buffer("vocab_to_pose", inverse, persistent=False)
        self.register_buffer("step_bias", grammar_bias(self.tokenizer, V, id_map), persistent=False)
        self.prior = RayDepthPrior(patch, vc.hidden_size, cfg.prior_hidden_mult * vc.hidden_size)
        self.processor = VLMProcessor(cfg, self.tokenizer, text_tokenizer, size, (size // patch) ** 2,
                                      vlm.config.image_token_id)
        self._configure_training()

    # ---- what trains ---------------------------------------------------------------------------
    def _configure_training(self) -> None:
        """LoRA (peft) on the language model, frozen vision tower, gradient checkpointing."""
        lm = self.vlm.model.language_model
        if self.cfg.lora_rank > 0:
            try:
                from peft import LoraConfig, inject_adapter_in_model
            except ImportError as e:
                raise ImportError("VLMConfig.lora_rank > 0 needs peft (pip install peft); or set lora_rank 0 "
                                  "for full fine-tuning") from e
            inject_adapter_in_model(LoraConfig(r=self.cfg.lora_rank, lora_alpha=self.cfg.lora_alpha,
                                               lora_dropout=self.cfg.lora_dropout,
                                               target_modules=list(self.cfg.lora_targets)), lm)
            for n, p in lm.named_parameters():
                p.requires_grad = "lora_" in n
            # The new pose-token rows must learn; the pretrained rows stay as they are (their
            # gradient is zeroed, and embeddings are excluded from weight decay).
            emb = self.vlm.get_input_embeddings().weight
            emb.requires_grad = True
            keep = self._learning_rows(emb.shape[0], emb.dtype, emb.device)
            emb.register_hook(lambda g, keep=keep: g * keep.to(g.device, g.dtype))
        if self.cfg.freeze_vision:
            for p in self.vlm.model.vision_tower.parameters():
                p.requires_grad = False
        if self.cfg.gradient_checkpointing:
            if hasattr(self.vlm, "activation_checkpointing_enable"):       # transformers >= 5.23
                self.vlm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:                                                          # 5.20.2 (Python 3.10)
                self.vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def _learning_rows(self, rows: int, dtype, device) -> torch.Tensor:
        """(rows, 1): 1 on the new pose-token embedding rows, 0 on the pretrained ones (<loc> too)."""
        keep = torch.zeros(rows, 1, dtype=dtype, device=device)
        keep[self.id_map[EOS + 1:]] = 1
        keep[self.id_map[self.tokenizer.blocks["box"].start:self.tokenizer.blocks["box"].stop]] = 0
        return keep

    def mask_frozen_grads(self) -> None:
        """Under LoRA, zero the gradient of the pretrained embedding rows. On a plain module the
        tensor hook of ``_configure_training`` does it during backward; FSDP replaces the
        parameters with sharded ones that do not carry the hook, so the trainer calls this after
        backward (a sharded gradient is masked shard by shard, no communication)."""
        if self.cfg.lora_rank <= 0:
            return
        g = self.get_input_embeddings().weight.grad
        if g is None:
            return
        keep = self._learning_rows(g.shape[0], g.dtype, g.device)
        from torch.distributed.tensor import DTensor, distribute_tensor

        if isinstance(g, DTensor):
            keep = distribute_tensor(keep, g.device_mesh, g.placements, src_data_rank=None)
        g.mul_(keep)

    def no_decay(self, name: str) -> bool:
        return "embed_tokens" in name or "lm_head" in name

    # The backbone's embeddings and their tie, as on a transformers model: accelerate's FSDP2 puts
    # the tied embeddings / lm_head in one unit and re-ties them after moving the model to `meta`
    # and loading the gathered weights (without them lm_head and the embeddings come apart).
    def get_input_embeddings(self) -> torch.nn.Module:
        return self.vlm.get_input_embeddings()

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.vlm.get_output_embeddings()

    def tie_weights(self) -> None:
        self.vlm.tie_weights()

    @property
    def _no_split_modules(self) -> list[str]:
        """The transformer block classes this backbone holds (Gemma or Gemma2 decoder layers, SigLIP
        encoder layers): accelerate's TRANSFORMER_BASED_WRAP makes each block its own FSDP unit
        when the launch config names no classes (a named class the model lacks is an error)."""
        return sorted({type(m).__name__ for name, m in self.vlm.named_modules()
                       if name.rpartition(".")[2].isdigit() and name.rpartition(".")[0].endswith("layers")})

    # ---- the network --------------------------------------------------------------------------
    def image_features(self, batch: dict) -> torch.Tensor:
        """Vision tower -> + ray/depth prior (vision width) -> projector, per camera:
        (B, cameras * N, LM width), cameras in prompt order."""
        dev = self.device
        vt = self.vlm.model.vision_tower
        dtype = next(vt.parameters()).dtype
        B = batch["pixel_values"].shape[0]

        def flat(k: str, dt=None) -> torch.Tensor:          # (B, cameras, ...) -> (B * cameras, ...)
            return batch[k].to(dev).flatten(0, 1).to(dt or batch[k].dtype)

        pix = flat("pixel_values", torch.float32).div(127.5).sub(1.0).to(dtype)   # SigLIP: [-1, 1]
        feats = vt(pixel_values=pix).last_hidden_state
        if self.cfg.use_prior:
            pd = self.prior.rays.mlp[0].weight.dtype
            geo = self.prior(flat("rays", pd), flat("depth", pd), flat("use_rays"), flat("use_depth"))
            feats = feats + geo.to(feats.dtype)
        proj = self.vlm.model.multi_modal_projector(feats)
        return proj.reshape(B, -1, proj.shape[-1])

    def _lm(self, ids, mask, token_type, image=None, cache=None, use_cache=False, logits_to_keep=0, **kw):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        mm = {"image": BaseModelOutputWithPooling(pooler_output=image)} if image is not None else None
        past = cache.get_seq_length() if cache is not None else 0
        pos = mask.cumsum(-1).clamp(min=1)[:, past:]                 # PaliGemma positions are 1-based
        return self.vlm(input_ids=ids, attention_mask=mask, token_type_ids=token_type, position_ids=pos,
                        mm_encoder_outputs=mm, use_cache=use_cache, logits_to_keep=logits_to_keep,
                        **cache_kwargs(self.vlm, cache), **kw)

    PREFIX_LAYERS = (0.0, 0.5, 1.0)      # embeddings, middle and last layer (as fractions of depth)

    @property
    def prefix_dim(self) -> int:
        return int(self.vlm.config.text_config.hidden_size) * len(self.PREFIX_LAYERS)

    def prefix_features(self, batch: dict, with_extras: bool = False):
        """Gemma's states over the prefix (image tokens + prompt, bidirectional) at the embeddings,
        the middle and the last layer, concatenated (see PoseVLA.prefix_features: the last
        layer's prefix states alone are not what the pose tokens read)."""
        dev = self.device
        ids, mask = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
        out = self._lm(ids, mask, torch.zeros_like(ids), image=self.image_features(batch), logits_to_keep=1,
                       output_hidden_states=True)
        hs = out.hidden_states
        hidden = torch.cat([hs[round(f * (len(hs) - 1))] for f in self.PREFIX_LAYERS], dim=-1)
        if with_extras:      # no pointer: the expert falls back to its default anchor
            p_absent = first_step_prob(out.logits[:, -1], self.step_bias, batch["grammar"].to(dev),
                                       int(self.id_map[NO_OBJECT]))
            return hidden, mask.bool(), {"anchor": self.no_anchor(ids.shape[0], dev), "p_absent": p_absent}
        return hidden, mask.bool()

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Teacher-forced cross-entropy on the pose tokens, inside each grammar step's block."""
        dev = self.device
        prefix, pmask = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
        labels = batch["labels"].to(dev)
        B, S = labels.shape
        suffix = self.id_map[labels[:, :-1].clamp(min=0)]
        ids = torch.cat([prefix, suffix], 1)
        mask = torch.cat([pmask, torch.ones_like(suffix)], 1)
        tt = torch.cat([torch.zeros_like(prefix), torch.ones_like(suffix)], 1)
        out = self._lm(ids, mask, tt, image=self.image_features(batch), logits_to_keep=S)
        logits = out.logits.float() + self.step_bias[batch["grammar"].to(dev)][:, :S]
        sup = labels != IGNORE
        tgt = torch.where(sup, self.id_map[labels.clamp(min=0)], IGNORE)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=IGNORE)
        with torch.no_grad():
            acc = ((logits.argmax(-1) == tgt) & sup).sum() / sup.sum().clamp(min=1)
        return loss, {"loss": float(loss.detach()), "token_loss": float(loss.detach()), "token_acc": float(acc)}

    #: how ``predict_batch`` decodes when not told: "eager" (a growing KV cache), "static"
    #: (transformers' StaticCache, preallocated, one fixed-shape forward per token) or
    #: "static-compile" (that forward under torch.compile: CUDA graphs on CUDA)
    decoding: str = "eager"

    def static_cache(self, batch: int, compile: bool = False) -> dict:
        """A preallocated transformers StaticCache for ``batch`` rows, the longest prompt
        (``max_cameras`` cameras' image tokens, <bos>, ``max_prompt_tokens``, '\n') + the pose
        tokens fed back, and its decode step (compiled when asked), made on first use and kept:
        a CUDA graph replays on the same buffers. Full-attention backbones (PaliGemma) only."""
        import threading

        from transformers import StaticCache

        text = self.vlm.config.get_text_config()
        if getattr(text, "sliding_window", None) is not None:
            raise ValueError("static decoding supports full-attention backbones (PaliGemma); this one has sliding "
                             "window layers: use decoding='eager'")
        dtype, dev = self.vlm.get_input_embeddings().weight.dtype, self.device
        key = (batch, dtype, dev, compile)
        caches = self.__dict__.setdefault("_static_caches", {})
        if key not in caches:
            if len(caches) >= 4:
                caches.clear()
            longest = self.processor.num_image_tokens * self.max_cameras + self.cfg.max_prompt_tokens + 2
            cache = StaticCache(config=self.vlm.config, max_cache_len=longest + self.tokenizer.seq_len - 1)
            if not all(hasattr(layer, "cumulative_length") for layer in cache.layers):
                raise ValueError("static decoding needs transformers' StaticCache of 5.24 or newer; use "
                                 "decoding='eager'")

            def step(ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
                return self.vlm(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                                logits_to_keep=1, **cache_kwargs(self.vlm, cache)).logits[:, -1]

            if compile:
                step = compile_step(step, dev, fullgraph=False)
            caches[key] = {"cache": cache, "step": step, "lock": threading.Lock(),
                           "length": longest + self.tokenizer.seq_len - 1}
        return caches[key]

    def _static_decode(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor, compile: bool, **kw):
        """``constrained_greedy``'s answer on a ``static_cache``: the eager prefill (its keys and
        values copied into the preallocated cache, so step 0 is the eager one bit for bit), then one
        fixed-shape forward per token (``decoding.static_greedy``)."""
        B, P = ids.shape
        S = self.tokenizer.seq_len
        st = self.static_cache(B, compile)
        if P + S - 1 > st["length"]:
            raise ValueError(f"a {P}-token prompt + {S} pose tokens do not fit the static cache of {st['length']}")
        with st["lock"]:
            out = self._lm(ids, mask, torch.zeros_like(ids), image=image, use_cache=True, logits_to_keep=1)
            cache = st["cache"]
            for layer, new in zip(cache.layers, returned_cache(out).layers):
                if not layer.is_initialized:
                    layer.lazy_initialization(new.keys, new.values)
                layer.keys[:, :, :P].copy_(new.keys)
                layer.values[:, :, :P].copy_(new.values)
                layer.cumulative_length.fill_(P)
            # every pose token is a real one: the prompt's padding mask, then ones (the causal mask
            # hides the slots not written yet); token s sits at 1-based position (real prompt tokens + s)
            full = torch.cat([mask, mask.new_ones(B, st["length"] - P)], dim=1)
            pos = mask.sum(-1, keepdim=True) + torch.arange(1, S, device=ids.device)[None]
            return static_greedy(lambda prev, s: st["step"](prev[:, None], full, pos[:, s - 1:s]),
                                 out.logits[:, -1], **kw)

    @torch.no_grad()
    def predict_batch(self, items: list[dict], use_cache: bool = True, constrained: bool = True,
                      decoding: str | None = None) -> list[Prediction]:
        """``decoding``: see ``PaliGemmaPoseVLA.decoding`` (None: that attribute; "eager" without the cache)."""
        mode = decoding or (self.decoding if use_cache else "eager")
        static = check_decoding(mode, use_cache)
        with eval_mode(self):
            t0 = time.perf_counter()
            batch = self.processor.collate([self.processor.make_example(it["rgb"], it.get("depth"), it["K"],
                                                                        it["instruction"], views=it.get("views"))
                                            for it in items])
            dev = self.device
            t1 = time.perf_counter()
            image = self.image_features(batch)
            st = {"ids": batch["input_ids"].to(dev), "mask": batch["attention_mask"].to(dev), "cache": None}
            st["tt"] = torch.zeros_like(st["ids"])
            B = st["ids"].shape[0]

            def step(prev):
                if prev is not None:
                    one = torch.ones(B, 1, dtype=st["mask"].dtype, device=dev)
                    st["ids"], st["mask"] = torch.cat([st["ids"], prev[:, None]], 1), torch.cat([st["mask"], one], 1)
                    st["tt"] = torch.cat([st["tt"], one], 1)
                if not use_cache:
                    return self._lm(st["ids"], st["mask"], st["tt"], image=image, logits_to_keep=1).logits[:, -1]
                if st["cache"] is None:
                    out = self._lm(st["ids"], st["mask"], st["tt"], image=image, use_cache=True, logits_to_keep=1)
                else:
                    out = self._lm(st["ids"][:, -1:], st["mask"], st["tt"][:, -1:], cache=st["cache"], use_cache=True,
                                   logits_to_keep=1)
                st["cache"] = returned_cache(out)
                return out.logits[:, -1]

            grammar = batch["grammar"].to(dev)
            kw = dict(constrained=constrained, stop_ids=(int(self.id_map[NO_OBJECT]), int(self.id_map[EOS])),
                      first_floor=(int(self.id_map[NO_OBJECT]), no_object_floor(grammar, self.cfg.no_object_threshold)),
                      return_first_prob=True)
            if static:
                ids, p_absent = self._static_decode(st["ids"], st["mask"], image, mode == "static-compile",
                                                    step_bias=self.step_bias[grammar], **kw)
            else:
                ids, p_absent = constrained_greedy(step, B, self.step_bias[grammar], dev, **kw)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
        preds = []
        for i, row in enumerate(self.vocab_to_pose[ids].tolist()):
            lb = batch["letterbox"][i].tolist()
            timings = {"preprocess": (t1 - t0) * 1e3, "decode": (t2 - t1) * 1e3, "total": (t2 - t0) * 1e3,
                       "tokens": float(len(row))}
            pred = prediction_from_tokens(
                self.tokenizer, row, lambda uv, lb=lb: unletterbox_uv(uv, lb[:4], lb[4], lb[5], self.processor.image_size),
                self.cfg.tokens.waypoint_dt, timings, int(grammar[i]))
            pred.score = 1.0 - float(p_absent[i])
            preds.append(pred)
        return preds

    # ---- checkpoints ------------------------------------------------------------------------
    @staticmethod
    def config_from(overrides: dict) -> VLMConfig:
        """The default config with ``overrides`` (TrainConfig.model) applied."""
        return VLMConfig.from_dict({**VLMConfig().to_dict(), **overrides})

    @classmethod
    def build(cls, overrides: dict, base: str | None = None) -> "PaliGemmaPoseVLA":
        """A new model to train: PaliGemma from the local directory ``base`` + the pose tokens."""
        if not base:
            raise ValueError("--model paligemma needs --base /path/to/a/local/paligemma directory (see docs/vlm.md)")
        return cls.from_base(base, cls.config_from(overrides))

    @classmethod
    def from_base(cls, base_dir: str | Path, cfg: VLMConfig | None = None, device: str | torch.device = "cpu",
                  dtype: torch.dtype | None = None) -> "PaliGemmaPoseVLA":
        """A new Pose-VLA from a pretrained PaliGemma directory (weights + tokenizer)."""
        from transformers import AutoTokenizer, PaliGemmaForConditionalGeneration

        base = Path(base_dir)
        if not base.is_dir():
            raise FileNotFoundError(f"no PaliGemma directory at {base} (weights are never downloaded at run time; "
                                    f"see docs/vlm.md)")
        cfg = cfg or VLMConfig()
        vlm = PaliGemmaForConditionalGeneration.from_pretrained(str(base), local_files_only=True, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
        return cls.from_vlm(vlm, tok, cfg).to(resolve_device(device))

    @classmethod
    def from_vlm(cls, vlm, text_tokenizer, cfg: VLMConfig | None = None) -> "PaliGemmaPoseVLA":
        """A new Pose-VLA around an in-memory PaliGemma and its tokenizer (adds the pose tokens)."""
        cfg = cfg or VLMConfig()
        add_pose_tokens(vlm, text_tokenizer, PoseTokenizer(cfg.tokens))
        return cls(cfg, vlm, text_tokenizer)

    def save_pretrained(self, directory: str | Path, extra: dict | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """``state_dict``: write this instead of the module's own (a trainer's gathered FSDP state)."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"architecture": self.architecture, "posevla": self.cfg.to_dict(), "backbone": self.vlm.config.to_dict()}
        (out / CONFIG_FILE).write_text(json.dumps({**meta, **(extra or {})}, indent=2, default=str))
        tied = tied_names(self)                                  # lm_head = embeddings, stored once
        state = {k: v.detach().cpu().contiguous() for k, v in (state_dict or self.state_dict()).items()
                 if k not in tied}
        save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt", "posevla_format": str(self.cfg.format_version)})
        self.text_tokenizer.save_pretrained(str(out / TOKENIZER_DIR))
        (out / VOCAB_FILE).write_text(json.dumps(self.tokenizer.token_names()))
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "auto") -> "PaliGemmaPoseVLA":
        from safetensors.torch import load_model
        from transformers import AutoTokenizer, PaliGemmaConfig, PaliGemmaForConditionalGeneration

        d = Path(directory)
        for f in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR):
            if not (d / f).exists():
                raise FileNotFoundError(f"PaliGemma Pose-VLA checkpoint {d} has no {f}")
        meta = json.loads((d / CONFIG_FILE).read_text())
        cfg = VLMConfig.from_dict(meta["posevla"])
        from transformers.initialization import no_init_weights

        with no_init_weights():      # every weight comes from the file: skip 3B random inits
            vlm = PaliGemmaForConditionalGeneration(PaliGemmaConfig.from_dict(meta["backbone"]))
        vlm.tie_weights()            # lm_head = embeddings, stored once in the file
        tok = AutoTokenizer.from_pretrained(str(d / TOKENIZER_DIR), local_files_only=True)
        model = cls(cfg, vlm, tok)
        missing, unexpected = load_model(model, str(d / WEIGHTS_FILE), strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint {d} does not match its config: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
        if json.loads((d / VOCAB_FILE).read_text()) != model.tokenizer.token_names():
            raise ValueError(f"{d / VOCAB_FILE} does not match the tokenizer built from {d / CONFIG_FILE}")
        return model.to(resolve_device(device)).eval()
