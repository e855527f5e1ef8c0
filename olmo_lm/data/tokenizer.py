"""Tokenizers: a byte-level one that needs no files, and any ``tokenizer.json`` on disk.

``ByteTokenizer`` works offline and for any text. ``JsonTokenizer`` reads the ``tokenizer.json``
that ships with a checkpoint (OLMo's dolma2 BPE, OLMoE's GPT-NeoX BPE) through the
``tokenizers`` library, the reference implementation of that format; both expose the same
methods (``encode``, ``encode_array``, ``encode_documents``, ``decode``, ``vocab_size``, the
special ids, ``token_dtype`` and ``fingerprint``).

The special tokens a tokenizer trained here carries (``olmo_lm.data.bpe``) are named once, in
``DOCUMENT_TOKENS`` and ``CHAT_TOKENS``; ``tokenizer_config.json`` beside ``tokenizer.json``
records which one is BOS, EOS and pad, which is how ``JsonTokenizer`` finds them again.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np

from earthplat.traincore.errors import TrainCoreConfigError

DOCUMENT_TOKENS = {"eos": "<|endoftext|>", "bos": "<|startoftext|>", "pad": "<|pad|>"}
"""Role -> token of the document special tokens (EOS ends every document in a token stream)."""
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
"""Role markers of the chat template (Tulu / OLMo-instruct style); a turn ends with EOS."""
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}<|endoftext|>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Jinja chat template recorded in ``tokenizer_config.json`` (read by transformers as well)."""


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id: uint16 up to 65,536 tokens, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


class ByteTokenizer:
    """Token ids 0..255 are bytes; 256 = BOS, 257 = EOS, 258 = PAD; vocab padded to 260."""

    bos_id, eos_id, pad_id = 256, 257, 258
    vocab_size = 260
    fingerprint = "bytes"
    """Identifies the tokenizer in token-shard metadata (no file to hash)."""
    token_dtype = np.dtype(np.uint16)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = list(text.encode("utf-8"))
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def encode_array(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint16)

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's ids (no special tokens), as ``token_dtype`` arrays."""
        return [self.encode_array(t) for t in texts]

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
        return np.asarray(self.encode(text), dtype=self.token_dtype)

    def encode_documents(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's ids (no special tokens), as ``token_dtype`` arrays, in one batched call
        (the library encodes a batch on its own threads)."""
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=self.token_dtype) for e in encodings]

    @property
    def token_dtype(self) -> np.dtype:
        return token_dtype(self.vocab_size)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of ``tokenizer.json``: token shards record it so a mixture never mixes ids of
        two tokenizers."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @cached_property
    def special_ids(self) -> dict[str, int]:
        """Every special (added) token's text -> id, e.g. ``{"<|user|>": 4, ...}``."""
        return {t.content: i for i, t in self._tok.get_added_tokens_decoder().items() if t.special}

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)


def load_tokenizer(path: str | Path | None) -> ByteTokenizer | JsonTokenizer:
    """``ByteTokenizer`` for ``None``, else the ``tokenizer.json`` at ``path``."""
    return ByteTokenizer() if path is None else JsonTokenizer(path)
