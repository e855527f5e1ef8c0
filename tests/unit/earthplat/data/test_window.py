import pytest

from earthplat.data.projection import crs_for_lonlat, utm_zone
from earthplat.data.window import (
    Window,
    window_around,
    windows_from_aoi,
    windows_from_points,
    windows_from_polygons,
)
from earthplat.errors import WindowError


@pytest.mark.parametrize(
    "lon, lat, crs",
    [
        (14.55, 45.86, "EPSG:32633"),
        (-0.76, 38.1, "EPSG:32630"),
        (-122.3, 47.6, "EPSG:32610"),
        (151.2, -33.9, "EPSG:32756"),
        (5.0, 60.0, "EPSG:32632"),  # Norway exception
        (15.0, 78.0, "EPSG:32633"),  # Svalbard
        (0.0, 85.0, "EPSG:32661"),
        (0.0, -85.0, "EPSG:32761"),  # UPS
    ],
)
def test_projection_choice(lon, lat, crs):
    assert crs_for_lonlat(lon, lat) == crs


def test_utm_zone_edges():
    assert utm_zone(-180.0, 0.0) == 1 and utm_zone(179.99, 0.0) == 60
    with pytest.raises(WindowError):
        utm_zone(200.0, 0.0)


def test_grid_is_aligned_and_covers_the_aoi():
    aoi = (14.50, 45.80, 14.56, 45.84)
    ws = windows_from_aoi(aoi, start="2020-01-01", end="2021-01-01", size=128)
    assert len(ws) >= 4
    assert all(w.bounds[0] % 128 == 0 and w.bounds[1] % 128 == 0 for w in ws)
    from shapely import union_all
    from shapely.geometry import box

    covered = union_all([w.geometry_wgs84() for w in ws])
    assert covered.contains(box(*aoi).buffer(-1e-6))
    bigger = windows_from_aoi(
        (14.49, 45.79, 14.57, 45.85), start="2020-01-01", end="2021-01-01", size=128
    )
    assert {w.name for w in ws} <= {w.name for w in bigger}  # same cells, reproducibly


def test_window_geometry_and_record_round_trip():
    w = window_around(
        -0.76,
        38.1,
        name="p",
        size=64,
        resolution=10,
        start="2020-01-01",
        end="2020-02-01",
        properties={"label": 3},
    )
    assert (w.width, w.height) == (64, 64)
    left, bottom, right, top = w.projected_bounds
    assert right - left == 640 and top - bottom == 640
    assert w.transform.a == 10 and w.transform.e == -10
    assert Window.from_record(w.to_record()) == w
    assert Window.from_record(w.to_record()).properties == {"label": 3}
    assert w.geometry_wgs84().contains(__import__("shapely").Point(-0.76, 38.1))


def test_points_and_polygons():
    ws = windows_from_points(
        [
            {
                "lon": "10.0",
                "lat": "50.0",
                "start": "2020-01-01",
                "end": "2020-06-01",
                "name": "a",
                "crop": "wheat",
            }
        ],
        size=32,
    )
    assert ws[0].name == "a" and ws[0].properties == {"crop": "wheat"}
    with pytest.raises(WindowError, match="lacks lat"):
        windows_from_points([{"lon": 1, "start": "2020-01-01", "end": "2020-02-01"}])
    poly = {
        "type": "Feature",
        "properties": {"name": "field"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[10, 50], [10.01, 50], [10.01, 50.01], [10, 50]]],
        },
    }
    (pw,) = windows_from_polygons([poly], start="2020-01-01", end="2020-06-01", pad=2)
    assert pw.name == "field" and 70 < pw.width < 80 and 110 < pw.height < 120


def test_bad_window_names_and_bounds():
    with pytest.raises(WindowError, match="may only hold"):
        Window("a/b", "EPSG:32633", 10, (0, 0, 1, 1), "2020-01-01", "2020-02-01")
    with pytest.raises(WindowError, match="empty pixel bounds"):
        Window("a", "EPSG:32633", 10, (0, 0, 0, 1), "2020-01-01", "2020-02-01")
