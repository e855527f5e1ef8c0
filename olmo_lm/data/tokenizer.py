"""Tokenizers: a byte-level one that needs no files, and any ``tokenizer.json`` on disk.

``ByteTokenizer`` works offline and for any text. ``JsonTokenizer`` reads the ``tokenizer.json``
that ships with a checkpoint (OLMo's dolma2 BPE, OLMoE's GPT-NeoX BPE) through the
``tokenizers`` library, the reference implementation of that format; both expose the same
methods (``encode``, ``encode_array``, ``decode``, ``vocab_size`` and the special ids).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from earthplat.traincore.errors import TrainCoreConfigError


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


class JsonTokenizer:
    """A ``tokenizer.json`` (a file, or a checkpoint directory holding one).

    Special ids come from ``tokenizer_config.json`` / ``config.json`` beside it when present
    (``bos_token``, ``eos_token``, ``pad_token``), else from the usual names in the vocabulary.
    """

    def __init__(self, path: str | Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as e:  # pragma: no cover - tokenizers ships with the dev extras
            raise TrainCoreConfigError(
                "reading tokenizer.json needs the 'tokenizers' package: pip install tokenizers"
            ) from e
        path = Path(path)
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.exists():
            raise TrainCoreConfigError(f"no tokenizer.json at {path}; pass the file or its folder")
        self.path = file
        self._tok = Tokenizer.from_file(str(file))
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        self.bos_id = self._special(file.parent, "bos", ("<|endoftext|>", "<s>", "<bos>"))
        self.eos_id = self._special(file.parent, "eos", ("<|endoftext|>", "</s>", "<eos>"))
        self.pad_id = self._special(file.parent, "pad", ("<|pad|>", "<pad>"))

    def _special(self, folder: Path, kind: str, fallbacks: tuple[str, ...]) -> int | None:
        for name in ("tokenizer_config.json", "config.json"):
            f = folder / name
            if not f.exists():
                continue
            meta = json.loads(f.read_text())
            if isinstance(meta.get(f"{kind}_token_id"), int):
                return meta[f"{kind}_token_id"]
            token = meta.get(f"{kind}_token")
            if isinstance(token, dict):
                token = token.get("content")
            if isinstance(token, str) and self._tok.token_to_id(token) is not None:
                return self._tok.token_to_id(token)
        for token in fallbacks:
            if self._tok.token_to_id(token) is not None:
                return self._tok.token_to_id(token)
        return None

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = self._tok.encode(text, add_special_tokens=False).ids
        if bos and self.bos_id is not None:
            ids = [self.bos_id, *ids]
        if eos and self.eos_id is not None:
            ids = [*ids, self.eos_id]
        return ids

    def encode_array(self, text: str) -> np.ndarray:
        dtype = np.uint16 if self.vocab_size <= 2**16 else np.uint32
        return np.asarray(self.encode(text), dtype=dtype)

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)


def load_tokenizer(path: str | Path | None) -> ByteTokenizer | JsonTokenizer:
    """``ByteTokenizer`` for ``None``, else the ``tokenizer.json`` at ``path``."""
    return ByteTokenizer() if path is None else JsonTokenizer(path)
