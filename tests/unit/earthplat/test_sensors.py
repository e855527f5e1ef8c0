import numpy as np
import pytest
import torch

from earthplat.errors import SensorError
from earthplat.sensors import (
    MODALITIES,
    S2_L1C_ORDER,
    get_modality,
    normalize,
    s2_needs_offset_removal,
)


def test_sentinel2_bands_and_band_sets():
    l1c, l2a = get_modality("sentinel2_l1c"), get_modality("sentinel2_l2a")
    assert l1c.band_names == S2_L1C_ORDER and len(l1c.bands) == 13
    assert len(l2a.bands) == 12 and "B10" not in l2a.band_names
    assert l2a.band_sets == (
        ("B02", "B03", "B04", "B08"),
        ("B05", "B06", "B07", "B8A", "B11", "B12"),
        ("B01", "B09"),
    )
    gsd = {b.name: b.gsd_m for b in l1c.bands}
    assert {n for n, g in gsd.items() if g == 10} == {"B02", "B03", "B04", "B08"}
    assert {n for n, g in gsd.items() if g == 60} == {"B01", "B09", "B10"}
    assert l2a.band("red").name == "B04" and l2a.band("B8").name == "B08"
    assert l2a.band("nir08").name == "B8A" and l2a.band("rededge1").name == "B05"


def test_landsat_and_sentinel1():
    ls = get_modality("landsat")
    assert len(ls.bands) == 11 and len(ls.band_sets) == 2
    assert sum(len(s) for s in ls.band_sets) == 11
    s1 = get_modality("s1")
    assert s1.band_names == ("VV", "VH") and s1.units.endswith("dB")


@pytest.mark.parametrize("name", list(MODALITIES))
def test_every_modality_is_consistent(name):
    m = MODALITIES[name]
    in_sets = [b for s in m.band_sets for b in s]
    assert sorted(in_sets) == sorted(m.band_names), "band sets partition the bands"
    assert all(b.std > 0 for b in m.bands)
    for c in m.composites:
        for expr in c.bands:
            for part in expr.split("-"):
                m.band(part)
    if m.decode_only:
        assert not m.multitemporal


def test_normalisation_maps_two_sigma_to_unit_interval():
    m = get_modality("sentinel2_l2a")
    means, stds = m.stats(("B04", "B08"))
    x = np.array(
        [[m_ - 2 * s for m_, s in zip(means, stds)], [m_ + 2 * s for m_, s in zip(means, stds)]],
        dtype=np.float32,
    )[..., None, None]
    out = normalize(x, m, ("B04", "B08"))  # [2, C, 1, 1]
    assert np.allclose(out[0], 0.0, atol=1e-6) and np.allclose(out[1], 1.0, atol=1e-6)
    t = normalize(torch.from_numpy(x), "sentinel2_l2a", ("B04", "B08"))
    assert torch.allclose(t, torch.from_numpy(out))


def test_s2_baseline_offset_rule():
    from datetime import date

    assert s2_needs_offset_removal("04.00", None)
    assert not s2_needs_offset_removal("02.14", date(2023, 1, 1))
    assert s2_needs_offset_removal(None, date(2022, 2, 1))
    assert not s2_needs_offset_removal(None, date(2021, 12, 31))


def test_unknown_names_say_what_exists():
    with pytest.raises(SensorError, match="known: sentinel2_l2a"):
        get_modality("modis")
    with pytest.raises(SensorError, match="its bands are VV, VH"):
        get_modality("sentinel1").band("HH")
