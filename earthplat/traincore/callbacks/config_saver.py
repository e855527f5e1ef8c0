"""Writes the resolved configuration of a run into its run directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import lightning as L
import yaml


def to_plain(obj: Any) -> Any:
    """Dataclasses, paths, tuples and enums as plain YAML/JSON-safe values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # plain field mapping: the file can be passed back with --config to rerun the job
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return repr(obj)


class ConfigSaverCallback(L.Callback):
    """Saves ``config`` as ``config.yaml`` (and the versions of the stack) when fitting starts.

    An existing file from an earlier attempt of the same run is kept as ``config.previous.yaml``
    when it differs, so a resumed run with changed settings leaves a trace.
    """

    def __init__(self, config: Any, run_dir: str | Path, filename: str = "config.yaml") -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.filename = filename

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        import lightning
        import torch

        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / self.filename
        text = yaml.safe_dump(to_plain(self.config), sort_keys=False)
        if path.exists() and path.read_text() != text:
            path.replace(path.with_name("config.previous.yaml"))
        path.write_text(text)
        versions = {
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__,
        }
        (self.run_dir / "environment.json").write_text(json.dumps(versions, indent=2))
