"""Three real text domains, read where they live (nothing downloaded), for tests and small runs.

- **literature**: Tiny Shakespeare, its speeches (blank-line separated) grouped in file order
  into documents of at least ``min_chars`` characters;
- **code**: the ``.py`` files of this interpreter's standard library
  (``sysconfig.get_paths()["stdlib"]``), one document per file, tests and site-packages left out;
- **math**: generated arithmetic worksheets, seeded, each problem with its answer; every answer
  can be checked (``check_math_document``) by evaluating the problem's expression.

``write_corpus`` writes them as Dolma documents (``documents/<domain>.jsonl``), the input of
``olmo-lm curate`` and ``olmo-lm tokenize``.
"""

from __future__ import annotations

import ast
import operator
import random
import re
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.documents import Document, read_documents, write_documents

DOMAINS = ("literature", "code", "math")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_PROBLEM = re.compile(r"^Problem \d+: What is (.+)\?$")
_ANSWER = re.compile(r"^Answer: (-?\d+)$")


def literature_documents(shakespeare: str | Path, min_chars: int = 1500) -> Iterator[Document]:
    """Tiny Shakespeare as documents of consecutive speeches, each >= ``min_chars`` long (the
    last one may be shorter)."""
    path = Path(shakespeare)
    if not path.is_file():
        raise TrainCoreConfigError(f"{path} not found; pass the path of tinyshakespeare.txt")
    speeches = [d.text for d in read_documents(path, split_paragraphs=True)]
    group: list[str] = []
    k = 0
    for speech in speeches:
        group.append(speech)
        if sum(len(s) for s in group) >= min_chars:
            yield Document(f"shakespeare-{k}", "\n\n".join(group), str(path))
            group, k = [], k + 1
    if group:
        yield Document(f"shakespeare-{k}", "\n\n".join(group), str(path))


def stdlib_dir() -> Path:
    """This interpreter's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def code_documents(limit: int | None = None) -> Iterator[Document]:
    """The standard library's ``.py`` files (sorted by path; tests, site-packages and files that
    are not UTF-8 left out), at most ``limit`` of them."""
    root = stdlib_dir()
    skip = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
    n = 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if skip & set(rel.parts[:-1]):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text.strip():
            continue
        yield Document(f"stdlib/{rel.as_posix()}", text, str(path))
        n += 1
        if limit is not None and n >= limit:
            return


def _expression(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return str(rng.randint(0, 99))
    op = rng.choice(["+", "-", "*"])
    left, right = _expression(rng, depth - 1), _expression(rng, depth - 1)
    text = f"{left} {op} {right}"
    return f"({text})" if rng.random() < 0.5 else text


def evaluate(expression: str) -> int:
    """The value of an integer ``+ - *`` expression (parsed, never ``eval``-ed)."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        raise ValueError(f"not an integer + - * expression: {expression!r}")

    return value(ast.parse(expression, mode="eval").body)


def math_documents(n: int = 200, seed: int = 0, problems: int = 8) -> Iterator[Document]:
    """``n`` worksheets of ``problems`` arithmetic problems, each followed by its answer."""
    rng = random.Random(seed)
    for d in range(n):
        lines = []
        for p in range(problems):
            expr = _expression(rng, depth=rng.randint(1, 3))
            lines += [f"Problem {p + 1}: What is {expr}?", f"Answer: {evaluate(expr)}", ""]
        yield Document(f"math-{seed}-{d}", "\n".join(lines).rstrip("\n") + "\n", "generated")


def check_math_document(text: str) -> tuple[int, int]:
    """(answers right, problems) of a worksheet: each ``Answer:`` is checked against its
    problem's expression."""
    right = total = 0
    expr = None
    for line in text.splitlines():
        if m := _PROBLEM.match(line):
            expr, total = m.group(1), total + 1
        elif (m := _ANSWER.match(line)) and expr is not None:
            right += int(m.group(1)) == evaluate(expr)
            expr = None
    return right, total


def domain_documents(
    domain: str, *, shakespeare: str | Path, seed: int = 0, limit: int | None = None
) -> Iterator[Document]:
    """The documents of one of ``DOMAINS``."""
    if domain == "literature":
        docs = literature_documents(shakespeare)
    elif domain == "code":
        docs = code_documents(limit)
    elif domain == "math":
        docs = math_documents(limit or 200, seed)
    else:
        raise TrainCoreConfigError(f"unknown domain {domain!r}; use one of {DOMAINS}")
    for k, doc in enumerate(docs):
        if limit is not None and k >= limit:
            return
        yield doc


def write_corpus(
    out: str | Path,
    *,
    shakespeare: str | Path,
    domains: tuple[str, ...] = DOMAINS,
    seed: int = 0,
    limit: int | None = None,
) -> dict[str, Path]:
    """Write each domain to ``out/documents/<domain>.jsonl``; returns domain -> file."""
    files = {}
    for domain in domains:
        path = Path(out) / "documents" / f"{domain}.jsonl"
        docs = domain_documents(domain, shakespeare=shakespeare, seed=seed, limit=limit)
        write_documents(path, docs)
        files[domain] = path
    return files
