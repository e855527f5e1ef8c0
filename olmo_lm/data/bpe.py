"""Train a byte-level BPE tokenizer (the GPT-2 / OLMo kind) with the ``tokenizers`` library.

Byte-level means the base alphabet is the 256 bytes, so every UTF-8 text encodes and decodes
back exactly, whatever the training text held. The special tokens come first in the vocabulary
(ids 0..5: ``DOCUMENT_TOKENS`` then ``CHAT_TOKENS``, both defined in ``olmo_lm.data.tokenizer``)
and are recorded in ``tokenizer_config.json`` with the chat template, which is where
``JsonTokenizer`` (and transformers) look for BOS, EOS and pad.

Pre-tokenisation is GPT-2's regex (words, numbers, punctuation and whitespace runs are merged
separately); digits are further split into single digits, as the Llama and OLMo tokenizers do,
so arithmetic does not learn arbitrary multi-digit merges.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.documents import find_files, read_documents
from olmo_lm.data.tokenizer import CHAT_TEMPLATE, CHAT_TOKENS, DOCUMENT_TOKENS, JsonTokenizer

_MIN_VOCAB = 256 + len(DOCUMENT_TOKENS) + len(CHAT_TOKENS)


def special_tokens() -> list[str]:
    """The special tokens in id order: document tokens, then chat role markers."""
    return [DOCUMENT_TOKENS["eos"], DOCUMENT_TOKENS["bos"], DOCUMENT_TOKENS["pad"], *CHAT_TOKENS]


def train_bpe_from_texts(
    texts: Iterable[str], vocab_size: int, out: str | Path, *, min_frequency: int = 2
) -> JsonTokenizer:
    """Train on ``texts`` and write ``out/tokenizer.json`` and ``out/tokenizer_config.json``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < _MIN_VOCAB:
        raise TrainCoreConfigError(
            f"--vocab_size {vocab_size} is below {_MIN_VOCAB} (256 bytes + "
            f"{_MIN_VOCAB - 256} special tokens); pass a larger vocabulary"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens(),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": DOCUMENT_TOKENS["bos"],
        "eos_token": DOCUMENT_TOKENS["eos"],
        "pad_token": DOCUMENT_TOKENS["pad"],
        "additional_special_tokens": list(CHAT_TOKENS),
        "chat_template": CHAT_TEMPLATE,
        "add_bos_token": False,
        "add_eos_token": False,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return JsonTokenizer(out)


def _texts(files: list[Path], split_paragraphs: bool, text_field: str) -> Iterator[str]:
    for file in files:
        for doc in read_documents(file, split_paragraphs=split_paragraphs, text_field=text_field):
            yield doc.text


def train_bpe(
    inputs: str | Path | Iterable[str | Path],
    vocab_size: int,
    out: str | Path,
    *,
    glob: str | None = None,
    split_paragraphs: bool = False,
    text_field: str = "text",
    min_frequency: int = 2,
) -> JsonTokenizer:
    """Train on the documents of ``inputs`` (files or folders, see ``olmo_lm.data.documents``)."""
    files = find_files(inputs, glob)
    return train_bpe_from_texts(
        _texts(files, split_paragraphs, text_field), vocab_size, out, min_frequency=min_frequency
    )
