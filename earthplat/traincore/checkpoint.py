"""Periodic checkpoints plus ``last``, and finding where a run directory should resume from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint

from earthplat.traincore.errors import TrainCoreConfigError

_STEP_RE = re.compile(r"step=(\d+)")


@dataclass
class CheckpointConfig:
    """When checkpoints are written and how many are kept."""

    every_n_steps: int | None = 100
    """Write a checkpoint every this many optimizer steps (``None``: only at epoch ends)."""
    every_n_epochs: int | None = None
    """Also write one every this many epochs."""
    keep: int = 2
    """Periodic checkpoints kept (newest first); ``-1`` keeps all. ``last`` is always kept."""
    save_last: bool = True
    """Maintain ``last.ckpt``, the one a restarted run resumes from."""
    dirname: str = "checkpoints"
    """Sub-directory of the run directory."""
    monitor: str | None = None
    """Also keep ``best.ckpt``: the checkpoint with the best value of this logged metric (e.g.
    ``val/miou``), written after each validation. ``None``: no best checkpoint."""
    mode: str = "max"
    """``max`` or ``min``: which direction of ``monitor`` is better."""

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise TrainCoreConfigError(f"checkpoint.mode {self.mode!r} must be 'max' or 'min'")
        if self.every_n_steps is not None and self.every_n_steps < 1:
            raise TrainCoreConfigError("checkpoint.every_n_steps must be >= 1 or null")
        if self.keep == 0 or self.keep < -1:
            raise TrainCoreConfigError("checkpoint.keep must be >= 1, or -1 to keep all")

    def build(self, run_dir: str | Path) -> ModelCheckpoint:
        # monitoring "step" in max mode keeps the newest `keep` checkpoints
        return ModelCheckpoint(
            dirpath=Path(run_dir) / self.dirname,
            filename="step={step:08d}",
            auto_insert_metric_name=False,
            monitor="step",
            mode="max",
            save_top_k=self.keep,
            save_last=self.save_last,
            every_n_train_steps=self.every_n_steps,
            every_n_epochs=self.every_n_epochs,
            save_on_train_epoch_end=True,
        )

    def build_best(self, run_dir: str | Path) -> ModelCheckpoint | None:
        """The ``best.ckpt`` tracker, or ``None`` without ``monitor``. Its best score travels in
        every checkpoint, so a resumed run keeps comparing against it."""
        if self.monitor is None:
            return None
        return BestCheckpoint(
            dirpath=Path(run_dir) / self.dirname,
            filename=BEST,
            auto_insert_metric_name=False,
            monitor=self.monitor,
            mode=self.mode,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
        )


BEST = "best"
"""File stem of the best checkpoint (``checkpoints/best.ckpt``)."""


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` keeping one ``best.ckpt``, whose tracker state survives a resume.

    A periodic ``last.ckpt`` is written before the validation of the same step runs, so the
    tracker state it carries can miss the newest best. ``best.ckpt`` carries its own state
    (written after that validation), so on restore the better of the two is kept; without
    this a resumed run could overwrite a better ``best.ckpt`` with a worse score."""

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        saved = self._state_in_best_file()
        if saved is not None and self._better(saved.get("best_model_score")):
            super().load_state_dict(saved)

    def _state_in_best_file(self) -> dict | None:
        import torch

        path = Path(self.dirpath or "") / f"{BEST}{self.FILE_EXTENSION}"
        if not path.is_file():  # absent, or a sharded (directory) checkpoint
            return None
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return (ckpt.get("callbacks") or {}).get(self.state_key)

    def _better(self, score) -> bool:
        if score is None:
            return False
        if self.best_model_score is None or not self.best_model_path:
            return True
        if self.mode == "max":
            return bool(score > self.best_model_score)
        return bool(score < self.best_model_score)


def best_checkpoint(trainer) -> Path | None:
    """The best checkpoint a ``CheckpointConfig.build_best`` tracker wrote in this run, if any
    (the same answer on every rank: the tracker's path is broadcast from rank 0)."""
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, BestCheckpoint) and cb.best_model_path:
            return Path(cb.best_model_path)
    return None


def find_resume_checkpoint(run_dir: str | Path, dirname: str = "checkpoints") -> Path | None:
    """The checkpoint a run in ``run_dir`` resumes from: ``last``, else the highest step."""
    ckpt_dir = Path(run_dir) / dirname
    if not ckpt_dir.is_dir():
        return None
    last = ckpt_dir / "last.ckpt"
    if last.exists():
        return last
    steps = []
    for path in ckpt_dir.glob("step=*.ckpt"):
        m = _STEP_RE.search(path.name)
        if m:
            steps.append((int(m.group(1)), path))
    return max(steps)[1] if steps else None
