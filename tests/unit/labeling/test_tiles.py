"""XYZ tiles of a real materialised window (the Sen1Floods11 chip): PNG validity, agreement
with a direct rio-tiler read, registry presets, label colours, transparency outside."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from rio_tiler.io import Reader

from earthplat.data.layer import read_layer_arrays
from earthplat.errors import DataError, SensorError
from earthplat.sensors import get_modality
from labeling.tiles import presets, render_tile, tile_for_lonlat

CLASSES = [
    {"value": 0, "label": "dry", "color": "#c2a878"},
    {"value": 1, "label": "water", "color": "#1f5fd6"},
]


@pytest.fixture(scope="module")
def window(shared_data, tmp_path_factory):
    """A fully valid window of the materialised chip, with both water and dry pixels."""
    from earthplat.eval.recipes import ingest_sen1floods11

    root = shared_data / "real" / "sen1floods11_spain"
    if not root.is_dir():
        pytest.skip(f"missing component: {root}")
    ds, windows = ingest_sen1floods11(
        root, tmp_path_factory.getbasetemp() / "sen1floods11_ds"
    )  # shared, resumable

    def score(w):
        s2 = read_layer_arrays(ds, w, "s2").valid.mean()
        lab = read_layer_arrays(ds, w, "label")
        water = (lab.data[0, 0][lab.valid[0]] == 1).mean() if lab.valid.any() else 0
        return (s2 == 1.0, min(water, 1 - water))

    return ds, max(windows, key=score)


def _png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    assert img.size == (256, 256) and img.mode == "RGBA"
    return np.asarray(img)


def _inner_tile(w, z):
    """A tile fully inside the window (its centre at zoom ``z``)."""
    c = w.geometry_wgs84().centroid
    return tile_for_lonlat(c.x, c.y, z)


def test_true_color_tile_matches_a_direct_rio_tiler_read(window):
    ds, w = window
    z, x, y = _inner_tile(w, 17)
    got = _png(render_tile(ds.layer_path(w, "s2"), t=0, z=z, x=x, y=y))
    assert (got[..., 3] == 255).all()  # inside a fully valid window
    rgb = got[..., :3].astype(float)
    assert rgb.std() > 5 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100  # real texture
    comp = get_modality("sentinel2_l1c").composite("true_color")
    bands = read_layer_arrays(ds, w, "s2").bands
    with Reader(ds.layer_path(w, "s2")) as src:
        ref = src.tile(x, y, z, tilesize=256, indexes=[bands.index(b) + 1 for b in comp.bands])
    ref = ref.rescale(in_range=comp.ranges).array.filled(0)  # [3, H, W] uint8
    assert np.abs(rgb - np.moveaxis(ref, 0, -1)).max() <= 1


@pytest.mark.parametrize("preset", presets("sentinel2_l1c"))
def test_every_registry_preset_renders(window, preset):
    ds, w = window
    z, x, y = _inner_tile(w, 17)
    got = _png(render_tile(ds.layer_path(w, "s2"), t=0, z=z, x=x, y=y, preset=preset))
    assert got[..., :3].std() > 1
    if preset == "gray":
        assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()


def test_presets_differ_and_unknown_preset_is_refused(window):
    ds, w = window
    z, x, y = _inner_tile(w, 17)
    tiles = {
        p: _png(render_tile(ds.layer_path(w, "s2"), t=0, z=z, x=x, y=y, preset=p))
        for p in ("true_color", "false_color", "swir")
    }
    assert not np.array_equal(tiles["true_color"], tiles["false_color"])
    assert not np.array_equal(tiles["false_color"], tiles["swir"])
    with pytest.raises(SensorError, match="no composite 'nope'"):
        render_tile(ds.layer_path(w, "s2"), t=0, z=z, x=x, y=y, preset="nope")
    with pytest.raises(DataError, match="t=3 is out of range"):
        render_tile(ds.layer_path(w, "s2"), t=3, z=z, x=x, y=y)


def test_sar_ratio_composite(window):
    ds, w = window
    z, x, y = _inner_tile(w, 17)
    got = _png(render_tile(ds.layer_path(w, "s1"), t=0, z=z, x=x, y=y))
    assert got[..., :3].std() > 5


def test_label_tile_uses_the_class_colours(window):
    ds, w = window
    z, x, y = _inner_tile(w, 16)
    got = _png(render_tile(ds.layer_path(w, "label"), t=0, z=z, x=x, y=y, classes=CLASSES))
    opaque = got[got[..., 3] == 255][:, :3]
    colours = {tuple(int(v) for v in c) for c in np.unique(opaque, axis=0)}
    assert colours == {(0xC2, 0xA8, 0x78), (0x1F, 0x5F, 0xD6)}  # dry and water, nothing else
    # water pixels of the tile agree with the label raster read directly
    with Reader(ds.layer_path(w, "label")) as src:
        ref = src.tile(x, y, z, tilesize=256, indexes=[1])
    codes = ref.array[0].filled(-1)
    water = (got[..., 3] == 255) & (got[..., 2] == 0xD6)
    assert np.array_equal(water, codes == 1)


def test_tile_outside_the_window_is_transparent(window):
    ds, w = window
    c = w.geometry_wgs84().centroid
    z, x, y = tile_for_lonlat(c.x + 1.0, c.y, 17)  # ~90 km east
    got = _png(render_tile(ds.layer_path(w, "s2"), t=0, z=z, x=x, y=y))
    assert (got[..., 3] == 0).all()
    # a zoomed-out tile holds the window partly: opaque inside, transparent around it
    z, x, y = _inner_tile(w, 14)
    got = _png(render_tile(ds.layer_path(w, "s2"), t=0, z=z, x=x, y=y))
    assert 0 < (got[..., 3] == 255).mean() < 0.5
