"""Checkpoints: safetensors directory round trip, refusing pickles, clear errors."""
import json

import numpy as np
import pytest
import torch

from posevla_core.policies.small.configuration import PoseVLAConfig
from posevla_core.policies.small.modeling import PoseVLA


def test_save_load_identical_outputs(tmp_path):
    torch.manual_seed(1)
    m = PoseVLA(PoseVLAConfig.tiny()).eval()
    m.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "pose_vocab.json"} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "text_tokenizer" / "tokenizer.json").exists()
    m2 = PoseVLA.from_pretrained(tmp_path, device="cpu")
    torch.testing.assert_close(m2.state_dict(), m.state_dict(), rtol=0, atol=0)   # every tensor, exactly
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 1.0, (64, 64)).astype(np.float32)
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 31.5], [0, 0, 1]])
    a, b = m.predict(rgb, depth, K, "pick up the cube"), m2.predict(rgb, depth, K, "pick up the cube")
    assert a.token_ids == b.token_ids


def test_refuses_pickles_and_reports_missing(tmp_path):
    torch.save({"x": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="pickle"):
        PoseVLA.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PoseVLA.from_pretrained(tmp_path / "nope")


def test_mismatched_config_is_a_clear_error(tmp_path):
    PoseVLA(PoseVLAConfig.tiny()).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["posevla"]["backbone"]["hidden_size"] = 32
    meta["posevla"]["backbone"]["num_heads"] = 2
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match"):
        PoseVLA.from_pretrained(tmp_path)
    meta["posevla"]["bogus"] = 1
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown PoseVLAConfig keys"):
        PoseVLA.from_pretrained(tmp_path)
