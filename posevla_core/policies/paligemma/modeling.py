"""Pose-VLA on a pretrained PaliGemma (transformers ``PaliGemmaForConditionalGeneration``),
loaded from a LOCAL Hugging Face directory: nothing is downloaded at run time.

    <image> x N  <bos> {instruction} \\n  |  <no_object> | category box(x1 y1 x2 y2) object-pose size waypoints... <eos>
    '----------- prefix: bidirectional ---------'  '------------ suffix: causal -------------'

- Prefix-LM attention, as PaliGemma was pretrained: ``token_type_ids`` 0 over image + prompt
  (bidirectional), 1 over the pose tokens (causal).
- The pose tokens in PaliGemma's vocabulary, the prompt and the letterboxed images: processor.py.
- The geometry prior of the paper: rays K^-1 [u, v, 1] and depth + valid mask, each patchified
  at the vision patch size and passed through an MLP to the vision width, ADDED to the vision
  tower's output before the projector; each dropped with p = ``prior_dropout`` in training.
- Grammar-constrained greedy decoding with PaliGemma's KV cache (tokens/decoding.py, shared with
  the small model).

A checkpoint is self-contained: config.json (``architecture: paligemma``, our VLMConfig,
the backbone's HF config), model.safetensors (all weights, LoRA layers included; the tied
lm_head stored once), tokenizer/ (the HF tokenizer with the pose tokens) and pose_vocab.json.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch
import torch.nn.functional as F

from posevla_core.image import unletterbox_uv
from posevla_core.policies.base import IGNORE, VOCAB_FILE, PosePolicy, StageTimer, prediction_from_tokens, resolve_device
from posevla_core.policies.geometry_prior import RayDepthPrior
from posevla_core.policies.paligemma.configuration import VLMConfig
from posevla_core.policies.paligemma.processor import VLMProcessor, add_pose_tokens, pose_id_map
from posevla_core.poses import Prediction
from posevla_core.tokens.decoding import (cache_kwargs, check_decoding, compile_step, constrained_greedy, first_step_prob,
                                          grammar_bias, returned_cache, static_greedy)
from posevla_core.tokens.grammar import EOS, NO_OBJECT, PoseTokenizer

TOKENIZER_DIR = "tokenizer"        # the text tokenizer (with the pose tokens) in a checkpoint


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
                # peft: optional, only LoRA fine-tuning needs it
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
        from torch.distributed.tensor import DTensor, distribute_tensor   # torch.distributed: FSDP training only

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
        from transformers.modeling_outputs import BaseModelOutputWithPooling   # transformers: slow to import

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
        from transformers import StaticCache   # transformers: slow to import

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

    def example_options(self, item: dict) -> dict:
        return {"views": item.get("views")}

    def infer(self, batch: dict, items: list[dict], timer: StageTimer, use_cache: bool = True,
              constrained: bool = True, decoding: str | None = None) -> dict:
        """Grammar-constrained greedy decoding of the pose tokens, the refusal floor on the first
        step. ``decoding``: see ``PaliGemmaPoseVLA.decoding`` (None: that attribute; "eager"
        without the cache)."""
        mode = decoding or (self.decoding if use_cache else "eager")
        static = check_decoding(mode, use_cache)
        dev = self.device
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
                  first_floor=(int(self.id_map[NO_OBJECT]), self.refusal_floor(grammar)), return_first_prob=True)
        if static:
            ids, p_absent = self._static_decode(st["ids"], st["mask"], image, mode == "static-compile",
                                                step_bias=self.step_bias[grammar], **kw)
        else:
            ids, p_absent = constrained_greedy(step, B, self.step_bias[grammar], dev, **kw)
        return {"ids": self.vocab_to_pose[ids].tolist(), "scores": self.refusal_score(p_absent, grammar)}

    def prediction(self, out: dict, i: int, batch: dict, timings: dict) -> Prediction:
        row, lb = out["ids"][i], batch["letterbox"][i].tolist()
        timings["tokens"] = float(len(row))
        pred = prediction_from_tokens(
            self.tokenizer, row, lambda uv: unletterbox_uv(uv, lb[:4], lb[4], lb[5], self.processor.image_size),
            self.cfg.tokens.waypoint_dt, timings, int(batch["grammar"][i]))
        pred.score = out["scores"][i]
        return pred

    # ---- checkpoints: config.json, model.safetensors, pose_vocab.json (PosePolicy) + tokenizer/ -----
    required_files = (TOKENIZER_DIR, VOCAB_FILE)

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
        from transformers import AutoTokenizer, PaliGemmaForConditionalGeneration   # transformers: slow to import

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

    def checkpoint_meta(self) -> dict:
        return {**super().checkpoint_meta(), "backbone": self.vlm.config.to_dict()}

    def save_extra_files(self, directory: Path) -> None:
        self.text_tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))

    @classmethod
    def from_meta(cls, directory: Path, meta: dict) -> "PaliGemmaPoseVLA":
        """PaliGemma of the saved backbone config, uninitialized (every weight comes from the file),
        its lm_head tied to the embeddings (stored once), and the checkpoint's tokenizer."""
        # transformers: slow to import
        from transformers import AutoTokenizer, PaliGemmaConfig, PaliGemmaForConditionalGeneration
        from transformers.initialization import no_init_weights

        with no_init_weights():      # skip 3B random inits
            vlm = PaliGemmaForConditionalGeneration(PaliGemmaConfig.from_dict(meta["backbone"]))
        vlm.tie_weights()
        tok = AutoTokenizer.from_pretrained(str(directory / TOKENIZER_DIR), local_files_only=True)
        return cls(VLMConfig.from_dict(meta["posevla"]), vlm, tok)
