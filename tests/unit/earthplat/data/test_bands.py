"""File bands map one-to-one to (band, date): nothing is dropped, mismatches name the fix.

Regression tests for issue 11, bug 3: an undescribed multi-date file given all its band names
kept only its last date.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from earthplat.data.sources import LocalSource
from earthplat.data.sources.bands import INGEST_FLAGS, PREDICT_FLAGS, map_file_bands
from earthplat.errors import DataError
from earthplat.inference.errors import InferenceError
from earthplat.inference.reader import RasterSource
from earthplat.sensors import get_modality

S2 = get_modality("sentinel2_l2a")
FOUR = ["B02", "B03", "B04", "B08"]


@pytest.fixture
def eight_bands(tmp_path) -> str:
    """Two dates x four bands, no band descriptions, no date anywhere."""
    path = tmp_path / "scene.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=8,
        dtype="uint16",
        crs="EPSG:32633",
        transform=from_origin(500000, 5000000, 10, 10),
        nodata=0,
    ) as dst:
        dst.write(rng.integers(100, 3000, (8, 8, 8)).astype("uint16"))
    return str(path)


def test_band_names_of_one_date_with_dates_give_both_dates(eight_bands) -> None:
    source = LocalSource(
        [eight_bands], "sentinel2_l2a", bands=FOUR, dates=["2020-06-01", "2020-07-01"]
    )
    items = source.items()
    assert [it.datetime.date().isoformat() for it in items] == ["2020-06-01", "2020-07-01"]
    assert [it.assets["B04"].band_index for it in items] == [3, 7]  # date-major


def test_dated_band_names_give_both_dates(eight_bands) -> None:
    names = [f"{d}_{b}" for d in ("2020-06-01", "2020-07-01") for b in FOUR]
    items = LocalSource([eight_bands], "sentinel2_l2a", bands=names).items()
    assert len(items) == 2 and items[1].assets["B08"].band_index == 8


def test_one_date_per_file_band(eight_bands) -> None:
    dates = ["2020-06-01"] * 4 + ["2020-07-01"] * 4
    with pytest.raises(DataError, match="more than once"):  # a date list names each date once
        LocalSource([eight_bands], "sentinel2_l2a", bands=FOUR * 2, dates=dates).items()
    mapping = map_file_bands(
        "f.tif",
        count=2,
        descriptions=[None, None],
        modality=S2,
        names=["B04", "B08"],
        dates=["2020-06-01", "2020-07-01"],
    )  # two names x two dates would be 4: here a date per band
    assert mapping[0][0] == "B04" and mapping[1][1].month == 7


def test_repeated_names_without_dates_are_an_error_not_a_lost_date(eight_bands) -> None:
    with pytest.raises(DataError) as err:
        LocalSource([eight_bands], "sentinel2_l2a", bands=FOUR * 2, datetime="2020-06-01").items()
    message = str(err.value)
    assert eight_bands in message and "file bands 1 and 5 are both B02" in message
    assert "--file_bands" in message and "--dates" in message


@pytest.mark.parametrize(
    ("names", "dates", "expected"),
    [
        (FOUR[:3], None, "has 8 bands but --file_bands names 3"),
        (FOUR, ["2020-06-01", "2020-07-01", "2020-08-01"], r"4 x 3 = 12"),
        (["B02", "B03", "B04", "X9"] * 2, None, r"entry 4 \('X9'\) is not a sentinel2_l2a band"),
        (FOUR, ["June"], "is not a date"),
    ],
    ids=["count", "count-with-dates", "unknown-band", "bad-date"],
)
def test_mismatches_name_the_file_what_was_found_and_the_flag(
    eight_bands, names, dates, expected
) -> None:
    with pytest.raises(DataError, match=expected) as err:
        LocalSource([eight_bands], "sentinel2_l2a", bands=names, dates=dates).items()
    assert eight_bands in str(err.value)


def test_predict_uses_the_same_mapping_and_its_own_flag_names(eight_bands) -> None:
    src = RasterSource.open(
        eight_bands, "sentinel2_l2a", ["B04", "B08"], bands=FOUR, dates=["2020-06-01", "2020-07-01"]
    )
    assert [d.isoformat() for d in src.dates] == ["2020-06-01", "2020-07-01"]
    assert src.channels == [[3, 4], [7, 8]]
    with pytest.raises(InferenceError) as err:
        RasterSource.open(eight_bands, "sentinel2_l2a", ["B04"], bands=FOUR * 2, when="2020-06-01")
    assert "--bands" in str(err.value) and "--file_bands" not in str(err.value)
    assert "--dates" in str(err.value)


def test_undated_file_for_a_model_that_encodes_time_asks_for_a_date(eight_bands) -> None:
    with pytest.raises(InferenceError, match="pass --date YYYY-MM-DD"):
        RasterSource.open(
            eight_bands,
            "sentinel2_l2a",
            ["B04"],
            bands=[f"{b}" for b in FOUR] + ["B05", "B06", "B07", "B8A"],
        )


def test_flags_are_spelled_per_command() -> None:
    assert (INGEST_FLAGS.bands, PREDICT_FLAGS.bands) == ("--file_bands", "--bands")
    assert (INGEST_FLAGS.date, PREDICT_FLAGS.date) == ("--datetime", "--date")


def test_thirteen_undescribed_bands_are_not_taken_for_l2a(tmp_path) -> None:
    path = tmp_path / "scene13.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=13, dtype="uint16",
        crs="EPSG:32633", transform=from_origin(500000, 5000000, 10, 10),
    ) as dst:  # fmt: skip
        dst.write(np.ones((13, 4, 4), "uint16"))
    with pytest.raises(DataError, match=r"look like Sentinel-2 L1C.*--modality sentinel2_l1c"):
        LocalSource([str(path)], "sentinel2_l2a", datetime="2020-01-01").items()
    items = LocalSource([str(path)], "sentinel2_l1c", datetime="2020-01-01").items()
    assert items[0].assets["B10"].band_index == 11
