"""A tiny random PaliGemma in a local directory, built offline (no downloads): the same
files a real PaliGemma directory holds (config, safetensors weights, a tokenizer with
<pad> <eos> <bos> <unk> <image>, '\\n', a few words and <loc0000>..<loc1023>)."""
from __future__ import annotations

from pathlib import Path

WORDS = ["pick", "up", "the", "red", "blue", "green", "cube", "cylinder", "bin", "put", "in", "find", "white"]


def make_tiny_paligemma(path: str | Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PreTrainedTokenizerFast

    path = Path(path)
    vocab = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>", "\n", *WORDS] + [f"<loc{i:04d}>" for i in range(1024)]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                   unk_token="<unk>")
    cfg = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8, projection_dim=48),
        text_config=dict(model_type="gemma", hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=24, vocab_size=len(vocab)),
        projection_dim=48, image_token_index=vocab.index("<image>"))
    torch.manual_seed(seed)
    PaliGemmaForConditionalGeneration(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path
