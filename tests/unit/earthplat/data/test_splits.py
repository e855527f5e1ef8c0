"""Spatial splits: whole cells per split, no test pixel in train/val, seeded, cross-zone."""

from __future__ import annotations

import numpy as np
import pytest

from earthplat.data.splits import property_split, spatial_split
from earthplat.data.window import Window, window_around
from earthplat.errors import DataError


def _win(name: str, col: int, row: int, size: int = 32, crs: str = "EPSG:32633") -> Window:
    return Window(name, crs, 10.0, (col, row, col + size, row + size), "2022-01-01", "2022-02-01")


def _overlap_area(a: Window, b: Window, buffer_m: float = 0.0) -> float:
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    g = b.geometry().buffer(buffer_m, join_style="mitre") if buffer_m else b.geometry()
    if a.crs != b.crs:
        g = shape(transform_geom(b.crs, a.crs, g.__geo_interface__))
    return a.geometry().intersection(g).area


def _random_windows(n: int, seed: int) -> list[Window]:
    rng = np.random.default_rng(seed)
    return [
        _win(f"r{i}", 50_000 + int(rng.integers(0, 200)), -520_000 + int(rng.integers(0, 200)))
        for i in range(n)
    ]


@pytest.mark.parametrize("buffer_m", [0.0, 50.0])
def test_overlapping_windows_never_leak(buffer_m):
    windows = _random_windows(60, seed=1)
    splits = spatial_split(windows, cell_size_m=640, seed=3, buffer_m=buffer_m)
    assert splits["test"] and splits["train"]
    for name in ("train", "val"):
        for w in splits[name]:
            for t in splits["test"]:
                assert _overlap_area(w, t, buffer_m) <= 1.0, (w.name, t.name)
    kept = sum(len(v) for v in splits.values())
    assert kept < len(windows)  # overlapping windows were actually dropped
    names = [w.name for v in splits.values() for w in v]
    assert len(names) == len(set(names))


def test_adjacent_windows_are_kept():
    """Windows that only share an edge with a test window share no pixel: not dropped."""
    windows = [
        _win(f"g{i}_{j}", 50_000 + 32 * i, -520_000 + 32 * j) for i in range(8) for j in range(8)
    ]
    splits = spatial_split(windows, cell_size_m=320, seed=0)
    assert sum(len(v) for v in splits.values()) == len(windows)


def test_seed_determines_the_split():
    windows = [
        _win(f"g{i}_{j}", 50_000 + 32 * i, -520_000 + 32 * j) for i in range(10) for j in range(10)
    ]

    def names(seed):
        return {
            k: [w.name for w in v]
            for k, v in spatial_split(windows, cell_size_m=640, seed=seed).items()
        }

    assert names(0) == names(0)
    assert names(0) != names(1)


def test_fractions_roughly_honoured_and_cells_whole():
    windows = [
        _win(f"g{i}_{j}", 51_200 + 32 * i, -520_000 + 32 * j) for i in range(20) for j in range(20)
    ]
    splits = spatial_split(
        windows, cell_size_m=640, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=0
    )
    counts = {k: len(v) for k, v in splits.items()}
    assert counts["train"] == pytest.approx(240, abs=8)
    assert counts["val"] == pytest.approx(80, abs=8)
    assert counts["test"] == pytest.approx(80, abs=8)
    owner = {}
    for name, members in splits.items():
        for w in members:
            cell = (w.bounds[0] // 64, w.bounds[1] // 64)  # 640 m cells, aligned
            assert owner.setdefault(cell, name) == name  # a cell never spans two splits


def test_cross_zone_windows_split_and_do_not_leak():
    """The same ground near the 12 E zone boundary, seen from zones 32 and 33."""
    windows = []
    for i in range(6):
        lat = 46.0 + i * 0.004
        windows.append(
            window_around(
                11.999,
                lat,
                name=f"a{i}",
                start="2022-01-01",
                end="2022-02-01",
                size=32,
                crs="EPSG:32632",
            )
        )
        windows.append(
            window_around(
                11.9995,
                lat,
                name=f"b{i}",
                start="2022-01-01",
                end="2022-02-01",
                size=32,
                crs="EPSG:32633",
            )
        )
    dropped = 0
    for seed in range(6):
        splits = spatial_split(windows, cell_size_m=500, seed=seed)
        assert splits["test"]
        dropped += len(windows) - sum(len(v) for v in splits.values())
        for name in ("train", "val"):
            for w in splits[name]:
                for t in splits["test"]:
                    assert _overlap_area(w, t) <= 1.0, (seed, w.name, t.name)
        # an a/b twin covers the same ground, so both can never sit on opposite sides of test
        test_rows = {w.name[1:] for w in splits["test"]}
        train_rows = {w.name[1:] for w in splits["train"] + splits["val"]}
        assert not test_rows & train_rows
    assert dropped > 0  # the other zone's twin of a test window was caught


def test_property_split_and_errors():
    ws = [_win("a", 0, 0), _win("b", 64, 0), _win("c", 128, 0)]
    ws[0].properties["split"] = "train"
    ws[1].properties["split"] = "test"
    out = property_split(ws)
    assert [w.name for w in out["train"]] == ["a"] and [w.name for w in out["test"]] == ["b"]
    assert out["val"] == []
    with pytest.raises(DataError, match="property 'fold'"):
        property_split(ws, property="fold")
    with pytest.raises(DataError, match="cell_size_m"):
        spatial_split(ws, cell_size_m=0)
    with pytest.raises(DataError, match="fractions"):
        spatial_split(ws, cell_size_m=100, fractions={"train": -1})
