"""Tokenizing documents into token shards: exact contents, dtype, metadata, resume."""

import hashlib
import json
import os

import numpy as np
import pytest

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.corpora import code_documents, math_documents
from olmo_lm.data.documents import read_documents, write_documents
from olmo_lm.data.shards import TokenShard, find_shards, shard_name, tokenize_files
from olmo_lm.data.tokenizer import load_tokenizer, token_dtype


def _decoded_documents(meta_path, tok):
    shard = TokenShard.open(meta_path)
    docs = []
    for d in range(shard.meta["documents"]):
        ids = shard.document(d)
        assert ids[-1] == tok.eos_id and tok.eos_id not in ids[:-1].tolist()
        docs.append(tok.decode(ids[:-1].tolist()))
    return docs


def test_shards_decode_to_the_input_documents(bpe_dir, shakespeare, tmp_path):
    [meta_path] = tokenize_files(shakespeare, bpe_dir, tmp_path, split_paragraphs=True)
    tok = load_tokenizer(bpe_dir)
    expected = [d.text for d in read_documents(shakespeare, split_paragraphs=True)]
    assert _decoded_documents(meta_path, tok) == expected
    meta = json.loads(meta_path.read_text())
    shard = TokenShard.open(meta_path)
    assert shard.tokens.dtype == np.uint16 and meta["dtype"] == "uint16"
    assert isinstance(shard.tokens, np.memmap)
    assert meta["documents"] == len(expected) > 7000
    assert meta["tokens"] == len(shard.tokens) == shard.offsets[-1]
    assert meta["sources"] == [str(shakespeare.resolve())]
    assert (
        meta["tokenizer_sha256"]
        == hashlib.sha256((bpe_dir / "tokenizer.json").read_bytes()).hexdigest()
    )


def test_jsonl_and_folders_in_parallel(bpe_dir, tmp_path):
    docs = tmp_path / "docs"
    write_documents(docs / "math.jsonl", math_documents(20, seed=1))
    write_documents(docs / "sub" / "code.jsonl.gz", code_documents(limit=5))
    (docs / "skip.bin").write_bytes(b"\xff\x00")  # not matched by the default globs
    metas = tokenize_files(docs, bpe_dir, tmp_path / "out", workers=2, progress=False)
    assert len(metas) == 2
    tok = load_tokenizer(bpe_dir)
    by_name = {m.name: m for m in metas}
    for file in (docs / "math.jsonl", docs / "sub" / "code.jsonl.gz"):
        expected = [d.text for d in read_documents(file)]
        assert _decoded_documents(by_name[f"{shard_name(file)}.json"], tok) == expected
    assert find_shards(tmp_path / "out") == sorted(metas)


def test_resume_skips_finished_shards_and_redoes_a_half_written_one(bpe_dir, tmp_path):
    docs = tmp_path / "docs"
    for k in range(3):
        write_documents(docs / f"part{k}.jsonl", math_documents(10, seed=k))
    out = tmp_path / "out"
    metas = tokenize_files(docs, bpe_dir, out, progress=False)
    stamps = {m: m.stat().st_mtime_ns for m in metas}
    victim = metas[1]
    good = np.load(out / json.loads(victim.read_text())["tokens_file"])
    # what a run killed mid-shard leaves: tokens partly written, no metadata (written last)
    victim.unlink()
    (out / f"{victim.stem}.npy").write_bytes(b"\x93NUMPY partial")
    (out / f".{victim.stem}.npy.tmp-999").write_bytes(b"junk")

    again = tokenize_files(docs, bpe_dir, out, progress=False)
    assert again == metas
    assert metas[0].stat().st_mtime_ns == stamps[metas[0]]  # skipped
    assert metas[2].stat().st_mtime_ns == stamps[metas[2]]
    np.testing.assert_array_equal(TokenShard.open(victim).tokens, good)  # redone, identical


def test_a_different_tokenizer_is_refused_in_the_same_folder(bpe_dir, tmp_path):
    docs = tmp_path / "docs.jsonl"
    write_documents(docs, math_documents(3))
    tokenize_files(docs, bpe_dir, tmp_path / "out", progress=False)
    with pytest.raises(TrainCoreConfigError, match="fresh --out"):
        tokenize_files(docs, None, tmp_path / "out", progress=False)


def test_dtype_widens_past_65536_tokens():
    assert token_dtype(2**16) == np.uint16
    assert token_dtype(2**16 + 1) == np.uint32
    assert token_dtype(100_278) == np.uint32  # OLMo 2's dolma2 vocabulary


def test_missing_input_names_the_fix(tmp_path):
    with pytest.raises(TrainCoreConfigError, match="--input"):
        tokenize_files(tmp_path / "nope", None, tmp_path / "out")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(TrainCoreConfigError, match="--glob"):
        tokenize_files(tmp_path / "empty", None, tmp_path / "out")
