"""The PaliGemma adapter, built from a tiny random config and a locally made tokenizer
(no downloads): pose tokens extend the vocabulary, outputs parse, the loss trains."""
import numpy as np
import pytest
import torch

from posevla_core.config import TokenizerConfig
from posevla_core.types import Pose, PoseTarget, Waypoint
from posevla_core.vlm_adapter import PaliGemmaPoseAdapter


def tiny_vlm_dir(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "<bos>", "<eos>", "<image>", "pick", "up", "the", "red", "cube", "blue"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>")
    cfg = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8, projection_dim=48),
        text_config=dict(model_type="gemma", hidden_size=48, intermediate_size=96, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=24, vocab_size=len(words)),
        projection_dim=48, image_token_index=4)
    torch.manual_seed(0)
    PaliGemmaForConditionalGeneration(cfg).save_pretrained(tmp_path)
    fast.save_pretrained(tmp_path)
    return tmp_path


def test_adapter_extends_vocab_parses_and_trains(tmp_path):
    ad = PaliGemmaPoseAdapter.from_local(tiny_vlm_dir(tmp_path), tokens=TokenizerConfig(num_waypoints=1))
    assert ad.pose_offset == 11
    assert ad.vlm.get_input_embeddings().weight.shape[0] == 11 + ad.pose.vocab_size
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 1.0, (40, 48)).astype(np.float32)
    K = np.array([[40.0, 0, 23.5], [0, 40.0, 19.5], [0, 0, 1]])
    p = ad.predict(rgb, depth, K, "pick up the red cube")
    assert ad.pose.is_valid(p.token_ids) and len(p.waypoints) == 1
    pose = Pose([0.0, 0.1, 0.8], [0, 0, 0, 1])
    tgt = PoseTarget("cube", (0.5, 0.5), pose, [Waypoint(pose, 0.0)])
    opt = torch.optim.AdamW(ad.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = ad.compute_loss(rgb, depth, K, "pick up the red cube", tgt)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_missing_directory_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        PaliGemmaPoseAdapter.from_local(tmp_path / "paligemma-3b")
