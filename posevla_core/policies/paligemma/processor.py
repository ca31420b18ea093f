"""PaliGemma's processor and its pose-token vocabulary.

- The pose tokens in PaliGemma's vocabulary: 2D box bins are its own ``<loc0000>``..``<loc1023>``
  tokens; the other pose tokens are added BY NAME (``PoseTokenizer.token_names``), their
  embeddings initialized to the mean of the pretrained ones (``add_pose_tokens``).
- ``VLMProcessor``: a camera frame (+ more cameras, + a pose target) -> PaliGemma's prompt
  (``<image> x N <bos> {instruction} \\n``), the letterboxed image (K stays right and no side of
  a 4:3 image is lost) with its ray and depth maps; examples -> a left-padded batch.
"""
from __future__ import annotations

import numpy as np
import torch

from posevla_core.image import check_frame, letterbox
from posevla_core.policies.base import IGNORE
from posevla_core.policies.geometry_prior import depth_map, ray_map
from posevla_core.policies.paligemma.configuration import PALIGEMMA_LOC_TOKENS, VLMConfig
from posevla_core.poses import PoseTarget
from posevla_core.tokens.grammar import BOS, EOS, PAD, PoseTokenizer, grammar_of

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
    from tokenizers import AddedToken   # tokenizers: only a new VLM model needs it

    first = len(text_tokenizer)
    text_tokenizer.add_tokens([AddedToken(n, normalized=False, special=True) for n in new_token_names(pose)])
    rows = vlm.get_input_embeddings().weight.shape[0]
    vlm.resize_token_embeddings(max(rows, len(text_tokenizer)), mean_resizing=False)
    with torch.no_grad():
        for emb in {id(m.weight): m.weight for m in (vlm.get_input_embeddings(), vlm.get_output_embeddings())}.values():
            emb[first:len(text_tokenizer)] = emb[:first].float().mean(0).to(emb.dtype)
    return first



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
