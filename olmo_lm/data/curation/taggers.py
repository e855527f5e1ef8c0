"""Document taggers: each maps a text to named numbers, written as attributes.

Registered by name in ``TAGGERS`` (``olmo-lm curate tag --taggers [...]`` picks them); an
attribute is called ``<tagger>__<name>``, e.g. ``repetition__dup_line_frac``. The measures are
the Gopher rules' (Rae et al. 2021) that Dolma reimplements:

- ``length``: characters, words, lines and mean word length;
- ``repetition``: the fraction of lines (and of their characters) that repeat an earlier line,
  the fraction of characters in the most frequent word 2/3/4-gram, and in word 5-grams that
  occur more than once;
- ``char_classes``: alphabetic, digit, whitespace, upper-case, punctuation and non-ASCII
  character fractions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.curation.attributes import attributes_path, write_attributes
from olmo_lm.data.documents import find_files, read_documents

TAGGERS: dict[str, Callable[[str], dict[str, float]]] = {}
_WORD = re.compile(r"\S+")
_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def tagger(name: str):
    """Register a tagger under ``name``."""

    def register(fn: Callable[[str], dict[str, float]]):
        TAGGERS[name] = fn
        return fn

    return register


@tagger("length")
def length(text: str) -> dict[str, float]:
    words = _WORD.findall(text)
    return {
        "chars": len(text),
        "words": len(words),
        "lines": text.count("\n") + (1 if text and not text.endswith("\n") else 0),
        "mean_word_length": sum(map(len, words)) / len(words) if words else 0.0,
    }


def _ngram_char_fractions(words: list[str]) -> dict[str, float]:
    total = sum(map(len, words)) or 1
    out = {}
    for n in (2, 3, 4):
        grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        if grams:
            top, count = grams.most_common(1)[0]
            out[f"top_{n}gram_char_frac"] = sum(map(len, top)) * count / total if count > 1 else 0.0
        else:
            out[f"top_{n}gram_char_frac"] = 0.0
    # characters covered by 5-grams that occur more than once (Gopher's duplicate n-gram rule)
    n = 5
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if grams[tuple(words[i : i + n])] > 1:
            covered[i : i + n] = [True] * n
    out["dup_5gram_char_frac"] = sum(len(w) for w, c in zip(words, covered) if c) / total
    return out


@tagger("repetition")
def repetition(text: str) -> dict[str, float]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    seen: set[str] = set()
    dup_lines = dup_chars = 0
    for line in lines:
        if line in seen:
            dup_lines += 1
            dup_chars += len(line)
        seen.add(line)
    line_chars = sum(map(len, lines)) or 1
    return {
        "dup_line_frac": dup_lines / len(lines) if lines else 0.0,
        "dup_line_char_frac": dup_chars / line_chars,
        **_ngram_char_fractions(_WORD.findall(text)),
    }


@tagger("char_classes")
def char_classes(text: str) -> dict[str, float]:
    n = len(text) or 1
    return {
        "alpha_frac": sum(c.isalpha() for c in text) / n,
        "digit_frac": sum(c.isdigit() for c in text) / n,
        "whitespace_frac": sum(c.isspace() for c in text) / n,
        "upper_frac": sum(c.isupper() for c in text) / n,
        "punct_frac": sum(c in _PUNCT for c in text) / n,
        "non_ascii_frac": sum(ord(c) > 127 for c in text) / n,
    }


def tag_text(text: str, taggers: Iterable[str]) -> dict[str, float]:
    """Every named tagger's attributes of ``text``, keyed ``<tagger>__<name>``."""
    out: dict[str, float] = {}
    for name in taggers:
        if name not in TAGGERS:
            raise TrainCoreConfigError(f"unknown tagger {name!r}; use some of {sorted(TAGGERS)}")
        out.update({f"{name}__{k}": v for k, v in TAGGERS[name](text).items()})
    return out


def tag_files(
    documents: str | Path | Iterable[str | Path],
    taggers: Iterable[str] = tuple(TAGGERS),
    experiment: str = "tags",
    *,
    glob: str | None = None,
) -> list[Path]:
    """Tag every document of every documents file; returns the attribute files written."""
    taggers = list(taggers)
    tag_text("", taggers)  # unknown names fail before any file is read
    written = []
    for file in find_files(documents, glob):
        rows = ((d.id, tag_text(d.text, taggers)) for d in read_documents(file))
        path = attributes_path(file, experiment)
        write_attributes(path, rows)
        written.append(path)
    return written
