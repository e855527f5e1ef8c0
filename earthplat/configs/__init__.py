"""The shipped experiment configs (YAML), found through the package wherever it is installed.

Sections: ``finetune`` (``earthplat finetune`` examples; the task registry names one per task
as the platform's default), ``eval`` (the ``finetune`` protocol of ``earthplat evaluate``) and
``pretrain``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from earthplat.errors import EarthplatError

SECTIONS = ("finetune", "eval", "pretrain")


def config_dir(section: str) -> Path:
    """The folder of a section's shipped configs."""
    if section not in SECTIONS:
        raise EarthplatError(f"unknown config section {section!r}; known: {', '.join(SECTIONS)}")
    return Path(str(files(__name__) / section))


def shipped(section: str) -> list[str]:
    """The names of a section's shipped configs."""
    return sorted(p.stem for p in config_dir(section).glob("*.yaml"))


def config_path(section: str, name: str) -> Path:
    """The shipped config ``name`` (with or without ``.yaml``) of ``section``; an unknown name
    raises, listing the shipped ones."""
    path = config_dir(section) / f"{Path(str(name)).stem}.yaml"
    if not path.is_file():
        raise EarthplatError(
            f"no shipped {section} config {name!r}; shipped: {', '.join(shipped(section))}"
        )
    return path
