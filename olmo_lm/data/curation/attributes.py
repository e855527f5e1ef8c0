"""Where attributes live and how they are read: Dolma's layout.

A documents file ``ROOT/documents/REL.jsonl`` has its attributes of experiment ``NAME`` in
``ROOT/attributes/NAME/REL.jsonl``: one JSON line per document, in document order,
``{"id": ..., "attributes": {"<tagger>__<attribute>": value}}``. (A documents file outside a
``documents/`` folder gets ``attributes/NAME/<file>`` in its own folder.) Dolma's taggers write
spans ``[[start, end, score]]``; document-level values are plain numbers here, and span
attributes (duplicate paragraphs) are ``[[start, end], ...]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError


def layout_root(doc_file: Path) -> tuple[Path, Path]:
    """(root holding ``documents/``, the file's path relative to ``documents/``)."""
    doc_file = Path(doc_file)
    for parent in doc_file.parents:
        if parent.name == "documents":
            return parent.parent, doc_file.relative_to(parent)
    return doc_file.parent, Path(doc_file.name)


def attributes_path(doc_file: str | Path, experiment: str) -> Path:
    """The attributes file of ``doc_file`` for ``experiment``."""
    root, rel = layout_root(Path(doc_file))
    return root / "attributes" / experiment / rel


def write_attributes(path: Path, rows: Iterable[tuple[str, dict]]) -> int:
    """Write ``(document id, attributes)`` rows as attribute JSONL; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for doc_id, attrs in rows:
            f.write(json.dumps({"id": doc_id, "attributes": attrs}) + "\n")
            n += 1
    tmp.replace(path)  # a half-written attributes file is never taken for a finished one
    return n


def read_attributes(doc_file: str | Path, experiments: Iterable[str]) -> dict[str, dict]:
    """Document id -> the attributes of every experiment, merged."""
    merged: dict[str, dict] = {}
    for experiment in experiments:
        path = attributes_path(doc_file, experiment)
        if not path.exists():
            raise TrainCoreConfigError(
                f"no attributes {path} for {doc_file}; run `olmo-lm curate tag` (or `dedup`) "
                f"with --experiment {experiment} first"
            )
        with path.open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                merged.setdefault(str(row["id"]), {}).update(row["attributes"])
    return merged
