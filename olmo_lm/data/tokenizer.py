"""A byte-level tokenizer: 256 byte values plus special tokens.

It needs no vocabulary file, so it works offline and for any text; subword tokenizers (OLMo's
dolma2 BPE) come with their own files and plug in behind the same two methods.
"""

from __future__ import annotations

import numpy as np


class ByteTokenizer:
    """Token ids 0..255 are bytes; 256 = BOS, 257 = EOS, 258 = PAD; vocab padded to 260."""

    bos_id, eos_id, pad_id = 256, 257, 258
    vocab_size = 260

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = list(text.encode("utf-8"))
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
