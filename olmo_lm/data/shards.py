"""Tokenize document files into token shards: memory-mappable ``.npy`` arrays with metadata.

One input file becomes one shard ``NAME``:

- ``NAME.npy``: every document's ids followed by EOS, concatenated (``[N]``, uint16 when the
  vocabulary fits, else uint32), read back with ``np.load(..., mmap_mode="r")``;
- ``NAME.offsets.npy``: ``[D + 1]`` int64 token offsets, document d is ``tokens[o[d]:o[d+1]]``
  (its EOS included);
- ``NAME.json``: source paths, document and token counts, dtype, the tokenizer's sha256 and the
  two file names. It is written last, atomically (a temporary file renamed into place): a shard
  is finished exactly when its metadata exists, so a rerun skips finished shards and redoes one
  a killed run left half written.

Files are tokenized in parallel (``workers`` processes, each loading the tokenizer once).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.documents import find_files, read_documents
from olmo_lm.data.tokenizer import load_tokenizer

FORMAT = "olmo_lm.tokens/1"
"""The ``format`` field of shard metadata (and how a metadata file is told from other JSON)."""
_BATCH_DOCS = 256


def shard_name(file: Path) -> str:
    """A stable output name for an input file: its stem and a hash of its absolute path (two
    ``train.jsonl`` in different folders do not collide)."""
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:10]
    stem = file.name.split(".")[0] or "doc"
    return f"{stem}-{digest}"


def _atomic_write(path: Path, write) -> None:
    """Write through ``write(file)`` to a temporary name, then rename into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class _Job:
    file: str
    out: str
    tokenizer: str | None
    split_paragraphs: bool
    text_field: str


_worker_tokenizers: dict = {}


def _tokenize_file(job: _Job) -> dict:
    """Tokenize one file into its shard; returns the metadata written."""
    tok = _worker_tokenizers.get(job.tokenizer)
    if tok is None:
        tok = _worker_tokenizers[job.tokenizer] = load_tokenizer(job.tokenizer)
    file, out = Path(job.file), Path(job.out)
    name = shard_name(file)
    dtype = tok.token_dtype
    eos = np.asarray([tok.eos_id], dtype=dtype)
    pieces: list[np.ndarray] = []
    lengths: list[int] = []
    batch: list[str] = []

    def flush() -> None:
        for ids in tok.encode_documents(batch):
            pieces.extend((ids, eos))
            lengths.append(len(ids) + 1)
        batch.clear()

    docs = read_documents(file, split_paragraphs=job.split_paragraphs, text_field=job.text_field)
    for doc in docs:
        batch.append(doc.text)
        if len(batch) >= _BATCH_DOCS:
            flush()
    flush()
    tokens = np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    meta = {
        "format": FORMAT,
        "sources": [str(file.resolve())],
        "documents": len(lengths),
        "tokens": len(tokens),
        "dtype": dtype.name,
        "tokenizer": job.tokenizer,
        "tokenizer_sha256": tok.fingerprint,
        "vocab_size": tok.vocab_size,
        "eos_id": tok.eos_id,
        "split_paragraphs": job.split_paragraphs,
        "tokens_file": f"{name}.npy",
        "offsets_file": f"{name}.offsets.npy",
    }
    _atomic_write(out / meta["tokens_file"], lambda f: np.save(f, tokens))
    _atomic_write(out / meta["offsets_file"], lambda f: np.save(f, offsets))
    _atomic_write(out / f"{name}.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
    return meta


def _finished(meta_path: Path, fingerprint: str, split_paragraphs: bool) -> bool:
    """Whether ``meta_path`` records a finished shard made the way this run would make it."""
    if not meta_path.exists():
        return False
    meta = json.loads(meta_path.read_text())
    if meta.get("tokenizer_sha256") != fingerprint:
        raise TrainCoreConfigError(
            f"{meta_path} was tokenized with another tokenizer; write to a fresh --out (or "
            "delete that folder) to tokenize with this one"
        )
    return meta.get("split_paragraphs") == split_paragraphs


def tokenize_files(
    inputs: str | Path | Iterable[str | Path],
    tokenizer: str | Path | None,
    out: str | Path,
    *,
    glob: str | None = None,
    split_paragraphs: bool = False,
    text_field: str = "text",
    workers: int = 1,
    progress: bool = True,
) -> list[Path]:
    """Tokenize every document file under ``inputs`` into ``out``; returns the metadata paths
    (one per input file, in input order). Finished shards are skipped."""
    if workers < 1:
        raise TrainCoreConfigError("--workers must be >= 1")
    files = find_files(inputs, glob)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok_path = None if tokenizer is None else str(Path(tokenizer).resolve())
    fingerprint = load_tokenizer(tok_path).fingerprint
    metas = [out / f"{shard_name(f)}.json" for f in files]
    todo = [
        _Job(str(f), str(out), tok_path, split_paragraphs, text_field)
        for f, m in zip(files, metas)
        if not _finished(m, fingerprint, split_paragraphs)
    ]
    bar = _progress(len(files), len(files) - len(todo), progress)
    if workers == 1 or len(todo) <= 1:
        for job in todo:
            _tokenize_file(job)
            bar.update(1)
    else:
        with multiprocessing.get_context("spawn").Pool(min(workers, len(todo))) as pool:
            for _ in pool.imap_unordered(_tokenize_file, todo):
                bar.update(1)
    bar.close()
    return metas


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, done: int, enabled: bool):
    """A tqdm bar over files when tqdm is installed and ``enabled``."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but the bar is only a convenience
        return _NoBar()
    return tqdm(total=total, initial=done, unit="file", desc="tokenize")


@dataclass
class TokenShard:
    """A finished shard opened for reading (tokens memory-mapped)."""

    meta_path: Path
    meta: dict
    tokens: np.ndarray
    """``[N]`` ids, memory-mapped."""
    offsets: np.ndarray
    """``[D + 1]`` document token offsets."""

    @classmethod
    def open(cls, meta_path: str | Path) -> TokenShard:
        meta_path = Path(meta_path)
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise TrainCoreConfigError(
                f"{meta_path} is not token-shard metadata; pass what `olmo-lm tokenize` wrote"
            )
        folder = meta_path.parent
        tokens = np.load(folder / meta["tokens_file"], mmap_mode="r")
        offsets = np.load(folder / meta["offsets_file"])
        return cls(meta_path, meta, tokens, offsets)

    def document(self, d: int) -> np.ndarray:
        """Document ``d``'s ids, its EOS included."""
        return np.asarray(self.tokens[self.offsets[d] : self.offsets[d + 1]])


def find_shards(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Shard metadata files named by ``paths``: a metadata ``.json``, a shard's ``.npy``, or a
    folder (its finished shards, sorted by name)."""
    found: list[Path] = []
    for path in [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.glob("*.json"))
                if json.loads(p.read_text()).get("format") == FORMAT
            )
        elif path.suffix == ".npy":
            found.append(path.with_name(path.name.removesuffix(".npy") + ".json"))
        elif path.exists():
            found.append(path)
        else:
            raise TrainCoreConfigError(f"{path} does not exist; pass `olmo-lm tokenize` outputs")
    missing = [str(p) for p in found if not p.exists()]
    if missing or not found:
        raise TrainCoreConfigError(
            f"no finished token shards at {missing or paths}; run `olmo-lm tokenize` first"
        )
    return found
