"""Byte-level BPE training: exact round trips, compression, the special tokens' home."""

import json

import pytest

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.bpe import special_tokens, train_bpe
from olmo_lm.data.corpora import code_documents
from olmo_lm.data.tokenizer import CHAT_TOKENS, DOCUMENT_TOKENS, load_tokenizer


def test_bpe_round_trips_shakespeare_exactly_and_compresses(bpe_dir, shakespeare):
    tok = load_tokenizer(bpe_dir)
    text = shakespeare.read_text()
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.vocab_size == 512
    bytes_per_token = len(text.encode()) / len(ids)
    assert bytes_per_token > 1.8  # bytes are 1.0 by definition; 512 merges buy ~1.9x


def test_bpe_round_trips_text_it_never_saw(bpe_dir):
    tok = load_tokenizer(bpe_dir)
    code = next(code_documents(limit=1)).text
    for text in (code, "ünïcode — 数学 🙂\t\r\n  x = 12345"):
        assert tok.decode(tok.encode(text)) == text


def test_special_tokens_are_recorded_where_the_tokenizer_finds_them(bpe_dir):
    tok = load_tokenizer(bpe_dir)
    names = special_tokens()
    assert [tok.special_ids[n] for n in names] == list(range(len(names)))
    assert tok.eos_id == tok.special_ids[DOCUMENT_TOKENS["eos"]]
    assert tok.bos_id == tok.special_ids[DOCUMENT_TOKENS["bos"]]
    assert tok.pad_id == tok.special_ids[DOCUMENT_TOKENS["pad"]]
    assert len({tok.eos_id, tok.bos_id, tok.pad_id}) == 3
    config = json.loads((bpe_dir / "tokenizer_config.json").read_text())
    assert config["additional_special_tokens"] == list(CHAT_TOKENS)
    assert "<|assistant|>" in config["chat_template"]
    for marker in CHAT_TOKENS:  # one id each, even inside text
        assert tok.encode(f"hi {marker}")[-1] == tok.special_ids[marker]


def test_digits_are_single_tokens(bpe_dir):
    tok = load_tokenizer(bpe_dir)
    assert len(tok.encode("1234567")) == 7


def test_too_small_a_vocabulary_names_the_fix(shakespeare, tmp_path):
    with pytest.raises(TrainCoreConfigError, match="--vocab_size"):
        train_bpe(shakespeare, 100, tmp_path)
