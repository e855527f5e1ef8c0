"""Saves the process's random-number generators in checkpoints and restores them on resume.

Lightning checkpoints hold weights, optimizer, scheduler and loop state but not the global RNGs, so
dropout masks and other random ops of a resumed run would differ from an uninterrupted one. The
state is restored in ``on_train_start``, after Lightning has built the first dataloader iterator
(which draws a seed from the torch RNG) so the draws line up with the uninterrupted run.
Datasets should take their randomness from (seed, epoch, index), not from the global RNGs.
"""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def _numpy_state_to_plain(state: tuple) -> list:
    name, keys, pos, has_gauss, cached = state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


class RngStateCallback(L.Callback):
    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "python": random.getstate(),
            # plain lists and tensors only, so weights-only checkpoint loading accepts them
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        random.setstate(state["python"])
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
