"""Painted masks (labeling.masks): RLE round trips, validation against the window grid, and the
outline that rasterizes back to the painted pixels on a real UTM window grid."""

from __future__ import annotations

import numpy as np
import pytest

from labeling import masks
from labeling.services.errors import InvalidInputError, TooLargeError


@pytest.mark.parametrize(
    ("pixels", "counts"),
    [
        (np.zeros((2, 3), bool), [6]),
        (np.ones((2, 3), bool), [0, 6]),
        (np.eye(1, 1, dtype=bool), [0, 1]),  # a one-pixel window, set
        (np.zeros((1, 1), bool), [1]),
        (np.array([[1, 0, 0], [0, 0, 1]], bool), [0, 1, 4, 1]),  # first pixel set, last set
        (np.array([[0, 1, 1], [1, 0, 0]], bool), [1, 3, 2]),  # a run wraps onto the next row
    ],
)
def test_rle_round_trips_edge_cases(pixels, counts):
    rle = masks.encode(pixels)
    assert rle == {"encoding": "rle", "shape": list(pixels.shape), "counts": counts}
    assert np.array_equal(masks.decode(rle), pixels)


def test_rle_round_trips_random_pixels():
    rng = np.random.default_rng(7)
    for shape, p in (((64, 64), 0.5), ((17, 31), 0.05), ((5, 200), 0.95)):
        pixels = rng.random(shape) < p
        rle = masks.encode(pixels)
        assert sum(rle["counts"]) == pixels.size
        assert 0 not in rle["counts"][1:]  # canonical: only a leading run may be empty
        assert np.array_equal(masks.decode(rle), pixels)


@pytest.fixture
def grid(windows):
    """The earthplat Window of a real 64 x 64 window row (UTM 30N, 10 m)."""
    w = windows[0].to_window()
    assert w.crs.startswith("EPSG:326") and (w.height, w.width) == (64, 64)
    return w


def test_check_mask_is_canonical(grid):
    n = grid.height * grid.width
    out = masks.check_mask(
        {"encoding": "rle", "shape": [64, 64], "counts": [0, 0, 10, 5, 0, 3, n - 18]},
        grid,
        max_bytes=10_000,
    )
    assert out["counts"] == [10, 8, n - 18]  # zero runs folded, equal pixels -> equal JSON


@pytest.mark.parametrize(
    ("mask", "message", "fix"),
    [
        ({"encoding": "rle", "shape": [64, 32], "counts": [4096]}, "not the grid", "[64, 64]"),
        ({"encoding": "rle", "shape": [64, 64], "counts": [0, 4095]}, "sum to 4,095", "every"),
        ({"encoding": "rle", "shape": [64, 64], "counts": [-1, 4097]}, "negative", "run"),
        ({"encoding": "rle", "shape": [64, 64], "counts": [4096]}, "no pixel", "delete"),
        ({"encoding": "rle", "shape": [64, 64], "counts": [1.5, 4094.5]}, "integers", "run"),
        ({"encoding": "png", "shape": [64, 64], "counts": [4096]}, "'png'", "rle"),
        ([1, 2], "object", "rle"),
    ],
)
def test_bad_masks_name_the_fix(grid, mask, message, fix):
    with pytest.raises(InvalidInputError, match=message) as info:
        masks.check_mask(mask, grid, max_bytes=100_000)
    assert info.value.status == 422 and fix in info.value.fix


def test_mask_over_the_byte_limit_is_413(grid):
    counts = [1, 1] * 2048  # a checkerboard-like stripe: 4096 runs
    with pytest.raises(TooLargeError, match="limit is 1,000") as info:
        masks.check_mask(
            {"encoding": "rle", "shape": [64, 64], "counts": counts}, grid, max_bytes=1_000
        )
    assert "EARTHPLAT_ANNOTATION_MAX_BYTES" in info.value.fix


def test_masks_only_for_per_pixel_class_tasks():
    assert masks.mask_tasks() == ["segmentation"]
    masks.check_task("segmentation")
    for task, tool in (
        ("classification", "window's class"),
        ("detection", "box"),
        ("pixel_regression", "numeric value"),
    ):
        with pytest.raises(InvalidInputError, match=f"a {task} project") as info:
            masks.check_task(task)
        assert tool in info.value.fix and "segmentation" in info.value.fix


def _painting(shape) -> np.ndarray:
    """A brush-like painting: blobs with a hole, a diagonal touch, a one-pixel island and a
    region on the window's edge."""
    rng = np.random.default_rng(3)
    pixels = np.zeros(shape, bool)
    pixels[5:30, 5:30] = True
    pixels[12:18, 12:18] = False  # a hole
    pixels[30, 30] = True  # touches the blob at one corner only
    pixels[50, 10] = True  # an island of one pixel
    pixels[40:, 50:] = True  # runs off the bottom-right edge
    pixels[rng.integers(0, shape[0], 40), rng.integers(0, shape[1], 40)] ^= True  # noise
    return pixels


def test_outline_rasterizes_back_to_the_same_pixels_on_a_utm_grid(grid):
    """vectorise -> reproject to WGS84 -> rasterize on the window grid == the painted pixels."""
    from shapely.geometry import shape

    from earthplat.data.labels import rasterize_features

    pixels = _painting((grid.height, grid.width))
    rle = masks.encode(pixels)
    outline = masks.outline(rle, grid)
    geom = shape(outline)
    assert outline["type"] == "MultiPolygon" and geom.is_valid
    assert any(len(p.interiors) for p in geom.geoms)  # the hole stays a hole
    assert geom.difference(grid.geometry_wgs84()).area < 1e-6 * geom.area  # inside the window
    feature = {"type": "Feature", "geometry": outline, "properties": {"class": 1}}
    raster, _ = rasterize_features(grid, [feature])
    assert np.array_equal(raster == 1, pixels)


def test_burn_sets_exactly_the_painted_pixels(grid):
    pixels = _painting((grid.height, grid.width))
    out = np.full((grid.height, grid.width), -1, np.int16)
    out[:, :8] = 0  # something painted earlier
    masks.burn(out, masks.encode(pixels), 3, window=grid)
    assert np.array_equal(out == 3, pixels)
    assert (out[~pixels][:, None] != 3).all()
    assert ((out == 0) == (~pixels & (np.arange(64)[None, :] < 8))).all()
    from earthplat.errors import DataError

    with pytest.raises(DataError, match="repaint"):
        masks.burn(out, masks.encode(np.ones((8, 8), bool)), 3, window=grid)


def test_union_of_masks():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[0, :2], b[3, 3] = True, True
    assert np.array_equal(masks.decode(masks.union([masks.encode(a), masks.encode(b)])), a | b)
    with pytest.raises(InvalidInputError, match="different grids"):
        masks.union([masks.encode(a), masks.encode(np.ones((2, 2), bool))])


def test_a_noisy_masks_outline_stays_within_the_byte_limit(grid):
    """A checkerboard's exact outline is many times its RLE: beyond the limit it is simplified,
    then the pixels' bounding box; the mask itself is unchanged (it is the label)."""
    import json

    from shapely.geometry import shape

    pixels = (np.indices((grid.height, grid.width)).sum(0) % 2).astype(bool)
    rle = masks.encode(pixels)
    exact = masks.outline(rle, grid)
    size = len(json.dumps(exact, separators=(",", ":")))
    limit = size // 20
    bounded = masks.outline(rle, grid, max_bytes=limit)
    assert len(json.dumps(bounded, separators=(",", ":"))) <= limit
    assert shape(bounded).is_valid and shape(bounded).buffer(1e-9).contains(shape(exact).centroid)
    assert masks.outline(rle, grid, max_bytes=size) == exact  # within the limit: exact
