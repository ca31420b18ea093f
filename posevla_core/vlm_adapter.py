"""Pose-VLA on a real pretrained VLM (PaliGemma), loaded from a local directory.

The small CPU model in model.py is for the sim demo; a lab with a GPU and PaliGemma weights
uses this adapter instead. The recipe is the same: the VLM's image embeddings get the
geometry prior ADDED per patch, the instruction goes through the VLM's own tokenizer, and
pose tokens are appended to its vocabulary (ids >= ``pose_offset``), so the pretrained
language model predicts them by ordinary next-token prediction. Decoding reuses
decoding.greedy_decode with the grammar mask shifted by ``pose_offset``.

Nothing is downloaded: ``from_local(path)`` uses ``local_files_only=True``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posevla_core.config import GeometryConfig, TokenizerConfig
from posevla_core.decoding import greedy_decode
from posevla_core.geometry import GeometryPrior, patch_points
from posevla_core.image import center_square_crop, resize_with_intrinsics
from posevla_core.tokens import BOS, PoseTokenizer
from posevla_core.types import Prediction


class PaliGemmaPoseAdapter(nn.Module):
    def __init__(self, vlm, text_tokenizer, tokens: TokenizerConfig | None = None,
                 geometry: GeometryConfig | None = None) -> None:
        super().__init__()
        self.vlm, self.text_tokenizer = vlm, text_tokenizer
        self.pose = PoseTokenizer(tokens or TokenizerConfig())
        vc = vlm.config.vision_config
        self.image_size, self.patch = int(vc.image_size), int(vc.patch_size)
        self.num_patches = (self.image_size // self.patch) ** 2
        d = vlm.config.text_config.hidden_size
        self.geometry_cfg = geometry or GeometryConfig()
        self.geometry = GeometryPrior(self.geometry_cfg, d)
        # Pose tokens extend the vocabulary after the VLM's own tokens.
        self.pose_offset = vlm.get_input_embeddings().weight.shape[0]
        vlm.resize_token_embeddings(self.pose_offset + self.pose.vocab_size, mean_resizing=False)
        bias = torch.full((self.pose.seq_len, self.pose_offset + self.pose.vocab_size), float("-inf"))
        for s in range(self.pose.seq_len):
            lo, hi = self.pose.allowed_range(s)
            bias[s, self.pose_offset + lo:self.pose_offset + hi] = 0.0
        self.register_buffer("step_bias", bias, persistent=False)

    @classmethod
    def from_local(cls, path: str | Path, **kw) -> "PaliGemmaPoseAdapter":
        from transformers import AutoTokenizer, PaliGemmaForConditionalGeneration

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no VLM directory at {path} (weights are never downloaded at run time)")
        vlm = PaliGemmaForConditionalGeneration.from_pretrained(str(path), local_files_only=True)
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        return cls(vlm, tok, **kw)

    @property
    def device(self) -> torch.device:
        return self.geometry.no_depth.device

    def _prefix(self, rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, instruction: str):
        rgb_c, depth_c, K_c = center_square_crop(rgb, depth, K)
        rgb_r, depth_r, K_r = resize_with_intrinsics(rgb_c, depth_c, K_c, self.image_size)
        pix = torch.from_numpy(rgb_r).permute(2, 0, 1)[None].float().div(127.5).sub(1.0).to(self.device)
        img = self.vlm.get_image_features(pix).pooler_output               # (1, N, d), projected
        xyz, valid = patch_points(depth_r, K_r, self.patch, self.geometry_cfg.min_valid_fraction)
        if xyz is None:
            geo = self.geometry(None, None, 1, img.shape[1])
        else:
            geo = self.geometry(torch.from_numpy(xyz)[None].to(self.device), torch.from_numpy(valid)[None].to(self.device),
                                1, img.shape[1])
        ids = self.text_tokenizer(instruction, return_tensors="pt").input_ids.to(self.device)
        text = self.vlm.get_input_embeddings()(ids)
        prefix = torch.cat([img + geo.to(img.dtype), text], dim=1)
        return prefix, torch.ones(prefix.shape[:2], dtype=torch.bool, device=self.device)

    def compute_loss(self, rgb, depth, K, instruction, target) -> torch.Tensor:
        prefix, mask = self._prefix(rgb, depth, K, instruction)
        ids, _ = self.pose.encode(target)
        labels = torch.tensor(ids, device=self.device)[None] + self.pose_offset
        inp = torch.cat([torch.tensor([[self.pose_offset + BOS]], device=self.device), labels[:, :-1]], 1)
        emb = torch.cat([prefix, self.vlm.get_input_embeddings()(inp)], 1)
        logits = self.vlm(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2], dtype=torch.long,
                                                                        device=self.device)).logits
        logits = logits[:, prefix.shape[1]:].float() + self.step_bias[: labels.shape[1]]
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten())

    @torch.no_grad()
    def predict(self, rgb, depth, K, instruction) -> Prediction:
        prefix, mask = self._prefix(rgb, depth, K, instruction)
        emb = self.vlm.get_input_embeddings()
        ids = greedy_decode(self.vlm, prefix, mask, emb(torch.tensor([self.pose_offset + BOS], device=self.device))[0],
                            emb, self.step_bias)
        row = (ids[0] - self.pose_offset).tolist()
        t = self.pose.decode(row)
        return Prediction(t.category, t.box_uv, t.object_pose, t.waypoints, waypoint_dt=self.pose.cfg.waypoint_dt,
                          token_ids=row)
