"""The small model's parts below the decoder (modeling.PoseVLA puts them together):

- ``VisionStem``: RGB -> instruction-FiLM'ed 1/4-resolution features and patch tokens;
- ``GroundingPointer``: which stem cell is the instructed object -> one prefix token, its
  (u, v) and 3D point, and a copy prior over the ordinal pose tokens anchored there;
- ``ObjectGlimpse``: a high-resolution crop around the pointer -> one prefix token and a prior
  over the object's rotation bins;
- ``ObjectVerifier``: the same crop + the sentence -> P(the pointed-at object is the instructed one).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from posevla_core.policies.geometry_prior import GeometryPrior
from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.text_encoder import InstructionEncoder
from posevla_core.tokens.grammar import ROT, PoseTokenizer

UV_FREQS = 8             # Fourier frequencies (2^k * pi, k < 8) of the pointer's (u, v)
POINTER_WINDOW = 5       # stem cells per side of the pointer's soft-argmax window
STEM_STRIDE = 4          # the image stem's two stride-2 convs
STEM_CHANNELS = (32, 64)  # channels of those two convs; FiLM and the heatmap act on the second
INIT_STD = 0.02          # learned position embeddings and the pointer token (ViT / GPT-2 init)
PRIOR_SIGMA0 = 0.01      # copy prior's initial width: normalized (u, v) and meters alike
PRIOR_AMP0 = 3.0         # copy prior's initial amplitude (nats at one sigma ~ amp * log 1.5)
POINTER_MIN_DEPTH_MASS = 0.05   # the pointer has a 3D point when this much window mass has depth
GLIMPSE_GRID = 32        # samples per side of the object glimpse (bilinear, from the high-res image)
GLIMPSE_CHANNELS = (32, 64, 64)   # the glimpse CNN: a stride-1 conv, then stride-2 convs down to 4 x 4
ORIENT_KAPPA0 = 4.0      # initial concentration of the glimpse's rotation prior (~30 deg wide at first)


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
    misses ("the blue cylinder" beside a blue cube) and pointers on the wrong object, and on a
    still scene they repeat frame after frame. The verifier re-scores the pointer's proposal the way a two-stage
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
