"""The inference errors: bad inputs named with the problem and the fix."""

from __future__ import annotations

from earthplat.errors import DataError


class InferenceError(DataError):
    """An input or model that cannot be predicted: band mismatch, no CRS, empty area, ..."""
