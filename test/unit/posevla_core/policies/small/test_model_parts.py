"""The small model's named parts: vision stem, grounding pointer, decoder; no I/O in the
constructor; the shipped checkpoint's parameters are exactly the model's."""
import threading
from test.helpers.paths import REPO

import torch

from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.layers import GroundingPointer, VisionStem
from posevla_core.policies.small.modeling import PoseVLA
from posevla_core.policies.small.text_encoder import InstructionEncoder
from posevla_core.tokens.grammar import PoseTokenizer

CKPT = REPO / "checkpoints" / "demo"


def test_parts_are_named_modules_and_the_constructor_reads_nothing():
    m = PoseVLA(PoseVLAConfig.tiny())
    assert isinstance(m.stem, VisionStem) and isinstance(m.pointer, GroundingPointer)
    assert [n for n, _ in m.stem.named_children()] == ["conv1", "conv2", "patchify", "film"]  # not by position
    assert not m.text.loaded                        # MiniLM is read on first encode, not in __init__
    m.text.encode(["pick up the cube"])
    assert m.text.loaded


def test_shipped_checkpoint_names_are_the_model_parts():
    """(Checkpoints of pose-token format 1, written before the split into named parts, are
    refused by config.check_format; there is no old-name mapping any more.)"""
    from safetensors import safe_open

    with safe_open(str(CKPT / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    m = PoseVLA.from_pretrained(CKPT, device="cpu")
    assert keys == set(m.state_dict()) and any(k.startswith("stem.") for k in keys)


def test_checkpoint_with_new_names_round_trips(tmp_path):
    m = PoseVLA(PoseVLAConfig.tiny())
    m.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert "stem.conv1.weight" in f.keys() and not any(k.startswith("patch_embed") for k in f.keys())
    m2 = PoseVLA.from_pretrained(tmp_path, device="cpu")
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


def test_text_encoder_cache_is_consistent_across_threads():
    enc = InstructionEncoder(max_tokens=8)
    enc.max_cached = 3                                  # force clears while other threads read
    texts = [f"pick up object {i}" for i in range(12)]
    ref = {t: enc.encode([t])[0][0].clone() for t in texts}
    errors, out = [], []

    def work(k):
        try:
            for j in range(20):
                t = texts[(k + j) % len(texts)]
                out.append(bool(torch.allclose(enc.encode([t, texts[0]])[0][0], ref[t], atol=1e-3)))
        except Exception as e:  # noqa: BLE001 - the test reports any failure
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(out) == 80 and all(out)


def test_glimpse_is_cut_around_the_pointer():
    """The glimpse samples a glimpse_extent square of the high-res image centered on (u, v):
    a bright square there lands in the middle of the crop, and nothing else does."""
    from posevla_core.policies.small.layers import GLIMPSE_GRID, ObjectGlimpse

    cfg = PoseVLAConfig(glimpse_size=224, glimpse_extent=0.18)
    g = ObjectGlimpse(cfg, PoseTokenizer(cfg.tokens), 16)
    img = torch.zeros(2, 3, 224, 224)
    centers = [(67, 157), (179, 34)]                  # pixel (column, row) of each square's center
    for b, (c, r) in enumerate(centers):
        img[b, 0, r - 5:r + 5, c - 5:c + 5] = 1.0     # pixels r-5 .. r+4: centered on the corner r
    crops = g.crop(img, torch.tensor([[c / 224, r / 224] for c, r in centers]))
    assert crops.shape == (2, 3, GLIMPSE_GRID, GLIMPSE_GRID)
    mid = (GLIMPSE_GRID - 1) / 2                      # the crop's center lies between two samples
    for b in range(2):
        on = crops[b, 0] > 0.5
        rows, cols = on.nonzero(as_tuple=True)
        assert abs(float(rows.float().mean()) - mid) < 0.6 and abs(float(cols.float().mean()) - mid) < 0.6
        # 10 px of 0.18 * 224 = 40.3 px spread over 32 samples: about 8 samples a side
        assert 6 <= int(on[int(mid)].sum()) <= 10 and not bool(on[0].any() or on[-1].any())


def test_glimpse_token_reads_the_high_res_image():
    """The tiny config has a glimpse: one extra prefix token, and it changes when only the
    high-res image changes (the 64 px model image stays the same)."""
    m = PoseVLA(PoseVLAConfig.tiny()).eval()
    import numpy as np

    rgb = np.full((96, 96, 3), 120, np.uint8)
    K = np.array([[80.0, 0, 48], [0, 80.0, 48], [0, 0, 1]])
    b = m.collate([m.make_example(rgb, None, K, "pick up the red cube")])
    assert tuple(b["image_hr"].shape) == (1, 3, 96, 96)
    with torch.no_grad():
        p1, mask = m.encode_prefix(b)
        L = int(m.text.encode(["pick up the red cube"])[1].shape[1])
        assert p1.shape[1] == L + 2 + m.cfg.num_patches == mask.shape[1]
        b2 = dict(b, image_hr=torch.zeros_like(b["image_hr"]))
        p2, _ = m.encode_prefix(b2)
    changed = (p1 - p2).abs().amax(-1)[0]
    assert bool(changed[L + 1] > 0) and float(changed[:L + 1].abs().max()) == 0.0


def test_presence_loss_counts_categories_as_present_and_no_object_as_absent():
    from posevla_core.policies.base import IGNORE
    from posevla_core.tokens.grammar import NO_OBJECT

    cat = 4                                   # any category token
    labels = torch.full((3, 5), IGNORE)
    labels[0, 0], labels[1, 0] = cat, NO_OBJECT     # row 2: first step not supervised
    right = torch.tensor([8.0, -8.0, 50.0])
    wrong = torch.tensor([-8.0, 8.0, -50.0])
    assert float(PoseVLA.presence_loss(right, labels)) < 1e-3
    assert float(PoseVLA.presence_loss(wrong, labels)) > 7.0
    assert float(PoseVLA.presence_loss(right, torch.full((3, 5), IGNORE))) == 0.0


def test_glimpse_yaw_order_makes_the_cube_boundary_continuous():
    """With glimpse_yaw_order 4 the regression target of a yaw of +44.5 deg and of -44.5 deg (the
    same cube) are 4 x 1 deg apart, not 89 deg; and the prior built from a prediction peaks, inside
    the labels' range [-45, 45) deg, at the predicted yaw."""
    import math

    from posevla_core.policies.base import IGNORE
    from posevla_core.policies.small.layers import ObjectGlimpse

    cfg = PoseVLAConfig(glimpse_size=224, glimpse_yaw_order=4)
    tok = PoseTokenizer(cfg.tokens)
    g = ObjectGlimpse(cfg, tok, 16)
    r0, n = tok.blocks["rotation"].start, cfg.tokens.rotation_bins
    yaw_step = g.rot_steps[-1]

    def labels_for(yaw_deg):
        lab = torch.full((1, tok.seq_len), IGNORE)
        for s in g.rot_steps:
            lab[0, s] = r0 + n // 2                       # 0 deg (bin [0, 1) deg)
        lab[0, yaw_step] = r0 + int((math.radians(yaw_deg) + math.pi) / (2 * math.pi / n))
        return lab

    def unit(deg):
        a = math.radians(deg)
        return torch.tensor([[[math.cos(a), math.sin(a)]] * 3])

    # the target for +44.5 deg yaw is 4 * 44.5 = 178 deg; for -44.5 deg it is -178 deg: 4 deg apart
    cs = unit(0.5 * 4)
    cs[0, 2] = torch.tensor([math.cos(math.radians(178)), math.sin(math.radians(178))])
    near = float(g.loss(cs, labels_for(-44.5)))
    assert near < (2 * math.sin(math.radians(2))) ** 2 + 1e-3          # |e^{i178} - e^{-i178}|^2 / 3 <= this
    prior = g.prior(cs)[0, yaw_step, r0:r0 + n]
    in_range = torch.arange(n)[(torch.arange(n) >= n // 2 - 45) & (torch.arange(n) < n // 2 + 45)]
    best = int(in_range[prior[in_range].argmax()])
    assert abs((best + 0.5) - n // 2 - 44.5) <= 1.0 or abs((best + 0.5) - n // 2 + 44.5) <= 1.0
