from datetime import UTC, datetime

import numpy as np
import pytest

from earthplat.data.timeseries import composite, make_periods, parse_period
from earthplat.errors import WindowError


def test_periods():
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 12, 31, tzinfo=UTC)
    ps = make_periods(start, end, "30d")
    assert len(ps) == 13 and ps[0][0] == start and ps[-1][1] == end
    assert len(make_periods(start, end, "30d", max_periods=12)) == 12
    assert parse_period("2w").days == 14
    with pytest.raises(WindowError):
        parse_period("monthly")


def _stack():
    # 3 acquisitions, 1 band, 2x2: acquisition 0 cloudy on the left column
    stack = np.array([[[[1, 1], [1, 1]]], [[[2, 2], [2, 2]]], [[[9, 3], [9, 3]]]], dtype=np.uint16)
    valid = np.ones((3, 2, 2), dtype=bool)
    valid[0, :, 0] = False
    return stack, valid


def test_first_valid_fills_from_later_scenes():
    out, ok = composite(*_stack(), "first")
    assert out[0].tolist() == [[2, 1], [2, 1]] and ok.all()


def test_median_ignores_invalid():
    out, ok = composite(*_stack(), "median")
    assert out[0].tolist() == [[6, 2], [6, 2]] and ok.all()  # median of (2, 9) -> 5.5 -> 6


def test_least_cloudy_prefers_clear_scene():
    stack, valid = _stack()
    out, _ = composite(stack, valid, "least_cloudy", cloud_fraction=[0.5, 0.0, 0.1])
    assert out[0].tolist() == [[2, 2], [2, 2]]


def test_nothing_valid_stays_invalid():
    stack, valid = _stack()
    out, ok = composite(stack, np.zeros_like(valid), "first")
    assert not ok.any() and (out == 0).all()
