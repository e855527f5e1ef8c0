"""The design's dependency direction, checked on every import statement of the source tree
(module level and inside functions): ``api -> labeling -> earthplat``, ``olmo_lm ->
earthplat.traincore``, and ``earthplat.traincore`` imports nothing else of the project."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("earthplat", "olmo_lm", "labeling", "api")


def _imports(path: Path) -> set[str]:
    """Top-level package names (of this project) each import in ``path`` names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (  # importlib.import_module("api.jobs.worker") is an import too
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] in PACKAGES:
                found.add(".".join(parts[:2]) if parts[0] == "earthplat" else parts[0])
    return found


def _modules(root: str) -> list[Path]:
    return sorted((REPO / root).rglob("*.py"))


RULES = {
    "earthplat": lambda target: target not in ("api", "labeling", "olmo_lm"),
    "labeling": lambda target: target != "api" and target != "olmo_lm",
    "olmo_lm": lambda target: target in ("olmo_lm", "earthplat.traincore"),
}


@pytest.mark.parametrize("package", sorted(RULES))
def test_no_import_runs_back_up(package) -> None:
    bad = []
    for path in _modules(package):
        for target in _imports(path):
            if not RULES[package](target):
                bad.append(f"{path.relative_to(REPO)} imports {target}")
    assert not bad, "\n".join(bad)


def test_traincore_imports_nothing_else_of_the_project() -> None:
    bad = [
        f"{path.relative_to(REPO)} imports {target}"
        for path in _modules("earthplat/traincore")
        for target in _imports(path)
        if target != "earthplat.traincore"
    ]
    assert not bad, "\n".join(bad)


def test_the_rules_would_catch_a_violation(tmp_path) -> None:
    """The checker itself: an import inside a function is seen."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import importlib\n"
        "def f():\n    from api.jobs.worker import main\n    import labeling.models\n"
        "    importlib.import_module('olmo_lm.cli')\n"
    )
    assert _imports(bad) == {"api", "labeling", "olmo_lm"}
