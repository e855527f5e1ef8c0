"""The command lines a person reads: every flag of every command has help, summaries are whole
sentences, and expected errors are two lines with the fix, not a traceback."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest
from jsonargparse import ArgumentParser

from earthplat.cli import commands as earthplat_commands

INTERNAL = {"help", "config", "print_config"}


def _flatten(tree: dict, prefix: str) -> list[tuple[str, object]]:
    out = []
    for name, value in tree.items():
        if name == "_help":
            continue
        if isinstance(value, dict):
            assert value.get("_help"), f"command group {prefix} {name} has no help"
            out += _flatten(value, f"{prefix} {name}")
        else:
            out.append((f"{prefix} {name}", value))
    return out


def _all_commands() -> list[tuple[str, object]]:
    found = _flatten(earthplat_commands(), "earthplat")
    from olmo_lm import cli as olmo_cli

    if hasattr(olmo_cli, "commands"):
        found += _flatten(olmo_cli.commands(), "olmo-lm")
    return found


COMMANDS = _all_commands()


def _help_text(action) -> str:
    """An action's own help, without jsonargparse's ``(type: ..., default: ...)`` suffix."""
    text = action.help or ""
    text = re.sub(r"\((required, )?type: .*\)\s*$", "", text, flags=re.S)
    return re.sub(r"\(default: .*\)\s*$", "", text, flags=re.S).strip()


@pytest.mark.parametrize(("name", "fn"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_flag_has_a_help_line(name, fn) -> None:
    from jsonargparse import set_parsing_settings

    set_parsing_settings(docstring_parse_attribute_docstrings=True)  # as both mains do
    parser = ArgumentParser(exit_on_error=False)
    parser.add_function_arguments(fn)
    missing = [
        a.option_strings[0]
        for a in parser._actions
        if a.option_strings
        and a.dest not in INTERNAL
        and not a.dest.endswith(".help")
        and not _help_text(a)
    ]
    assert not missing, f"{name}: flags without help: {', '.join(missing)}"


@pytest.mark.parametrize(("name", "fn"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_summary_is_one_whole_sentence(name, fn) -> None:
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\n\n")[0]
    assert summary, f"{name} has no docstring"
    assert "\n" not in summary, f"{name}: the summary spans lines, so --help would cut it"
    assert summary.endswith("."), f"{name}: the summary is not a whole sentence: {summary!r}"


def test_the_top_level_help_lists_every_command_with_its_summary(capsys) -> None:
    from earthplat.cli import main

    with pytest.raises(SystemExit) as code:
        main(["--help"])
    assert code.value.code == 0
    text = capsys.readouterr().out
    for group in ("windows", "ingest", "dataset", "raster", "sensors", "predict", "evaluate"):
        assert re.search(rf"^\s+{group}\s+\S", text, flags=re.M), f"{group} shows no summary"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "earthplat.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_an_expected_error_is_one_line_with_the_fix_and_no_traceback(tmp_path) -> None:
    missing = tmp_path / "nope.tif"
    result = _run(
        "ingest",
        f"--dataset={tmp_path}/ds",
        "--layer=s2",
        "--modality=sentinel2_l1c",
        f"--paths=[{missing}]",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("earthplat: error:") and "Traceback" not in result.stderr
    debug = _run(
        "ingest",
        f"--dataset={tmp_path}/ds",
        "--layer=s2",
        "--modality=sentinel2_l1c",
        f"--paths=[{missing}]",
        "--debug",
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_an_unknown_modality_names_the_known_ones(tmp_path) -> None:
    result = _run(
        "dataset",
        "import-patches",
        f"--root={tmp_path}",
        f"--dataset={tmp_path}/ds",
        "--modality=sentinel3",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown modality 'sentinel3'" in result.stderr and "sentinel2_l1c" in result.stderr


def _undocumented(help_text: str) -> list[str]:
    """Options of an argparse help page whose text is only jsonargparse's type suffix."""
    entries, current = [], None
    for line in help_text.splitlines():
        if line.startswith("  -"):
            if current:
                entries.append(current)
            head, _, rest = line.strip().partition("  ")
            current = [head, rest.strip()]
        elif current is not None and line.startswith("    "):
            current[1] += " " + line.strip()
        elif current is not None:
            entries.append(current)
            current = None
    if current:
        entries.append(current)
    skip = ("-h", "-c", "--config", "--print_config")
    return [
        opt.split()[0].rstrip(",")
        for opt, text in entries
        if not opt.startswith(skip)
        and ".help" not in opt
        and (not text or text.startswith(("(type:", "(required, type:")))
    ]


def _lightning_pages() -> list[list[str]]:
    from earthplat.train.tasks import TASK_MODULES

    pages = [["finetune", "--help"], ["pretrain", "--help"]]
    pages += [["finetune", "--model.help", cls.__name__] for cls in TASK_MODULES.values()]
    pages.append(["finetune", "--data.help", "FinetuneDataModule"])
    return pages


HELP_PAGES = """
import contextlib, io, json, sys
from earthplat.cli import main
out = {}
for page in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            main(page)
        except SystemExit:
            pass
    out[" ".join(page)] = buf.getvalue()
print(json.dumps(out))
"""


def test_lightning_commands_document_every_flag() -> None:
    """``earthplat finetune|pretrain`` (LightningCLI): the trainer, every task module and the
    data module (one interpreter for all pages: LightningCLI is slow to import)."""
    import json

    pages = _lightning_pages()
    result = subprocess.run(
        [sys.executable, "-c", HELP_PAGES, json.dumps(pages)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    texts = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(texts) == len(pages)
    for page, text in texts.items():
        assert "--" in text, f"earthplat {page} printed no help"
        assert not _undocumented(text), f"earthplat {page}: {_undocumented(text)}"
