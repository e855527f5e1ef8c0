"""Geographic request fields shared by the API's schemas and the job payloads."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def check_bbox(b: list[float]) -> list[float]:
    """(min lon, min lat, max lon, max lat) in WGS84 with min < max; an inverted box is an
    error, never flipped (a flipped box over the antimeridian would be another place)."""
    names = ("min lon", "min lat", "max lon", "max lat")
    if not all(-180 <= b[i] <= 180 for i in (0, 2)) or not all(-90 <= b[i] <= 90 for i in (1, 3)):
        raise ValueError(
            f"bbox {b} is outside WGS84: lon must lie in [-180, 180], lat in [-90, 90]"
        )
    for lo, hi in ((0, 2), (1, 3)):
        if not b[lo] < b[hi]:
            raise ValueError(
                f"bbox {b} is inverted or empty: {names[lo]} {b[lo]} must be less than "
                f"{names[hi]} {b[hi]}; send (min lon, min lat, max lon, max lat)"
            )
    return b


BBox = Annotated[
    list[float],
    Field(min_length=4, max_length=4, description="WGS84 (min lon, min lat, max lon, max lat)"),
    AfterValidator(check_bbox),
]
