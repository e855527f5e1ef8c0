"""``import_patches``: label sources, class schemas, names, grids and the errors users meet."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from earthplat.data.dataset import Dataset
from earthplat.data.layer import read_layer_arrays
from earthplat.data.patches import class_schema, import_patches
from earthplat.errors import DataError

NAIP = "real/chesapeake_naip_geobench"


def _patch(path, *, crs="EPSG:32632", origin=(500003.7, 5000001.2), size=16, seed=0, date=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=4,
        dtype="uint16",
        crs=crs,
        transform=from_origin(*origin, 10, 10),
    ) as dst:
        dst.write(rng.integers(1, 4000, (4, size, size)).astype("uint16"))
        for i, band in enumerate(["B02", "B03", "B04", "B08"], start=1):
            dst.set_band_description(i, band)
        if date:
            dst.update_tags(DATE=date)
    return path


def test_folders_give_named_classes_and_each_patch_keeps_its_grid(tmp_path) -> None:
    _patch(tmp_path / "p" / "forest" / "a.tif", seed=1, date="2020-05-01")
    _patch(tmp_path / "p" / "water" / "b.tif", crs="EPSG:32633", seed=2, date="2020-06-01")
    _patch(tmp_path / "p" / "forest" / "sub" / "c.tif", seed=3, date="2020-07-01")
    result = import_patches(
        tmp_path / "p", tmp_path / "ds", "sentinel2_l2a", workers=1, progress=False
    )
    ds = Dataset(tmp_path / "ds")
    assert [c["label"] for c in ds.class_schema("label")] == ["forest", "water"]
    assert ds.info()["inputs"] == {"image": "sentinel2_l2a"}
    by = {w.name: w for w in ds.windows()}
    assert by["a"].properties["label"] == 0 and by["b"].properties["label_name"] == "water"
    assert by["b"].crs == "EPSG:32633" and by["b"].origin == (500003.7, 5000001.2)
    assert by["c"].start.date().isoformat() == "2020-07-01"
    for w in ds.windows():
        with rasterio.open(w.properties["source_path"]) as src:
            raw = src.read()
        ld = read_layer_arrays(ds, w, "image")
        assert ld.valid.all() and np.array_equal(ld.data[0], raw)  # its own pixels, exactly
    assert "3 patches, 2 classes (forest 2, water 1)" in result.summary()


def test_csv_with_integer_classes_keeps_values_and_takes_names(tmp_path) -> None:
    for i in range(3):
        _patch(tmp_path / "p" / f"img_{i}.tif", seed=i)
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "code", "name"])
        w.writerows([["img_0.tif", 7, "crop"], ["img_1.tif", 3, "urban"], ["img_2.tif", 7, "crop"]])
    import_patches(
        tmp_path / "p",
        tmp_path / "ds",
        "sentinel2_l2a",
        labels=labels,
        label_column="code",
        name_column="name",
        datetime="2021-01-01",
        workers=1,
        progress=False,
    )
    ds = Dataset(tmp_path / "ds")
    assert [(c["value"], c["label"]) for c in ds.class_schema("label")] == [
        (3, "urban"),
        (7, "crop"),
    ]
    assert sorted(w.properties["label"] for w in ds.windows()) == [3, 7, 7]


def test_class_schema_numbers_names_in_sorted_order() -> None:
    schema, value_of = class_schema(["b", "a", "b", "c"])
    assert [c["label"] for c in schema] == ["a", "b", "c"] and value_of["c"] == 2
    schema, value_of = class_schema(["10", "2"])
    assert [c["value"] for c in schema] == [2, 10] and value_of["10"] == 10


def test_what_users_get_wrong_is_named(tmp_path) -> None:
    _patch(tmp_path / "loose" / "a.tif", date="2020-01-01")
    with pytest.raises(DataError, match=r"directly in --root .* --labels CSV"):
        import_patches(tmp_path / "loose", tmp_path / "ds1", "sentinel2_l2a", progress=False)
    _patch(tmp_path / "undated" / "x" / "a.tif")
    with pytest.raises(DataError, match="--datetime"):
        import_patches(tmp_path / "undated", tmp_path / "ds2", "sentinel2_l2a", progress=False)
    labels = tmp_path / "bad.csv"
    labels.write_text("file,kind\na.tif,x\n")
    with pytest.raises(DataError, match=r"no column 'class'.*--label_column"):
        import_patches(
            tmp_path / "loose", tmp_path / "ds3", "sentinel2_l2a", labels=labels, progress=False
        )
    assert not (tmp_path / "ds1").exists() and not (tmp_path / "ds2").exists()


def test_same_file_names_in_two_class_folders_stay_apart(tmp_path) -> None:
    _patch(tmp_path / "p" / "forest" / "1.tif", date="2020-01-01", seed=1)
    _patch(tmp_path / "p" / "water" / "1.tif", date="2020-01-01", seed=2)
    import_patches(tmp_path / "p", tmp_path / "ds", "sentinel2_l2a", progress=False)
    names = sorted(w.name for w in Dataset(tmp_path / "ds").windows())
    assert names == ["forest_1", "water_1"]


def test_real_naip_tiles_with_a_crs_import_with_water_pixels_kept(shared_data, tmp_path) -> None:
    """NAIP from the registry (R, G, B, NIR at 1 m): the real tiles have no CRS, so they are
    georeferenced first, as the README says; NIR = 0 over water stays a valid 0, also when GDAL
    flags the NIR band as alpha."""
    from earthplat.data.georef import georeference

    for i, (tile, cls) in enumerate((("id_000051", "land"), ("id_000181", "water"))):
        src = shared_data / NAIP / f"{tile}_naip_rgbn.tif"
        if not src.exists():
            pytest.skip(f"missing component: {src}")
        (tmp_path / "naip" / cls).mkdir(parents=True)
        x0 = 400000 + 1000 * i
        georeference(
            str(src),
            str(tmp_path / "naip" / cls / f"{tile}.tif"),
            crs="EPSG:26918",
            bounds=(x0, 4300000, x0 + 256, 4300256),
        )
    # as GDAL writes a 4-band 8-bit RGB file by default: the NIR band flagged as alpha
    from rasterio.enums import ColorInterp

    water_tif = tmp_path / "naip" / "water" / "id_000181.tif"
    with rasterio.open(water_tif, "r+") as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    with rasterio.open(water_tif) as src:
        assert src.colorinterp[3] == ColorInterp.alpha and (src.read_masks(1) == 0).any()
    import_patches(
        tmp_path / "naip", tmp_path / "ds", "naip", datetime="2013-07-01", progress=False
    )
    ds = Dataset(tmp_path / "ds")
    water = next(w for w in ds.windows() if w.properties["label_name"] == "water")
    ld = read_layer_arrays(ds, water, "image")
    assert ld.valid.all() and (ld.data[0, 3] == 0).mean() > 0.5  # NIR 0 over water, valid
    assert water.resolution == 1.0 and ld.data.shape[-2:] == (256, 256)
