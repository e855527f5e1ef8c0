"""Documents from files: what a "document" is for tokenizing, tokenizer training and curation.

- a JSONL file (``.jsonl`` or ``.jsonl.gz``, Dolma's documents format): one document per line,
  its text in a field (``text`` by default), its id in ``id`` (else ``<file stem>-<line>``);
- any other file is UTF-8 text: one document per file, or one per blank-line-separated block
  when ``split_paragraphs`` is on (Tiny Shakespeare's speeches);
- a folder is searched recursively with a glob (default: ``.txt`` and ``.jsonl[.gz]`` files).

Files are listed sorted, so every run sees the same documents in the same order.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError

DEFAULT_GLOBS = ("**/*.txt", "**/*.jsonl", "**/*.jsonl.gz")
"""What a folder contributes when no glob is given."""
_BLANK_LINES = re.compile(r"\n[ \t]*\n+")


@dataclass(frozen=True)
class Document:
    """One document: its id (unique within its file), text and the file it came from."""

    id: str
    text: str
    source: str


def is_jsonl(path: Path) -> bool:
    """Whether ``path`` holds one JSON document per line (by its name)."""
    return path.name.endswith((".jsonl", ".jsonl.gz"))


def as_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """One path or several, as a list (the CLI passes either)."""
    if isinstance(paths, str | Path):
        return [Path(paths)]
    return [Path(p) for p in paths]


def find_files(paths: str | Path | Iterable[str | Path], glob: str | None = None) -> list[Path]:
    """The document files under ``paths``: files as given, folders searched with ``glob``."""
    found: list[Path] = []
    for path in as_paths(paths):
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            patterns = (glob,) if glob else DEFAULT_GLOBS
            hits = {p for pattern in patterns for p in path.glob(pattern) if p.is_file()}
            found.extend(sorted(hits))
        else:
            raise TrainCoreConfigError(f"--input {path} does not exist; pass files or folders")
    if not found:
        raise TrainCoreConfigError(
            f"no document files under {[str(p) for p in as_paths(paths)]}; pass .txt/.jsonl "
            "files, or a folder and a --glob that matches its files (e.g. '**/*.py')"
        )
    return list(dict.fromkeys(found))  # a file named twice counts once


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_documents(
    path: str | Path, *, split_paragraphs: bool = False, text_field: str = "text"
) -> Iterator[Document]:
    """The documents of one file, in file order."""
    path = Path(path)
    try:
        if is_jsonl(path):
            yield from _read_jsonl(path, text_field)
            return
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TrainCoreConfigError(
            f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); convert it or leave it out"
        ) from e
    if not split_paragraphs:
        yield Document(path.name, text, str(path))
        return
    blocks = [b for b in _BLANK_LINES.split(text) if b.strip()]
    for k, block in enumerate(blocks):
        yield Document(f"{path.name}-{k}", block.strip("\n"), str(path))


def _read_jsonl(path: Path, text_field: str) -> Iterator[Document]:
    with _open_text(path) as f:
        for line_no, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TrainCoreConfigError(f"{path}:{line_no + 1} is not JSON ({e.msg})") from e
            text = row.get(text_field) if isinstance(row, dict) else None
            if not isinstance(text, str):
                raise TrainCoreConfigError(
                    f"{path}:{line_no + 1} has no string field {text_field!r}; pass "
                    "--text_field with the field that holds the text"
                )
            doc_id = row.get("id", f"{path.name.split('.')[0]}-{line_no}")
            yield Document(str(doc_id), text, str(path))


def write_documents(path: str | Path, documents: Iterable[Document]) -> int:
    """Write documents as Dolma JSONL (``id``, ``text``, ``source``); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    n = 0
    with opener(path, "wt", encoding="utf-8") as f:
        for doc in documents:
            f.write(json.dumps({"id": doc.id, "text": doc.text, "source": doc.source}) + "\n")
            n += 1
    return n
