"""The data commands as a user runs them: ``earthplat.cli.main([...])`` in-process, and the
installed ``earthplat`` script in a subprocess, on the real shared rasters.

Covered: ``dataset label --from`` (the alias of ``--from_file``), ``windows create --crs
source|EPSG:N``, ``raster georef IN OUT`` (positional) on the NAIP tile that has no CRS,
``sensors list`` and ``sensors stats`` (a custom sensor then loaded through EARTHPLAT_SENSORS
and ingested), and the shape of expected errors (two lines, exit 2; a traceback with --debug).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from earthplat.cli import main
from earthplat.data.dataset import Dataset
from earthplat.errors import DataError
from tests.conftest import MISSING

NAIP_BOUNDS = [400000.5, 4300000.25, 400256.5, 4300256.25]
"""Where the georeferenced NAIP copy is put (EPSG:26918, 1 m): a corner off the global 1 m
grid, so only a window grid that keeps the raster's own lines up with its pixels."""


def _argv(command: str, **values: object) -> list[str]:
    """``command`` split at spaces, each ``{name}`` token replaced by ``str(values[name])`` (so
    paths and JSON lists stay one argument each)."""
    return [t.format(**values) if "{" in t else t for t in command.split()]


def _script(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else shutil.which(name)


def _earthplat(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_script("earthplat"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def _real(shared_data: Path, *parts: str) -> Path:
    path = shared_data.joinpath("real", *parts)
    if not path.exists():
        pytest.skip(f"{MISSING} {path}")
    return path


def _wgs84_bounds(path: Path) -> list[float]:
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        return list(transform_bounds(src.crs, "EPSG:4326", *src.bounds))


def _expected_error(capsys, args: list[str]) -> str:
    """Run ``main(args)``, expect the two-line error and exit code 2; return stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("earthplat: error:"), err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def naip_georef(shared_data: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(the real NAIP tile without a CRS, its copy made by ``earthplat raster georef IN OUT``
    in a subprocess)."""
    src = _real(shared_data, "chesapeake_naip_geobench", "id_000051_naip_rgbn.tif")
    out = tmp_path_factory.mktemp("naip") / "naip_26918.tif"
    bounds = json.dumps(NAIP_BOUNDS)
    run = _earthplat(
        "raster",
        "georef",
        str(src),
        str(out),
        "--crs",
        "EPSG:26918",
        "--bounds",
        bounds,
        cwd=out.parent,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"written to {out}" in run.stdout
    return src, out


@pytest.fixture
def sensors_env(monkeypatch):
    """``monkeypatch`` for EARTHPLAT_SENSORS, with the registry forgotten before and after."""
    from earthplat.sensors import reset_custom_modalities

    monkeypatch.delenv("EARTHPLAT_SENSORS", raising=False)
    reset_custom_modalities()
    yield monkeypatch
    reset_custom_modalities()  # monkeypatch restores the variable after this


# --- dataset label --from -----------------------------------------------------------------
def test_dataset_label_from_is_the_alias_of_from_file(tmp_path, shared_data, capsys):
    tile = _real(shared_data, "s2_slovenia_eolearn")
    lulc, gpkg = tile / "lulc.tif", tile / "original" / "LULC.gpkg"
    ds = str(tmp_path / "ds")
    main(
        _argv(
            "windows create --dataset {ds} --bbox {bbox} --start 2017-12-01 --end 2018-03-01 "
            "--size 50 --crs source --source [{lulc}]",
            ds=ds,
            bbox=json.dumps(_wgs84_bounds(lulc)),
            lulc=lulc,
        )
    )
    windows = Dataset(ds).windows()
    assert f"{len(windows)} windows written" in capsys.readouterr().out
    inner = sorted(w.name for w in windows if w.bounds[:2] in ((0, 0), (50, 50)))
    assert len(inner) == 2

    main(
        _argv(
            "dataset label --dataset {ds} --from {gpkg} --column LULC_NAME --name lulc "
            "--windows {inner}",
            ds=ds,
            gpkg=gpkg,
            inner=json.dumps(inner),
        )
    )
    out = capsys.readouterr().out
    assert "labels: 2 windows got layer 'lulc' (5 classes), 0 none" in out
    assert all(Dataset(ds).layer_done(n, "lulc") for n in inner)
    assert not any(Dataset(ds).layer_done(w, "lulc") for w in windows if w.name not in inner)

    # --from=FILE, --kind property and an inline --classes schema with values of the user's
    classes = [
        {"value": 10 + i, "label": n}
        for i, n in enumerate(
            ["artificial surface", "cultivated land", "forest", "grassland", "schrubland"]
        )
    ]
    main(
        _argv(
            "dataset label --dataset {ds} --from={gpkg} --column LULC_NAME --kind property "
            "--name lc --classes {classes}",
            ds=ds,
            gpkg=gpkg,
            classes=json.dumps(classes),
        )
    )
    assert f"labels: {len(windows)} windows got property 'lc'" in capsys.readouterr().out
    got = {w.properties["lc"] for w in Dataset(ds).windows()}
    assert got <= {c["value"] for c in classes} and got
    assert [c["label"] for c in Dataset(ds).class_schema("lc")] == [c["label"] for c in classes]

    # and the installed script, with a CSV of window names
    labels = tmp_path / "labels.csv"
    labels.write_text("window,class\n" + "".join(f"{n},forest\n" for n in inner))
    run = _earthplat(
        "dataset", "label", "--dataset", ds, "--from", str(labels), "--name", "site", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"labels: 2 windows got property 'site' (1 classes), {len(windows) - 2} none" in (
        run.stdout
    )
    assert {w.name: w.properties.get("site") for w in Dataset(ds).windows(inner)} == {
        n: 0 for n in inner
    }


def test_expected_errors_are_two_lines_and_exit_2_with_a_traceback_only_with_debug(
    tmp_path, shared_data, capsys
):
    tile = _real(shared_data, "s2_slovenia_eolearn")
    ds = str(tmp_path / "ds")
    main(
        _argv(
            "windows create --dataset {ds} --bbox {bbox} --start 2017-12-01 --end 2018-03-01 "
            "--size 50",
            ds=ds,
            bbox=json.dumps(_wgs84_bounds(tile / "lulc.tif")),
        )
    )
    capsys.readouterr()
    missing = str(tmp_path / "missing.geojson")
    args = ["dataset", "label", "--dataset", ds, "--from", missing]
    err = _expected_error(capsys, args)
    assert "--from" in err and "missing.geojson does not exist" in err
    with pytest.raises(DataError, match="does not exist"):
        main([*args, "--debug"])

    run = _earthplat(*args, cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [f"earthplat: error: --from {missing} does not exist"]
    debug = _earthplat(*args, "--debug", cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "earthplat.errors.DataError: --from" in debug.stderr


# --- windows create --crs -----------------------------------------------------------------
def test_windows_keep_the_crs_and_pixel_grid_of_the_source_raster(
    tmp_path, shared_data, naip_georef, capsys
):
    import rasterio

    from earthplat.data.projection import crs_for_lonlat

    _, naip = naip_georef
    ds = str(tmp_path / "naip")
    bbox = _wgs84_bounds(naip)
    main(
        _argv(
            "windows create --dataset {ds} --bbox {bbox} --start 2020-01-01 --end 2021-01-01 "
            "--size 100 --resolution 1 --crs source --source [{naip}]",
            ds=ds,
            bbox=json.dumps(bbox),
            naip=naip,
        )
    )
    windows = Dataset(ds).windows()
    assert windows
    with rasterio.open(naip) as src:
        t = src.transform
    assert crs_for_lonlat((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2) == "EPSG:32618"
    for w in windows:  # not the UTM zone (WGS84 datum) of the place: the raster's NAD83 one
        assert w.crs == "EPSG:26918"
        dx, dy = (w.transform.c - t.c) / t.a, (w.transform.f - t.f) / t.e
        assert dx == pytest.approx(round(dx), abs=1e-6) and dy == pytest.approx(round(dy), abs=1e-6)
        assert w.transform.a == t.a and w.transform.e == t.e

    # a raster whose CRS is not the UTM zone of its place at all (zone 18 over zone 17)
    landsat = _real(shared_data, "landsat", "landsat7_RGB.byte.tif")
    main(
        _argv(
            "windows create --dataset {ds} --bbox [-78.6,24.4,-78.4,24.6] --start 2001-01-01 "
            "--end 2002-01-01 --size 16 --resolution 300 --crs source --source [{landsat}]",
            ds=tmp_path / "l7",
            landsat=landsat,
        )
    )
    l7 = Dataset(tmp_path / "l7").windows()
    with rasterio.open(landsat) as src:
        t = src.transform
    assert crs_for_lonlat(-78.5, 24.5) == "EPSG:32617"
    assert l7 and {w.crs for w in l7} == {"EPSG:32618"}
    for w in l7:
        assert {w.origin} == {(t.c, t.f)}
        assert (w.transform.c - t.c) / 300 == w.bounds[0]


def test_windows_in_a_fixed_crs(tmp_path, capsys):
    ds = str(tmp_path / "ds")
    # a place in UTM zone 34, laid in zone 33 on purpose
    main(
        _argv(
            "windows create --dataset {ds} --bbox [19.50,46.00,19.53,46.02] --start 2022-01-01 "
            "--end 2022-02-01 --size 64 --crs EPSG:32633",
            ds=ds,
        )
    )
    windows = Dataset(ds).windows()
    assert len(windows) >= 4
    for w in windows:
        assert w.crs == "EPSG:32633" and w.origin == (0.0, 0.0)
        assert w.bounds[0] % 64 == 0 and w.bounds[1] % 64 == 0 and w.width == w.height == 64
    err = _expected_error(
        capsys,
        _argv(
            "windows create --dataset {ds} --bbox [19.5,46,19.53,46.02] --start 2022-01-01 "
            "--end 2022-02-01 --crs EPSG:nonsense",
            ds=tmp_path / "bad",
        ),
    )
    assert "--crs 'EPSG:nonsense'" in err and not (tmp_path / "bad").exists()


def test_crs_source_over_a_place_no_source_covers_is_a_clear_error(tmp_path, shared_data, capsys):
    lulc = _real(shared_data, "s2_slovenia_eolearn", "lulc.tif")
    ds = tmp_path / "ds"
    err = _expected_error(
        capsys,
        _argv(
            "windows create --dataset {ds} --bbox [15.50,45.86,15.51,45.87] --start 2017-12-01 "
            "--end 2018-03-01 --crs source --source [{lulc}]",
            ds=ds,
            lulc=lulc,
        ),
    )
    assert "lies in none of the --source rasters" in err and "--crs utm" in err
    assert not (ds / "windows.parquet").exists()
    err = _expected_error(
        capsys,
        _argv(
            "windows create --dataset {ds} --bbox [15.50,45.86,15.51,45.87] --start 2017-12-01 "
            "--end 2018-03-01 --crs source",
            ds=ds,
        ),
    )
    assert "--crs source needs --source" in err


# --- raster georef ------------------------------------------------------------------------
def test_raster_georef_in_out_keeps_the_pixels_and_adds_the_grid(naip_georef):
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    src, out = naip_georef
    with pytest.warns(NotGeoreferencedWarning), rasterio.open(src) as r:
        original, descriptions = r.read(), r.descriptions
        assert r.crs is None
    with rasterio.open(out) as g:
        assert g.crs.to_epsg() == 26918
        assert tuple(g.bounds) == pytest.approx(NAIP_BOUNDS)
        assert g.res == (1.0, 1.0) and g.dtypes == ("uint8",) * 4
        assert g.descriptions == descriptions == ("Red", "Green", "Blue", "NIR")
        np.testing.assert_array_equal(g.read(), original)


# --- sensors --------------------------------------------------------------------------------
def test_sensors_list_and_one_sensor(capsys):
    from earthplat.sensors import get_modality

    main(["sensors", "list"])
    lines = capsys.readouterr().out.splitlines()
    naip = [line for line in lines if line.split()[0] == "naip"]
    assert len(naip) == 1 and "4 bands" in naip[0]
    assert {line.split()[0] for line in lines} >= {"sentinel2_l1c", "sentinel1", "naip", "label"}

    main(["sensors", "list", "--name", "naip"])
    shown = json.loads(capsys.readouterr().out)
    assert shown["modality"] == "naip"
    assert [b["band"] for b in shown["bands"]] == ["R", "G", "B", "NIR"]
    assert [b["mean"] for b in shown["bands"]] == [b.mean for b in get_modality("naip").bands]
    _expected_error(capsys, ["sensors", "list", "--name", "modis"])


def test_custom_sensor_from_stats_is_loaded_from_the_env_and_ingests(
    tmp_path, naip_georef, sensors_env, capsys
):
    import rasterio

    from earthplat.data.layer import read_layer_arrays
    from earthplat.sensors import get_modality, reset_custom_modalities

    src, naip = naip_georef
    yaml_path = tmp_path / "mysensor.yaml"
    main(
        _argv(
            "sensors stats --paths [{src}] --name mysensor --gsd_m 1 --nodata 65535 "
            "--dtype uint16 --out {out}",
            src=src,
            out=yaml_path,
        )
    )
    assert f"sensor mysensor written to {yaml_path}" in capsys.readouterr().out

    with rasterio.open(naip) as r:
        pixels, t = r.read(), r.transform
    sensors_env.setenv("EARTHPLAT_SENSORS", str(yaml_path))
    reset_custom_modalities()
    m = get_modality("mysensor")
    assert [b.name for b in m.bands] == ["Red", "Green", "Blue", "NIR"]
    assert m.dtype == "uint16" and m.nodata == 65535 and m.bands[0].gsd_m == 1.0
    for band, values in zip(m.bands, pixels, strict=True):
        assert band.mean == pytest.approx(values.mean(), abs=1e-3)
        assert band.std == pytest.approx(values.std(), rel=1e-3)

    ds = str(tmp_path / "ds")
    main(
        _argv(
            "windows create --dataset {ds} --bbox {bbox} --start 2020-01-01 --end 2021-01-01 "
            "--size 100 --resolution 1 --crs source --source [{naip}]",
            ds=ds,
            bbox=json.dumps(_wgs84_bounds(naip)),
            naip=naip,
        )
    )
    run = _earthplat(
        *_argv(
            "ingest --dataset {ds} --layer img --modality mysensor --paths [{naip}] "
            "--datetime 2020-06-01 --period 365d --max_periods 1",
            ds=ds,
            naip=naip,
        ),
        cwd=tmp_path,
        env={"EARTHPLAT_SENSORS": str(yaml_path)},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    windows = Dataset(ds).windows()
    done = [w for w in windows if Dataset(ds).layer_done(w, "img")]
    assert len(done) == 9  # 256 px in 100 px windows on the raster's own grid: 3 x 3
    for w in done:
        layer = read_layer_arrays(Dataset(ds), w, "img")
        assert layer.metadata["modality"] == "mysensor" and tuple(layer.bands) == m.band_names
        c0, r0 = round((w.transform.c - t.c) / t.a), round((w.transform.f - t.f) / t.e)
        rows = slice(max(r0, 0), min(r0 + w.height, 256))
        cols = slice(max(c0, 0), min(c0 + w.width, 256))
        inside = np.zeros((w.height, w.width), bool)
        inside[rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0] = True
        np.testing.assert_array_equal(layer.valid[0], inside)
        got = layer.data[0][:, inside].reshape(4, rows.stop - rows.start, -1)
        np.testing.assert_array_equal(got, pixels[:, rows, cols])
