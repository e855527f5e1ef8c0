"""``Sample``: what a model sees of one window, one typed structure for every model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.layer import read_layer_arrays
from earthplat.data.window import Window
from earthplat.sensors import Modality, get_modality


@dataclass
class ModalityData:
    """One modality of a sample (numpy or torch arrays)."""

    data: np.ndarray
    """[T, C, H, W] for time series, [1, C, H, W] for static maps; float32, normalised or raw."""
    valid: np.ndarray
    """[T, H, W] bool: observed and not cloud/nodata."""
    bands: list[str]
    timestamps: np.ndarray
    """[T, 3] int: (day of month, month 0-11, year) of each period start, as OlmoEarth uses."""


@dataclass
class Sample:
    window: str
    modalities: dict[str, ModalityData] = field(default_factory=dict)
    """Keyed by modality name."""

    @property
    def height(self) -> int:
        return next(iter(self.modalities.values())).data.shape[-2]

    @property
    def width(self) -> int:
        return next(iter(self.modalities.values())).data.shape[-1]


def timestamps_of(times: list[datetime]) -> np.ndarray:
    return np.array([[t.day, t.month - 1, t.year] for t in times], dtype=np.int32).reshape(-1, 3)


def prepare_modality(
    data: np.ndarray,
    valid: np.ndarray,
    modality: str | Modality,
    bands: list[str] | tuple[str, ...],
    *,
    normalize: bool = True,
) -> np.ndarray:
    """Stored layer values -> what a model reads: [..., C, H, W] float32, normalised with the
    registry's statistics (categorical maps are left as codes) and 0 wherever ``valid``
    ([..., H, W]) is False. Training, evaluation and prediction all feed models through this."""
    from earthplat.sensors import normalize as normalize_fn

    spec = get_modality(modality) if isinstance(modality, str) else modality
    values = data.astype(np.float32)
    if normalize and not spec.categorical:
        values = normalize_fn(values, spec, tuple(bands))
    return np.where(valid[..., None, :, :], values, 0.0).astype(np.float32)


def fit_periods(
    data: np.ndarray, valid: np.ndarray, stamps: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` periods ([T, C, H, W], [T, H, W], [T, 3]), or padded with invalid
    periods whose timestamps repeat the last one: a model sees the period count it was
    trained with."""
    t = data.shape[0]
    if t >= n:
        return data[:n], valid[:n], stamps[:n]
    pad = n - t
    data = np.concatenate([data, np.zeros((pad, *data.shape[1:]), data.dtype)])
    valid = np.concatenate([valid, np.zeros((pad, *valid.shape[1:]), bool)])
    stamps = np.concatenate([stamps, np.repeat(stamps[-1:], pad, axis=0)])
    return data, valid, stamps


def load_sample(
    dataset: Dataset,
    window: Window | str,
    layers: dict[str, str] | None = None,
    *,
    normalize: bool = True,
) -> Sample:
    """Read a window's layers into a ``Sample``; ``layers`` maps layer name -> modality
    (default: every finished layer, keyed by its modality)."""
    name = window.name if isinstance(window, Window) else window
    sample = Sample(name)
    for layer in layers or dataset.layers(window):
        ld = read_layer_arrays(dataset, window, layer)
        modality = get_modality(ld.metadata["modality"])
        data = prepare_modality(ld.data, ld.valid, modality, ld.bands, normalize=normalize)
        sample.modalities[modality.name] = ModalityData(
            data, ld.valid, ld.bands, timestamps_of(ld.times)
        )
    return sample
