"""``FinetuneDataset``: chips of labelled windows as ``earthplat.batch.Sample``\\s.

Choices (documented here because they shape the metrics):

- train: each window gives ``train_chips_per_window`` chips per epoch at seeded random offsets,
  drawn from ``(seed, epoch, index)`` alone, so the data never depend on workers or resumes;
  the order comes from a ``ResumableSampler`` (exact resume from Lightning checkpoints).
  Augmentation (``augment``): a seeded horizontal flip and rot90, applied alike to inputs,
  pixel targets and boxes.
- val/test/predict: pixel tasks tile each window with non-overlapping ``chip_size`` chips; the
  last chip of a row/column is flush with the window edge, and the pixels it shares with the
  previous chip are unlabelled in its target, so each labelled pixel is scored exactly once.
  Window-level tasks (``TaskKind.per_window``) use one centred chip per window.
- a window smaller than ``chip_size`` is padded (valid = False, target ignored).
- multitemporal inputs keep their first ``num_periods`` periods, or are padded with
  valid = False periods (``earthplat.batch.fit_periods``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from earthplat.batch import ModalityData, Sample, fit_periods, prepare_modality, timestamps_of
from earthplat.data.dataset import Dataset
from earthplat.data.finetune.augment import (
    AUG_STREAM,
    CROP_STREAM,
    augment_array,
    crop,
    tile_starts,
)
from earthplat.data.finetune.config import FinetuneDataConfig
from earthplat.data.finetune.targets import ChipView, TargetContext, target_builder
from earthplat.data.layer import LayerReader
from earthplat.data.window import Window
from earthplat.errors import DataError
from earthplat.sensors import get_modality

CACHE_BYTES = 256 * 2**20
"""Budget of the in-memory cache of whole-window arrays, per dataset (and per worker): small
windows are read once per run, large ones are re-read as the LRU turns over."""


class FinetuneDataset(TorchDataset):
    """Chips of labelled windows as ``Sample``\\s (see the module docstring).

    ``mode``: ``train`` (random chips; indexed by ``(index, epoch)`` tuples from the train
    sampler, or an int for the current ``epoch``), ``eval`` (tiles or centred chips) or
    ``predict`` (tiles of every window, no target). Each task's target is built by its
    registry builder (``earthplat.data.finetune.targets``)."""

    def __init__(
        self, dataset: Dataset, windows: list[Window], config: FinetuneDataConfig, mode: str
    ) -> None:
        if mode not in ("train", "eval", "predict"):
            raise DataError(f"mode must be train, eval or predict, got {mode!r}")
        self.dataset, self.windows, self.config, self.mode = dataset, list(windows), config, mode
        self.epoch = 0
        kind = config.kind
        self.targets = None
        if mode != "predict" and config.label is not None and kind.target != "none":
            self.targets = target_builder(kind.target)
        self.context = TargetContext(dataset, config.label, config.classes)
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.chips: list[tuple[int, int, int, int, int]] = []
        """(window index, row0, col0, rows and columns already scored by the previous tile)."""
        if mode != "train":
            size = config.chip_size
            for wi, w in enumerate(self.windows):
                if mode == "eval" and kind.per_window:
                    r0, c0 = max(0, (w.height - size) // 2), max(0, (w.width - size) // 2)
                    self.chips.append((wi, r0, c0, 0, 0))
                    continue
                rows, cols = tile_starts(w.height, size), tile_starts(w.width, size)
                for i, r0 in enumerate(rows):
                    own_r = max(0, rows[i - 1] + size - r0) if i else 0
                    for k, c0 in enumerate(cols):
                        own_c = max(0, cols[k - 1] + size - c0) if k else 0
                        self.chips.append((wi, r0, c0, own_r, own_c))

    def __len__(self) -> int:
        if self.mode == "train":
            return len(self.windows) * self.config.train_chips_per_window
        return len(self.chips)

    # --- reading ---------------------------------------------------------------------------
    def _read(self, w: Window, layer: str, modality: str) -> ModalityData:
        """One input layer through the one layer reader, as the model reads it."""
        reader = LayerReader(self.dataset, w, layer)
        spec = get_modality(modality)
        bands = list(reader.bands)
        chosen = (self.config.bands or {}).get(layer)
        if chosen:
            bands = list(spec.canonical(chosen))
            missing = [b for b in bands if b not in reader.bands]
            if missing:
                raise DataError(
                    f"window {w.name} layer {layer!r} lacks band(s) {missing} (it has "
                    f"{reader.bands}); choose bands the layer holds"
                )
        stored, valid = reader.read(bands=bands)
        data = prepare_modality(stored, valid, spec, bands)
        stamps = timestamps_of(reader.times).astype(np.int64)
        if spec.multitemporal:
            data, valid, stamps = fit_periods(data, valid, stamps, self.config.num_periods)
        return ModalityData(data, valid, bands, stamps)

    def _load(self, wi: int) -> dict[str, Any]:
        if wi in self._cache:
            self._cache.move_to_end(wi)
            return self._cache[wi]
        w = self.windows[wi]
        mods = {
            get_modality(m).name: self._read(w, layer, m) for layer, m in self.config.inputs.items()
        }
        entry: dict[str, Any] = {"modalities": mods}
        if self.targets is not None:
            entry["label"] = self.targets.load(self.context, w)
        entry["nbytes"] = sum(d.data.nbytes for d in mods.values())
        self._cache[wi] = entry
        while len(self._cache) > 1 and sum(e["nbytes"] for e in self._cache.values()) > CACHE_BYTES:
            self._cache.popitem(last=False)
        return entry

    # --- one sample ------------------------------------------------------------------------
    def _view(self, key) -> tuple[int, ChipView]:
        cfg, size = self.config, self.config.chip_size
        if self.mode == "train":
            index, epoch = key if isinstance(key, tuple) else (int(key), self.epoch)
            wi = index % len(self.windows)
            w = self.windows[wi]
            rng = np.random.default_rng((cfg.seed, epoch, index, CROP_STREAM))
            r0 = int(rng.integers(0, max(w.height - size, 0) + 1))
            c0 = int(rng.integers(0, max(w.width - size, 0) + 1))
            aug = np.random.default_rng((cfg.seed, epoch, index, AUG_STREAM))
            flip, k = (bool(aug.integers(2)), int(aug.integers(4))) if cfg.augment else (False, 0)
            return wi, ChipView(r0, c0, size, flip, k)
        # pixels already covered by the previous tile are not scored again
        wi, r0, c0, owned_r, owned_c = self.chips[int(key)]
        return wi, ChipView(r0, c0, size, owned_r=owned_r, owned_c=owned_c)

    def __getitem__(self, key) -> Sample:
        wi, view = self._view(key)
        entry = self._load(wi)
        size = view.size
        sample = Sample(
            window=self.windows[wi].name,
            chip=torch.tensor([view.r0, view.c0, view.r0 + size, view.c0 + size]),
        )
        for m, d in entry["modalities"].items():
            data = augment_array(crop(d.data, view.r0, view.c0, size, 0.0), view.flip, view.k)
            valid = augment_array(crop(d.valid, view.r0, view.c0, size, False), view.flip, view.k)
            sample.modalities[m] = ModalityData(
                torch.from_numpy(data),  # [T, C, h, w]
                torch.from_numpy(valid),  # [T, h, w]
                d.bands,
                torch.from_numpy(d.timestamps),  # [T, 3]
            )
        if self.targets is not None:
            for name, value in self.targets.chip(self.context, entry["label"], view).items():
                setattr(sample, name, value)
        return sample
