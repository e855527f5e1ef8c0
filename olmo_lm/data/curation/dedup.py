"""Deduplication as attributes: exact duplicate paragraphs and near-duplicate documents.

Both passes read the documents in corpus order (files sorted, lines in order) and mark every
occurrence *after the first*, so the filter keeps one copy.

- **exact paragraphs** (Dolma's BFF): a paragraph is a blank-line separated block of at least
  ``min_paragraph_chars`` characters (shorter ones, like "ROMEO:" or "return x", are common
  without being copies); its whitespace-stripped text goes into a ``BloomFilter``. Attributes:
  ``exact__duplicate_spans`` ``[[start, end], ...]`` (character spans of repeated paragraphs)
  and ``exact__duplicate_frac`` (their share of the paragraphs' characters).
- **near-duplicate documents**: MinHash signatures of word 5-gram shingles, LSH banding for
  candidates, candidates kept at an estimated Jaccard >= ``threshold``, clusters by union-find.
  Attributes: ``near__duplicate`` (1 for every member of a cluster but its first document),
  ``near__cluster`` (the id of that first document) and ``near__jaccard`` (estimated similarity
  to it; 1.0 for unclustered documents).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from olmo_lm.data.curation.attributes import attributes_path, write_attributes
from olmo_lm.data.curation.bloom import BloomFilter
from olmo_lm.data.curation.minhash import (
    MinHasher,
    estimated_jaccard,
    lsh_candidates,
    shingles,
)
from olmo_lm.data.documents import find_files, read_documents

_SEPARATOR = re.compile(r"\n[ \t]*\n")


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` character spans of the blank-line separated paragraphs of ``text``
    (whitespace at their ends excluded)."""
    spans, start = [], 0
    for m in [*_SEPARATOR.finditer(text), None]:
        end = m.start() if m else len(text)
        block = text[start:end]
        stripped = block.strip()
        if stripped:
            lead = len(block) - len(block.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
        start = m.end() if m else len(text)
    return spans


def remove_spans(text: str, spans: Iterable[Iterable[int]]) -> str:
    """``text`` without the character ``spans`` (each with the whitespace that follows it)."""
    out, pos = [], 0
    for start, end in sorted(tuple(s) for s in spans):
        out.append(text[pos:start])
        pos = end + (len(text[end:]) - len(text[end:].lstrip()))
    out.append(text[pos:])
    return "".join(out)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller index (the earlier document) stays the root
            self.parent[max(ra, rb)] = min(ra, rb)


def dedup_files(
    documents: str | Path | Iterable[str | Path],
    experiment: str = "dedup",
    *,
    glob: str | None = None,
    min_paragraph_chars: int = 20,
    error_rate: float = 1e-6,
    ngram: int = 5,
    bands: int = 20,
    rows: int = 6,
    threshold: float = 0.7,
    seed: int = 0,
) -> dict[str, int]:
    """Tag exact duplicate paragraphs and near-duplicate documents over all of ``documents``
    together; writes one attributes file per documents file and returns counts."""
    files = find_files(documents, glob)
    docs = [(f, d.id, d.text) for f in files for d in read_documents(f)]
    spans = [paragraph_spans(text) for _, _, text in docs]

    # exact paragraphs, first occurrence kept
    capacity = sum(len(s) for s in spans)
    bloom = BloomFilter(capacity, error_rate)
    exact: list[dict] = []
    for (_, _, text), doc_spans in zip(docs, spans):
        dups, total, dup_chars = [], 0, 0
        for start, end in doc_spans:
            total += end - start
            if end - start < min_paragraph_chars:
                continue
            if bloom.add(text[start:end].encode("utf-8")):
                dups.append([start, end])
                dup_chars += end - start
        exact.append(
            {"exact__duplicate_spans": dups, "exact__duplicate_frac": dup_chars / max(1, total)}
        )

    # near-duplicate documents
    hasher = MinHasher(bands * rows, seed)
    sets = [shingles(text, ngram) for _, _, text in docs]
    has_words = [i for i, s in enumerate(sets) if s]
    sigs = np.stack([hasher.signature(sets[i]) for i in has_words]) if has_words else None
    clusters = _UnionFind(len(docs))
    if sigs is not None:
        for a, b in lsh_candidates(sigs, bands, rows):
            if estimated_jaccard(sigs[a], sigs[b]) >= threshold:
                clusters.union(has_words[a], has_words[b])
    row_of = {doc: k for k, doc in enumerate(has_words)}
    near = []
    for i in range(len(docs)):
        root = clusters.find(i)
        sim = 1.0 if root == i else estimated_jaccard(sigs[row_of[i]], sigs[row_of[root]])
        first = docs[root][1]
        near.append({"near__duplicate": int(root != i), "near__cluster": first})
        near[-1]["near__jaccard"] = sim

    for file in files:
        rows_of_file = (
            (doc_id, {**e, **n}) for (f, doc_id, _), e, n in zip(docs, exact, near) if f == file
        )
        write_attributes(attributes_path(file, experiment), rows_of_file)
    return {
        "documents": len(docs),
        "duplicate_paragraphs": sum(len(e["exact__duplicate_spans"]) for e in exact),
        "near_duplicate_documents": sum(n["near__duplicate"] for n in near),
    }
