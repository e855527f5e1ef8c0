"""A data mixture: fixed-length sequences drawn from several tokenized sources in set proportions.

The YAML (paths relative to the YAML's folder)::

    sources:
      - {name: literature, paths: [tokens/literature], weight: 0.5}
      - {name: code, paths: [tokens/code], weight: 0.3}
      - {name: math, paths: [tokens/math.json], weight: 0.2}   # no weight: its natural share
    period: 1000          # proportions are exact over every 1000 instances
    num_sequences: null   # instances per epoch (default: all sources' sequences once)
    validation: [tokens/heldout]   # optional held-out shards, read in order

How instance ``i`` is found, with no per-instance state (so it scales to any length):

1. **Source**: instances come in periods of ``P``; in each period source ``s`` owns ``c_s`` of
   the ``P`` slots (``c_s / P`` is its proportion, rounded by largest remainder). Slot
   ``i mod P`` of period ``r = i // P`` goes through a seeded permutation of the period
   (``FeistelPermutation(P, hash(seed, r))``) to a slot owned by one source; its rank among that
   source's slots gives the source's position ``p = r * c_s + rank``.
2. **Sequence**: the source's ``N_s`` sequences (non-overlapping windows of ``seq_len + 1``
   tokens over its shards, concatenated) are read in a seeded permutation per pass over the
   source: pass ``e = p // N_s`` reads ``FeistelPermutation(N_s, hash(seed, s, e))(p mod N_s)``.
   A source whose share of the mixture exceeds its size is repeated (upsampled, a fresh order per
   repetition); one with a smaller share is only partly read (downsampled), as Dolma/Dolmino mixes
   do. ``describe()`` reports each source's implied repetitions.

So the whole data order is a function of (mixture, seq_len, seed); a position in it is one
integer, and per-source positions (``source_positions``) follow from it: the state is O(sources).

Documents: tokens carry their document boundaries (each document ends with EOS), and
``sequence_with_documents`` returns per-token document ids and ``cu_seqlens`` for attention that
does not cross documents; with ``documents=True`` a dataset's items are ``{"input_ids",
"doc_ids"}`` dicts, which pretraining feeds to the model's document masking
(``--data.document_masking``; OLMo 2 trains across document boundaries, Olmo 3 masks them).
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.permutation import FeistelPermutation, hash_ints, name_key
from olmo_lm.data.shards import TokenShard, find_shards


@dataclass
class SourceConfig:
    """One source of a mixture."""

    name: str
    """Its name (logs, state and the seed of its order)."""
    paths: list[str]
    """Token shards (``olmo-lm tokenize`` outputs: folders, ``.json`` or ``.npy`` files)."""
    weight: float | None = None
    """Relative share of the mixture's instances (normalised over sources); ``None``: the share
    its size gives it."""

    def __post_init__(self) -> None:
        if isinstance(self.paths, str):
            self.paths = [self.paths]
        if self.weight is not None and not self.weight > 0:
            raise TrainCoreConfigError(
                f"mixture source {self.name!r} has weight {self.weight}; weights must be > 0 "
                "(leave a source out to drop it)"
            )


@dataclass
class MixtureConfig:
    """Sources and how they are interleaved."""

    sources: list[SourceConfig]
    """The sources and their weights."""
    period: int = 1000
    """Instances over which the proportions hold exactly (a source gets at least one slot)."""
    num_sequences: int | None = None
    """Instances per epoch; ``None``: the sources' sequence counts summed."""
    validation: list[str] = field(default_factory=list)
    """Held-out token shards for validation, read in order."""

    def __post_init__(self) -> None:
        self.sources = [
            s if isinstance(s, SourceConfig) else SourceConfig(**s) for s in self.sources
        ]
        if not self.sources:
            raise TrainCoreConfigError("a mixture needs at least one source under `sources:`")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise TrainCoreConfigError(f"mixture source names repeat: {names}; name each once")
        if self.period < len(self.sources):
            raise TrainCoreConfigError("mixture `period` must be >= the number of sources")

    @classmethod
    def from_yaml(cls, path: str | Path) -> MixtureConfig:
        """Read a mixture YAML; relative shard paths are resolved from the YAML's folder."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise TrainCoreConfigError(f"mixture file {path} not found; pass --data.mixture YAML")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict) or "sources" not in raw:
            raise TrainCoreConfigError(f"{path} has no `sources:` list; see olmo_lm/README.md")
        unknown = set(raw) - {"sources", "period", "num_sequences", "validation"}
        if unknown:
            raise TrainCoreConfigError(f"{path}: unknown mixture keys {sorted(unknown)}")

        def resolve(p: str) -> str:
            return str(p if Path(p).is_absolute() else path.parent / p)

        for source in raw["sources"]:
            paths = source.get("paths", [])
            source["paths"] = [resolve(p) for p in ([paths] if isinstance(paths, str) else paths)]
        raw["validation"] = [resolve(p) for p in raw.get("validation") or []]
        return cls(**raw)


class SourceSequences:
    """A source's shards as one token stream cut into windows of ``seq_len + 1`` tokens
    (window k starts at token ``k * seq_len``: inputs and shifted targets, as ``TextDataset``)."""

    def __init__(self, paths: list[str], seq_len: int, name: str = "source") -> None:
        self.name, self.seq_len = name, seq_len
        self.shards = [TokenShard.open(p) for p in find_shards(paths)]
        sizes = [len(s.tokens) for s in self.shards]
        self.starts = np.zeros(len(sizes) + 1, dtype=np.int64)  # [S + 1] token offsets
        np.cumsum(sizes, out=self.starts[1:])
        self.num_tokens = int(self.starts[-1])
        self.num_sequences = max(0, (self.num_tokens - 1) // seq_len)
        if self.num_sequences == 0:
            raise TrainCoreConfigError(
                f"mixture source {name!r} has {self.num_tokens} tokens, fewer than one sequence "
                f"of {seq_len}; add data to it or lower --data.seq_len"
            )
        hashes = {s.meta["tokenizer_sha256"] for s in self.shards}
        if len(hashes) > 1:
            raise TrainCoreConfigError(
                f"mixture source {name!r} mixes shards of {len(hashes)} tokenizers; tokenize "
                "every source with the same --tokenizer"
            )
        self.tokenizer_sha256 = hashes.pop()

    def _pieces(self, k: int):
        """(shard index, first, last) token ranges that make up window ``k``."""
        begin = k * self.seq_len
        end = begin + self.seq_len + 1
        j = int(np.searchsorted(self.starts, begin, side="right")) - 1
        while begin < end:
            lo = begin - int(self.starts[j])
            hi = min(end, int(self.starts[j + 1])) - int(self.starts[j])
            if hi > lo:
                yield j, lo, hi
            begin += hi - lo
            j += 1

    def sequence(self, k: int) -> np.ndarray:
        """Window ``k`` as int64 ``[seq_len + 1]``."""
        parts = [np.asarray(self.shards[j].tokens[lo:hi]) for j, lo, hi in self._pieces(k)]
        return np.concatenate(parts).astype(np.int64)

    def document_ids(self, k: int) -> np.ndarray:
        """``[seq_len + 1]`` ids of each token's document within window ``k``, from 0."""
        keys = []
        for j, lo, hi in self._pieces(k):
            local = np.searchsorted(self.shards[j].offsets, np.arange(lo, hi), side="right") - 1
            keys.append(local.astype(np.int64) + j * 2**40)  # unique per (shard, document)
        key = np.concatenate(keys)
        return np.concatenate([[0], np.cumsum(key[1:] != key[:-1])]).astype(np.int64)


def _period_counts(shares: list[float], period: int, names: list[str]) -> list[int]:
    """Slots per period per source: ``shares * period`` rounded by largest remainder."""
    raw = [s * period for s in shares]
    counts = [math.floor(x) for x in raw]
    by_remainder = sorted(range(len(raw)), key=lambda s: (counts[s] - raw[s], s))
    for s in by_remainder[: period - sum(counts)]:
        counts[s] += 1
    starved = [n for n, c in zip(names, counts) if c == 0]
    if starved:
        raise TrainCoreConfigError(
            f"mixture sources {starved} get no slot in a period of {period}; raise `period`"
        )
    return counts


class MixtureDataset(Dataset):
    """Instance ``i`` of a mixture (any ``i >= 0``: epochs continue the same stream)."""

    def __init__(
        self, config: MixtureConfig, seq_len: int, seed: int = 0, *, documents: bool = False
    ) -> None:
        """``documents``: items are ``{"input_ids", "doc_ids"}`` (document masking)."""
        self.config, self.seq_len, self.seed = config, seq_len, seed
        self.documents = documents
        self.sources = [SourceSequences(s.paths, seq_len, s.name) for s in config.sources]
        hashes = {s.tokenizer_sha256 for s in self.sources}
        if len(hashes) > 1:
            raise TrainCoreConfigError(
                "mixture sources were tokenized with different tokenizers; tokenize every "
                "source with the same --tokenizer"
            )
        self.tokenizer_sha256 = hashes.pop()
        sizes = [s.num_sequences for s in self.sources]
        weights = [
            float(c.weight) if c.weight is not None else n / sum(sizes)
            for c, n in zip(config.sources, sizes)
        ]
        self.shares = [w / sum(weights) for w in weights]
        names = [s.name for s in config.sources]
        self.counts = _period_counts(self.shares, config.period, names)
        self._cum = np.concatenate([[0], np.cumsum(self.counts)]).tolist()
        self._keys = [name_key(n) for n in names]
        self.num_sequences = config.num_sequences or sum(sizes)

    def __len__(self) -> int:
        return self.num_sequences

    def _slot(self, i: int) -> tuple[int, int]:
        """(period, permuted slot) of instance ``i``."""
        r, t = divmod(i, self.config.period)
        return r, FeistelPermutation(self.config.period, hash_ints(self.seed, r))(t)

    def locate(self, i: int) -> tuple[int, int]:
        """(source index, window index in that source) of instance ``i``."""
        r, slot = self._slot(i)
        s = bisect_right(self._cum, slot) - 1
        position = r * self.counts[s] + slot - self._cum[s]
        source = self.sources[s]
        repetition, q = divmod(position, source.num_sequences)
        key = hash_ints(self.seed, self._keys[s], repetition)
        return s, FeistelPermutation(source.num_sequences, key)(q)

    def __getitem__(self, i: int) -> torch.Tensor | dict[str, torch.Tensor]:
        s, k = self.locate(i)
        ids = torch.from_numpy(self.sources[s].sequence(k))  # [T + 1]
        if self.documents:
            return {"input_ids": ids, "doc_ids": torch.from_numpy(self.sources[s].document_ids(k))}
        return ids

    def sequence_with_documents(self, i: int) -> dict[str, torch.Tensor]:
        """Instance ``i`` with its document structure: ``input_ids [T + 1]``, ``doc_ids [T + 1]``
        (0, 1, ... per document) and ``cu_seqlens`` of the ``T`` inputs (the varlen-attention
        boundaries: document d spans inputs ``cu[d]:cu[d + 1]``)."""
        s, k = self.locate(i)
        doc_ids = self.sources[s].document_ids(k)
        inputs = doc_ids[:-1]
        cuts = np.flatnonzero(inputs[1:] != inputs[:-1]) + 1
        cu = np.concatenate([[0], cuts, [len(inputs)]]).astype(np.int32)
        return {
            "input_ids": torch.from_numpy(self.sources[s].sequence(k)),
            "doc_ids": torch.from_numpy(doc_ids),
            "cu_seqlens": torch.from_numpy(cu),
        }

    def source_positions(self, consumed: int) -> dict[str, int]:
        """How many instances each source has supplied after the first ``consumed`` ones."""
        r, t = divmod(consumed, self.config.period)
        positions = [r * c for c in self.counts]
        perm = FeistelPermutation(self.config.period, hash_ints(self.seed, r))
        for u in range(t):
            positions[bisect_right(self._cum, perm(u)) - 1] += 1
        return {c.name: p for c, p in zip(self.config.sources, positions)}

    @property
    def fingerprint(self) -> str:
        """Identifies the data order: sources, their shards and sizes, shares, seq_len, seed."""
        desc = {
            "sources": [
                [c.name, [s.meta_path.name for s in src.shards], src.num_tokens, n]
                for c, src, n in zip(self.config.sources, self.sources, self.counts)
            ],
            "period": self.config.period,
            "seq_len": self.seq_len,
            "seed": self.seed,
            "tokenizer": self.tokenizer_sha256,
        }
        return hashlib.sha256(json.dumps(desc).encode()).hexdigest()[:16]

    def describe(self, instances: int | None = None) -> list[dict]:
        """Per source: sequences available, natural and target share, and the repetitions that
        ``instances`` (default: one epoch) imply (> 1: upsampled, < 1: downsampled)."""
        instances = self.num_sequences if instances is None else instances
        total = sum(s.num_sequences for s in self.sources)
        return [
            {
                "name": src.name,
                "sequences": src.num_sequences,
                "natural_share": src.num_sequences / total,
                "share": c / self.config.period,
                "repetitions": instances * c / self.config.period / src.num_sequences,
            }
            for src, c in zip(self.sources, self.counts)
        ]


class SequentialSequences(Dataset):
    """Every window of some shards, in order (validation)."""

    def __init__(self, paths: list[str], seq_len: int, *, documents: bool = False) -> None:
        self.source = SourceSequences(paths, seq_len, "validation")
        self.documents = documents

    def __len__(self) -> int:
        return self.source.num_sequences

    def __getitem__(self, k: int) -> torch.Tensor | dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.source.sequence(k))
        if self.documents:
            return {"input_ids": ids, "doc_ids": torch.from_numpy(self.source.document_ids(k))}
        return ids
