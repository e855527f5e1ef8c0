"""Custom sensors from YAML files (earthplat.sensors.file) and their registration."""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import replace

import numpy as np
import pytest

import earthplat.sensors.file as sensor_file
from earthplat.errors import SensorError, SensorFileError
from earthplat.sensors import (
    MODALITIES,
    SENSORS_ENV,
    get_modality,
    load_sensor_file,
    modalities,
    normalize,
    register_modality,
    register_sensor_file,
    reset_custom_modalities,
)

GOOD = """
name: drone_rgbn
description: test camera
gsd_m: 0.1
dtype: uint16
nodata: 65535
units: DN
bands:
  - {name: R, common_name: red, wavelength_um: 0.65, mean: 90, std: 40, aliases: [b1]}
  - {name: G, common_name: green, mean: 100, std: 38}
  - {name: B, common_name: blue, mean: 88, std: 36}
  - {name: NIR, common_name: nir, gsd_m: 0.2, mean: 120, std: 50}
composites:
  - {name: false_color, bands: [NIR, R, G], ranges: [0, 255]}
"""


@pytest.fixture(autouse=True)
def _clean_registry(monkeypatch):
    monkeypatch.delenv(SENSORS_ENV, raising=False)
    reset_custom_modalities()
    yield
    reset_custom_modalities()


def _write(tmp_path, text: str, name: str = "sensor.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_from_real_band_stats_registers_through_the_environment(
    shared_data, tmp_path, monkeypatch
):
    import rasterio

    from earthplat.data.band_stats import band_stats, sensor_yaml

    patch = sorted((shared_data / "real" / "eurosat_ms_subset" / "Forest").glob("*.tif"))[0]
    stats = band_stats([str(patch)])
    assert [s.name for s in stats] == [f"B{i}" for i in range(1, 14)]  # no descriptions
    text = sensor_yaml("my_eurosat", stats, gsd_m=10, dtype="uint16", nodata=65535)
    (tmp_path / "sensors").mkdir()
    (tmp_path / "sensors" / "my_eurosat.yaml").write_text(text)
    other = _write(tmp_path, GOOD, "drone.yaml")
    monkeypatch.setenv(SENSORS_ENV, os.pathsep.join([str(tmp_path / "sensors"), str(other)]))
    reset_custom_modalities()

    m = get_modality("my_eurosat")
    assert m.band_names == tuple(s.name for s in stats) and m.dtype == "uint16"
    assert "my_eurosat" in MODALITIES and "drone_rgbn" in [x.name for x in modalities()]
    with rasterio.open(patch) as src:
        pixels = src.read().astype(np.float32)  # [C, H, W]
    out = normalize(pixels, "my_eurosat")
    # the statistics came from these very pixels: each band's mean lands at 0.5
    assert np.allclose(out.mean(axis=(1, 2)), 0.5, atol=1e-4)
    assert np.allclose(out.std(axis=(1, 2)), 0.25, atol=1e-4)


def test_the_documented_example_loads(tmp_path):
    example = re.search(r"::\n\n(.*?)\n\nFields:", sensor_file.__doc__, re.S).group(1)
    (m,) = load_sensor_file(_write(tmp_path, textwrap.dedent(example)))
    assert m.name == "drone_rgbn" and m.band_names == ("R", "G", "B", "NIR")
    assert m.band("nir").gsd_m == 0.2 and m.band("b1").name == "R"
    assert m.composite("false_color").ranges == ((0.0, 255.0),) * 3


def test_loading_validates_but_does_not_register(tmp_path):
    (m,) = load_sensor_file(_write(tmp_path, GOOD))
    assert m.bands[0].wavelength_um == 0.65 and m.bands[1].gsd_m == 0.1
    assert m.band_sets == (("R", "G", "B", "NIR"),) and m.multitemporal
    with pytest.raises(SensorError, match="unknown modality 'drone_rgbn'"):
        get_modality("drone_rgbn")
    register_modality(m)
    register_modality(m)  # the same modality twice is a no-op
    assert get_modality("drone_rgbn") is m


def test_a_file_may_hold_several_sensors_and_band_sets(tmp_path):
    text = """
    - name: cam_a
      gsd_m: 1
      dtype: float32
      bands: [{name: X, mean: 0, std: 1}, {name: Y, mean: 0, std: 1}]
      band_sets: [[X], [y]]
      multitemporal: false
    - {name: cam_b, gsd_m: 2, dtype: uint8, nodata: 255, bands: [{name: Z, mean: 1, std: 2}]}
    """
    a, b = load_sensor_file(_write(tmp_path, text))
    assert a.band_sets == (("X",), ("Y",)) and a.nodata is None and not a.multitemporal
    assert b.nodata == 255 and b.bands[0].gsd_m == 2


BAD = [
    ("colour: red\n", r"file: unknown key\(s\) colour; allowed: name, description"),
    ("bands: [{name: R, mean: 1, std: 1, colour: red}]\n", r"bands\[0\] \(R\): unknown key"),
    ("bands: [{name: R, std: 1}]\n", r"bands\[0\] \(R\)\.mean: is missing"),
    ("bands: [{name: R, mean: 1}]\n", r"bands\[0\] \(R\)\.std: is missing"),
    ("bands: [{name: R, mean: 1, std: 0}]\n", r"\.std: must be positive"),
    ("bands: [{name: R, mean: x, std: 1}]\n", r"\.mean: must be a number, got 'x'"),
    ("bands: [{name: R, mean: 1, std: 1}, {name: r, mean: 1, std: 1}]\n", "duplicate band name"),
    ("bands: [{name: red_edge, mean: 1, std: 1}]\n", r"name: 'red_edge' must be letters"),
    ("bands: [{name: R, mean: 1, std: 1, wavelength_um: 865}]\n", "not in micrometres"),
    ("bands: []\n", "bands: is empty"),
    (
        "bands: [{name: R, mean: 1, std: 1, aliases: [g]}, {name: G, mean: 1, std: 1}]\n",
        "'g' would name both band R and band G",
    ),
    ("band_sets: [[R], [R]]\n", "must hold every band"),
    ("band_sets: [[SWIR]]\n", "band_sets: .*no band 'SWIR'"),
    ("composites: [{name: c, bands: [R, R, SWIR], ranges: [0, 1]}]\n", "no band 'SWIR'"),
    ("composites: [{name: c, bands: [R, R, R], ranges: [1, 0]}]\n", "low must be below high"),
    ("composites: [{name: c, bands: [R, R], ranges: [0, 1]}]\n", "must be three band names"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_fields_are_named(tmp_path, extra, message):
    base = "name: cam\ngsd_m: 1\ndtype: uint16\nnodata: 65535\n"
    if not extra.startswith("bands:"):
        base += "bands: [{name: R, mean: 1, std: 1}]\n"
    path = _write(tmp_path, base + extra)
    with pytest.raises(SensorFileError, match=message) as info:
        load_sensor_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ("name: My Cam\ngsd_m: 1\ndtype: uint16\nnodata: 0\n", "name: 'My Cam' must be lowercase"),
        ("gsd_m: 1\ndtype: uint16\nnodata: 0\n", "name: is missing"),
        ("name: cam\ngsd_m: 1\nnodata: 0\n", "dtype: is missing"),
        ("name: cam\ngsd_m: 1\ndtype: uint12\nnodata: 0\n", "dtype: 'uint12' is not one of"),
        ("name: cam\ngsd_m: 1\ndtype: uint16\n", "nodata: integer dtype uint16 needs a nodata"),
        ("name: cam\ngsd_m: 1\ndtype: uint8\nnodata: 256\n", r"nodata: 256 does not fit uint8"),
        ("name: cam\ndtype: float32\n", r"gsd_m: is missing \(set it here or once at the top"),
        ("name: naip\ngsd_m: 1\ndtype: uint16\nnodata: 0\n", "'naip' is a built-in modality"),
        ("name: cam\ngsd_m: 1\ndtype: float32\nmultitemporal: yes please\n", "must be a bool"),
    ],
)
def test_bad_top_level_fields_are_named(tmp_path, top, message):
    path = _write(tmp_path, top + "bands: [{name: R, mean: 1, std: 1}]\n")
    with pytest.raises(SensorFileError, match=message):
        load_sensor_file(path)


def test_unreadable_files_say_why(tmp_path):
    with pytest.raises(SensorFileError, match="does not exist"):
        load_sensor_file(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SensorFileError, match=r"latin1\.yaml: cannot read the sensor file"):
        load_sensor_file(tmp_path / "latin1.yaml")
    with pytest.raises(SensorFileError, match="not valid YAML"):
        load_sensor_file(_write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(SensorFileError, match="empty"):
        load_sensor_file(_write(tmp_path, "# nothing\n"))
    with pytest.raises(SensorFileError, match="must be a mapping"):
        load_sensor_file(_write(tmp_path, "- just\n- strings\n"))
    two = "- {name: a, gsd_m: 1, dtype: float32, bands: [{name: X, mean: 0, std: 1}]}\n" * 2
    with pytest.raises(SensorFileError, match="sensor a is described more than once"):
        load_sensor_file(_write(tmp_path, two))


def test_replacing_a_built_in_takes_an_explicit_flag(tmp_path):
    naip = get_modality("naip")
    text = GOOD.replace("name: drone_rgbn", "name: naip\nreplace: true")
    (m,) = register_sensor_file(_write(tmp_path, text))
    assert get_modality("naip") is m and m is not naip
    assert [x.name for x in modalities()].count("naip") == 1
    reset_custom_modalities()
    assert get_modality("naip") is naip
    with pytest.raises(SensorError, match="'naip' is a built-in modality"):
        register_modality(replace(m, description="another"))
    register_modality(m, replace=True)
    assert get_modality("naip") is m


def test_register_refuses_clashes(tmp_path):
    (m,) = load_sensor_file(_write(tmp_path, GOOD))
    register_modality(m)
    with pytest.raises(SensorError, match="a different custom modality 'drone_rgbn'"):
        register_modality(replace(m, description="changed"))
    with pytest.raises(SensorError, match="is a shorthand for sentinel2_l2a"):
        register_modality(replace(m, name="s2"))
    with pytest.raises(SensorError, match="would name both"):
        register_modality(
            replace(
                m,
                name="cam2",
                bands=(m.bands[0], replace(m.bands[1], aliases=("b1",)), *m.bands[2:]),
            )
        )


def test_environment_errors_name_the_variable_and_load_all_or_nothing(tmp_path, monkeypatch):
    good = _write(tmp_path, GOOD, "good.yaml")
    bad = _write(
        tmp_path, GOOD.replace("drone_rgbn", "cam_bad").replace("std: 38", "std: -1"), "bad.yaml"
    )
    monkeypatch.setenv(SENSORS_ENV, os.pathsep.join([str(good), str(bad)]))
    reset_custom_modalities()
    with pytest.raises(SensorFileError, match=f"{SENSORS_ENV}=.*bad.yaml: bands.1. .G..std"):
        get_modality("sentinel2_l2a")
    monkeypatch.setenv(SENSORS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SensorFileError, match=f"{SENSORS_ENV} lists .*nowhere, which does not"):
        get_modality("sentinel2_l2a")
    # nothing of the failed load stayed registered; fixing the variable is enough to retry
    monkeypatch.setenv(SENSORS_ENV, str(good))
    assert get_modality("drone_rgbn").band_names == ("R", "G", "B", "NIR")
    monkeypatch.setenv(SENSORS_ENV, os.pathsep.join([str(good), str(good)]))
    reset_custom_modalities()
    assert get_modality("drone_rgbn")  # the same sensor listed twice is the same sensor


def test_unknown_modality_points_at_custom_sensors():
    with pytest.raises(SensorError, match=f"YAML file listed in {SENSORS_ENV}"):
        get_modality("planetscope")
