"""Keep or drop documents by their attributes, and cut duplicate paragraphs out of the rest.

A rule is a small expression over attribute names (parsed with ``ast``, never ``eval``-ed):
numbers, attribute names, ``+ - * /``, comparisons, ``and``/``or``/``not``, e.g.::

    --exclude "length__words < 50 or char_classes__alpha_frac < 0.5 or near__duplicate == 1"

``exclude`` drops the documents it is true for; ``include`` keeps only those. With
``drop_duplicate_paragraphs`` the spans in ``exact__duplicate_spans`` are removed from the kept
documents (a document left empty is dropped). Output mirrors Dolma: ``OUT/documents/REL.jsonl``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.curation.attributes import layout_root, read_attributes
from olmo_lm.data.curation.dedup import remove_spans
from olmo_lm.data.documents import Document, find_files, read_documents, write_documents

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_BINARY[ast.Div] = operator.truediv
_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def compile_rule(expression: str) -> Callable[[dict], bool]:
    """``expression`` as a function of one document's attributes."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as e:
        raise TrainCoreConfigError(f"filter rule {expression!r} does not parse: {e.msg}") from e

    def value(node: ast.AST, attrs: dict):
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in attrs:
                raise TrainCoreConfigError(
                    f"filter rule names {node.id!r}, which the attributes lack; known: "
                    f"{sorted(attrs)} (tag with the tagger that makes it first)"
                )
            return attrs[node.id]
        if isinstance(node, ast.BoolOp):
            parts = (bool(value(v, attrs)) for v in node.values)
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
            inner = value(node.operand, attrs)
            return not inner if isinstance(node.op, ast.Not) else -inner
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left, attrs), value(node.right, attrs))
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            left = value(node.left, attrs)
            for op, comparator in zip(node.ops, node.comparators):
                right = value(comparator, attrs)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        raise TrainCoreConfigError(
            f"filter rule {expression!r} uses {ast.unparse(node)!r}; rules may use numbers, "
            "attribute names, + - * /, comparisons and and/or/not"
        )

    return lambda attrs: bool(value(tree, attrs))


def filter_files(
    documents: str | Path | Iterable[str | Path],
    out: str | Path,
    experiments: Iterable[str],
    *,
    exclude: str | None = None,
    include: str | None = None,
    drop_duplicate_paragraphs: bool = False,
    glob: str | None = None,
) -> dict[str, int]:
    """Write the documents that pass to ``out/documents/``; returns counts."""
    experiments = list(experiments)
    drop = compile_rule(exclude) if exclude else None
    keep = compile_rule(include) if include else None
    out = Path(out)
    counts = {"documents": 0, "kept": 0, "paragraphs_removed": 0}
    for file in find_files(documents, glob):
        _, rel = layout_root(file)
        target = out / "documents" / rel
        if target.resolve() == file.resolve():
            raise TrainCoreConfigError(f"--out {out} would overwrite {file}; pick another folder")
        attrs = read_attributes(file, experiments)
        kept: list[Document] = []
        for doc in read_documents(file):
            counts["documents"] += 1
            a = attrs.get(doc.id)
            if a is None:
                raise TrainCoreConfigError(
                    f"document {doc.id!r} of {file} has no attributes; re-run the taggers on it"
                )
            if (drop is not None and drop(a)) or (keep is not None and not keep(a)):
                continue
            text = doc.text
            if drop_duplicate_paragraphs and a.get("exact__duplicate_spans"):
                text = remove_spans(text, a["exact__duplicate_spans"])
                counts["paragraphs_removed"] += len(a["exact__duplicate_spans"])
                if not text.strip():
                    continue
            kept.append(Document(doc.id, text, doc.source))
        write_documents(target, kept)
        counts["kept"] += len(kept)
    return counts
