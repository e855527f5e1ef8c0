"""``BestCheckpoint``: a resumed run keeps the best score that ``best.ckpt`` itself recorded,
even when the ``last.ckpt`` it resumes from was written before that validation."""

from __future__ import annotations

import pytest
import torch

from earthplat.traincore.checkpoint import BestCheckpoint, CheckpointConfig
from earthplat.traincore.errors import TrainCoreConfigError


def _tracker(run_dir, mode="max") -> BestCheckpoint:
    cb = CheckpointConfig(monitor="val/miou", mode=mode).build_best(run_dir)
    assert isinstance(cb, BestCheckpoint)
    return cb


def _state(cb: BestCheckpoint, score: float | None, path: str) -> dict:
    return {
        "monitor": cb.monitor,
        "best_model_score": None if score is None else torch.tensor(score),
        "best_model_path": path,
        "current_score": None,
        "dirpath": cb.dirpath,
        "best_k_models": {path: torch.tensor(score)} if path else {},
        "kth_best_model_path": path,
        "kth_value": torch.tensor(score if score is not None else float("-inf")),
        "last_model_path": "",
    }


@pytest.mark.parametrize(("mode", "stale", "newer"), [("max", 0.5, 0.8), ("min", 0.8, 0.5)])
def test_resume_adopts_the_better_state_recorded_in_best_ckpt(tmp_path, mode, stale, newer):
    cb = _tracker(tmp_path, mode)
    best = tmp_path / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    torch.save({"callbacks": {cb.state_key: _state(cb, newer, str(best))}}, best)
    cb.load_state_dict(_state(cb, stale, str(best)))  # last.ckpt: before the newest best
    assert float(cb.best_model_score) == pytest.approx(newer)
    assert cb.best_model_path == str(best)


def test_resume_keeps_its_state_when_it_is_newer_or_there_is_no_best_file(tmp_path):
    cb = _tracker(tmp_path)
    cb.load_state_dict(_state(cb, 0.7, str(tmp_path / "checkpoints" / "best.ckpt")))
    assert float(cb.best_model_score) == pytest.approx(0.7)  # no best.ckpt on disk
    best = tmp_path / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    torch.save({"callbacks": {cb.state_key: _state(cb, 0.6, str(best))}}, best)
    fresh = _tracker(tmp_path)
    fresh.load_state_dict(_state(fresh, 0.7, str(best)))
    assert float(fresh.best_model_score) == pytest.approx(0.7)
    empty = _tracker(tmp_path)
    empty.load_state_dict(_state(empty, None, ""))  # the first best was lost from last.ckpt
    assert float(empty.best_model_score) == pytest.approx(0.6)


def test_checkpoint_mode_is_checked():
    with pytest.raises(TrainCoreConfigError, match="max' or 'min"):
        CheckpointConfig(monitor="val/loss", mode="lowest")
    assert CheckpointConfig().build_best("x") is None
