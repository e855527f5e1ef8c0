"""Bands an input lacks, filled the way a model was trained to see them.

OlmoEarth's releases differ here, and a published checkpoint only reproduces its numbers when
the filling matches its training (facts from ``olmoearth_pretrain_minimal``'s normaliser):

- ``nearest`` (v1, trained without band dropout): each missing band is a copy of the present
  band nearest to it in centre wavelength (ties to the shorter one), within one spectral group
  (reflective bands below 5 um, thermal bands above), copied in stored units and then
  normalised with the missing band's own statistics. Bands without a wavelength (SAR) are not
  copied and fall back to ``zero``.
- ``zero`` (v1.1 and later, trained with band dropout): 0 after normalisation.
- ``drop`` (ours): nothing is filled; a band set that is not complete produces no tokens.

The filling works on *normalised* values: copying in stored units and normalising is the affine
map ``x_t = (x_s * 4 s_s + m_s - 2 s_s - m_t + 2 s_t) / (4 s_t)`` of the source's normalised
value, so no stored value is needed.
"""

from __future__ import annotations

from typing import Any

from earthplat.sensors.types import Modality

FILL_POLICIES = ("drop", "nearest", "zero")
THERMAL_FROM_UM = 5.0
"""Bands centred above this wavelength form the thermal group (Landsat B10, B11)."""


def nearest_sources(modality: Modality, present: tuple[str, ...]) -> dict[str, str | None]:
    """Missing band -> the present band it is copied from under ``nearest`` (None: zero)."""
    have = [modality.band(b) for b in present]
    out: dict[str, str | None] = {}
    for band in modality.bands:
        if band.name in {b.name for b in have}:
            continue
        wl = band.wavelength_um
        pool = [
            b
            for b in have
            if wl is not None
            and b.wavelength_um is not None
            and (b.wavelength_um >= THERMAL_FROM_UM) == (wl >= THERMAL_FROM_UM)
        ]
        pool.sort(key=lambda b: (abs(b.wavelength_um - wl), b.wavelength_um))
        out[band.name] = pool[0].name if pool else None
    return out


def fill_missing_bands(
    values: Any, bands: tuple[str, ...], modality: Modality, policy: str, band_axis: int = -3
) -> tuple[Any, tuple[str, ...]]:
    """Normalised ``values`` whose ``band_axis`` holds ``bands`` -> the modality's full band
    order with the missing bands filled by ``policy`` (torch or numpy). ``drop`` returns the
    input unchanged."""
    if policy not in FILL_POLICIES:
        from earthplat.errors import SensorError

        raise SensorError(f"missing-band policy {policy!r}; choose one of {FILL_POLICIES}")
    canon = modality.canonical(bands)
    if policy == "drop" or set(canon) >= set(modality.band_names):
        return values, canon
    where = {b: i for i, b in enumerate(canon)}
    sources = nearest_sources(modality, canon) if policy == "nearest" else {}
    torch_like = hasattr(values, "new_tensor")
    axis = band_axis % values.ndim
    channels = []
    for band in modality.band_names:
        if band in where:
            channels.append(_take(values, axis, where[band]))
            continue
        src = sources.get(band)
        if src is None:
            channels.append(_take(values, axis, 0) * 0)
            continue
        s, t = modality.band(src), modality.band(band)
        x = _take(values, axis, where[src])
        channels.append(
            (x * (4 * s.std) + (s.mean - 2 * s.std) - (t.mean - 2 * t.std)) / (4 * t.std)
        )
    if torch_like:
        import torch

        return torch.stack(channels, dim=axis), modality.band_names
    import numpy as np

    return np.stack(channels, axis=axis).astype(values.dtype), modality.band_names


def _take(values: Any, axis: int, index: int) -> Any:
    return values.select(axis, index) if hasattr(values, "select") else values.take(index, axis)
