"""Random-weight PaliGemma backbones of a named shape, built offline: for the tests (``tiny``),
the CPU benchmark and the GPU check (``3b``: the shape of paligemma-3b-pt-224, SigLIP-So400m/14
at 224 px + Gemma-2B) without the real weights. The tokenizer is a word-level stand-in with
PaliGemma's special tokens (<pad> <eos> <bos> <unk> <image>), '\\n', a few words and
<loc0000>..<loc1023>; the embedding matrix keeps the real row count for ``3b``.
Predictions of these models mean nothing; their speed, memory and code paths are real."""
from __future__ import annotations

from pathlib import Path

WORDS = ["pick", "up", "the", "red", "blue", "green", "yellow", "cube", "cylinder", "bin", "put", "in", "into",
         "find", "white", "black", "purple", "object", "and", "place", "on", "detect"]

SHAPES = {
    "tiny": dict(vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                             image_size=32, patch_size=8),
                 text=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
                           num_key_value_heads=1, head_dim=24), vocab_rows=None),
    "3b": dict(vision=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                           image_size=224, patch_size=14),
               text=dict(hidden_size=2048, intermediate_size=16384, num_hidden_layers=18, num_attention_heads=8,
                         num_key_value_heads=1, head_dim=256), vocab_rows=257216),
}


def random_paligemma(shape: str = "tiny", seed: int = 0, device: str = "cpu", dtype=None):
    """(PaliGemmaForConditionalGeneration with random weights, its tokenizer)."""
    # torch / tokenizers / transformers: heavy; the shape table above is read without them
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PreTrainedTokenizerFast

    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {sorted(SHAPES)}")
    s = SHAPES[shape]
    vocab = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>", "\n", *WORDS] + [f"<loc{i:04d}>" for i in range(1024)]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
                                  unk_token="<unk>")
    width = s["text"]["hidden_size"]
    # vision_use_head=False as in the released PaliGemma configs (its pooling head is unused).
    cfg = PaliGemmaConfig(vision_config=dict(model_type="siglip_vision_model", projection_dim=width, vision_use_head=False,
                                             **s["vision"]),
                          text_config=dict(model_type="gemma", vocab_size=s["vocab_rows"] or len(vocab), **s["text"]),
                          projection_dim=width, image_token_index=vocab.index("<image>"))
    torch.manual_seed(seed)
    with torch.device(device):
        vlm = PaliGemmaForConditionalGeneration(cfg)
    if dtype is not None:
        vlm = vlm.to(dtype)
    return vlm, tok


def save_random_paligemma(path: str | Path, shape: str = "tiny", seed: int = 0) -> Path:
    """A local PaliGemma directory (config, safetensors weights, tokenizer), as from the Hub."""
    vlm, tok = random_paligemma(shape, seed)
    path = Path(path)
    vlm.save_pretrained(path)
    tok.save_pretrained(path)
    return path
