"""The small model's named parts: vision stem, grounding pointer, decoder; no I/O in the
constructor; the shipped checkpoint's parameters are exactly the model's."""
import threading
from pathlib import Path

import torch

from posevla_core.config import PoseVLAConfig
from posevla_core.model import GroundingPointer, PoseVLA, VisionStem
from posevla_core.text import InstructionEncoder

CKPT = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"


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
