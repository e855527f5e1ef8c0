"""The one batch every model is fed: its samples, its collate and its conversion to model inputs.

Reading order: ``prepare_modality`` and ``fit_periods`` (stored layer values -> what a model
reads) -> ``ModalityData`` and ``Sample`` (one window or chip, numpy or torch) ->
``ModalityInput`` and ``Batch`` (stacked, torch) -> ``collate`` (samples -> batch) ->
``to_model_inputs`` (a batch -> ``{modality: ModalityInput}`` in a model's bands and periods).

Training, pretraining, evaluation, inference and the platform all build their batches here:
the data modules' datasets yield ``Sample``\\s, ``collate`` stacks them, task and pretraining
modules read the ``Batch``'s fields, and every model call goes through ``to_model_inputs``.

Importing this module does not import torch (``collate`` and ``to_model_inputs`` do).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from earthplat.sensors import Modality, get_modality

if TYPE_CHECKING:
    import torch


# --- stored values -> model values -------------------------------------------------------------
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
    ([..., H, W]) is False."""
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


def timestamps_of(times: list) -> np.ndarray:
    """[T, 3] int32: (day of month, month 0-11, year) of each datetime, as OlmoEarth uses."""
    return np.array([[t.day, t.month - 1, t.year] for t in times], dtype=np.int32).reshape(-1, 3)


# --- one sample ----------------------------------------------------------------------------------
@dataclass
class ModalityData:
    """One modality of one sample (numpy or torch arrays)."""

    data: Any
    """[T, C, H, W] float32: ``prepare_modality`` output (normalised, 0 where invalid), or
    stored values when read with ``normalize=False``; static maps have T = 1."""
    valid: Any
    """[T, H, W] bool: observed and not cloud/nodata."""
    bands: list[str]
    """Band of each channel, in channel order."""
    timestamps: Any
    """[T, 3] int: (day of month, month 0-11, year) of each period start."""


@dataclass
class Sample:
    """What a model sees of one window or chip, and its target when it has one."""

    window: str
    modalities: dict[str, ModalityData] = field(default_factory=dict)
    """Keyed by modality name."""
    chip: Any = None
    """[4] (row0, col0, row1, col1) of the chip in its window (None: the whole window)."""
    target: Any = None
    """classification: [] class index; multilabel: [K] 0/1; segmentation: [H, W] class index
    (-1 = ignore); pixel_regression: [H, W] float; regression: [] float."""
    target_valid: Any = None
    """[] or [H, W] bool: where ``target`` is labelled."""
    boxes: Any = None
    """detection: [n, 4] float (x0, y0, x1, y1) in chip pixels."""
    box_labels: Any = None
    """detection: [n] class index of each box."""
    index: int | None = None
    """pretraining: the instance's index in its pack."""
    patch_size: int | None = None
    """pretraining: the patch size the sampler drew for the instance's batch."""

    @property
    def height(self) -> int:
        return next(iter(self.modalities.values())).data.shape[-2]

    @property
    def width(self) -> int:
        return next(iter(self.modalities.values())).data.shape[-1]


# --- one batch -----------------------------------------------------------------------------------
@dataclass
class ModalityInput:
    """One modality of a batch, as encoders and task models read it."""

    data: torch.Tensor
    """[B, T, C, H, W] normalised values, C in ``bands`` order (T = 1 for maps)."""
    valid: torch.Tensor
    """[B, T, H, W] bool: observed pixels."""
    timestamps: torch.Tensor
    """[B, T, 3] int: day of month, month 0-11, year."""
    bands: tuple[str, ...] | None = None
    """Band name of each channel; ``None`` means the registry's full band order. Band sets
    whose bands are not all present produce no tokens."""


@dataclass
class Batch:
    """Samples stacked (``collate``): what every training, evaluation and inference step reads.

    Lightning moves it between devices field by field; ``pin_memory`` pins every tensor."""

    modalities: dict[str, ModalityInput]
    """Keyed by modality name."""
    window: list[str]
    """[B] window names."""
    chip: torch.Tensor | None = None
    """[B, 4] long (row0, col0, row1, col1)."""
    target: torch.Tensor | None = None
    """[B] or [B, K] or [B, H, W]: the samples' targets stacked (see ``Sample.target``)."""
    target_valid: torch.Tensor | None = None
    """[B] or [B, H, W] bool."""
    boxes: list[torch.Tensor] | None = None
    """detection: per sample [n_i, 4] float."""
    box_labels: list[torch.Tensor] | None = None
    """detection: per sample [n_i] long."""
    index: torch.Tensor | None = None
    """pretraining: [B] long pack indices."""
    patch_size: int | None = None
    """pretraining: the batch's patch size."""

    def __len__(self) -> int:
        return len(self.window)

    def pin_memory(self) -> Batch:
        import torch

        def pin(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                return x.pin_memory()
            if isinstance(x, list):
                return [pin(v) for v in x]
            return x

        mods = {
            k: ModalityInput(pin(m.data), pin(m.valid), pin(m.timestamps), m.bands)
            for k, m in self.modalities.items()
        }
        rest = {f.name: pin(getattr(self, f.name)) for f in fields(self) if f.name != "modalities"}
        return Batch(modalities=mods, **rest)


def _tensor(x: Any) -> torch.Tensor:
    import torch

    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def loader_options(num_workers: int, pin_memory: bool) -> dict[str, Any]:
    """``DataLoader`` keyword arguments for ``Sample`` datasets: ``collate``, and workers kept
    alive across epochs when there are any."""
    return dict(
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
    )


def collate(samples: list[Sample]) -> Batch:
    """Stack samples of one shape into a ``Batch`` (detection keeps per-sample box lists)."""
    import torch

    if not samples:
        raise ValueError("collate needs at least one sample")
    first = samples[0]
    mods = {}
    for name, m in first.modalities.items():
        mods[name] = ModalityInput(
            torch.stack([_tensor(s.modalities[name].data) for s in samples]),
            torch.stack([_tensor(s.modalities[name].valid) for s in samples]).bool(),
            torch.stack([_tensor(s.modalities[name].timestamps) for s in samples]).long(),
            tuple(m.bands),
        )
    batch = Batch(modalities=mods, window=[s.window for s in samples])
    if first.chip is not None:
        batch.chip = torch.stack([_tensor(s.chip) for s in samples]).long()
    if first.boxes is not None:
        batch.boxes = [_tensor(s.boxes) for s in samples]
        batch.box_labels = [_tensor(s.box_labels) for s in samples]
    elif first.target is not None:
        batch.target = torch.stack([_tensor(s.target) for s in samples])
        batch.target_valid = torch.stack([_tensor(s.target_valid) for s in samples]).bool()
    if first.index is not None:
        batch.index = torch.tensor([s.index for s in samples], dtype=torch.long)
    if first.patch_size is not None:
        sizes = {s.patch_size for s in samples}
        if len(sizes) != 1:
            from earthplat.errors import PretrainConfigError

            raise PretrainConfigError(
                f"a batch mixes patch sizes {sorted(sizes)}; batch pretraining instances with "
                "PretrainSampler, which draws one shape per batch"
            )
        batch.patch_size = first.patch_size
    return batch


def to_model_inputs(
    batch: Batch,
    inputs: dict[str, list[str]] | None = None,
    num_periods: int | None = None,
) -> dict[str, ModalityInput]:
    """The batch as ``{modality: ModalityInput}`` (canonical modality names).

    With ``inputs`` (a model's modality -> bands), exactly those modalities with their bands in
    that order, and an error naming what the batch lacks; with ``num_periods``, that many
    periods (first ones kept, short series padded as invalid, as ``fit_periods``)."""
    import torch

    from earthplat.errors import EarthplatError

    have = {get_modality(k).name: v for k, v in batch.modalities.items()}
    if inputs is None:
        out = dict(have)
    else:
        out = {}
        for name, bands in inputs.items():
            key = get_modality(name).name
            if key not in have:
                raise EarthplatError(
                    f"the batch has no {key} (it has {', '.join(have) or 'nothing'}); this "
                    f"model reads {', '.join(inputs)}"
                )
            m = have[key]
            mod = get_modality(key)
            names = [mod.band(b).name for b in (m.bands or mod.band_names)]
            wanted = [mod.band(b).name for b in bands]
            missing = [b for b in wanted if b not in names]
            if missing:
                raise EarthplatError(f"the batch's {key} lacks band(s) {missing} the model reads")
            if wanted == names:
                out[key] = ModalityInput(m.data, m.valid, m.timestamps, tuple(wanted))
            else:
                idx = torch.tensor([names.index(b) for b in wanted], device=m.data.device)
                out[key] = ModalityInput(
                    m.data.index_select(2, idx), m.valid, m.timestamps, tuple(wanted)
                )
    if num_periods is not None:
        out = {k: _fit(v, num_periods) for k, v in out.items()}
    return out


def _fit(m: ModalityInput, n: int) -> ModalityInput:
    import torch

    t = m.data.shape[1]
    if t == n:
        return m
    if t > n:
        return ModalityInput(m.data[:, :n], m.valid[:, :n], m.timestamps[:, :n], m.bands)
    pad = n - t
    data = torch.cat([m.data, m.data.new_zeros(m.data.shape[0], pad, *m.data.shape[2:])], 1)
    valid = torch.cat([m.valid, m.valid.new_zeros(m.valid.shape[0], pad, *m.valid.shape[2:])], 1)
    stamps = torch.cat([m.timestamps, m.timestamps[:, -1:].expand(-1, pad, -1)], 1)
    return ModalityInput(data, valid, stamps, m.bands)
