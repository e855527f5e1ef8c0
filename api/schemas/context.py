"""Responses of the context overviews around a window and of the UI's public configuration."""

from __future__ import annotations

from pydantic import BaseModel


class ContextLayerPublic(BaseModel):
    """The low-resolution overview of one imagery layer around the window."""

    layer: str
    """The window layer it was built from (``s2``)."""
    modality: str
    bands: list[str]
    presets: list[str]
    """Composite presets it can be drawn with (``?preset=``)."""
    bounds: list[float]
    """WGS84 (min lon, min lat, max lon, max lat) it covers."""
    period: list[str]
    """[start, end] (ISO) of the period it shows: the layer's period with most valid pixels."""
    period_index: int
    """That period's index ``t`` in the layer."""
    resolution: float
    """Metres per pixel (the window's times the context factor)."""
    valid_fraction: float
    """Share of its pixels that some scene covers (the rest draw transparent)."""
    version: str
    """A digest of its files; it changes when the layer is materialised again."""
    tiles: str
    """URL template with ``{z}``, ``{x}``, ``{y}`` to fill in (already holds ``?v=``: add a
    preset with ``&preset=``)."""


class WindowContextPublic(BaseModel):
    window_id: int
    name: str
    layers: list[ContextLayerPublic]
    """One per imagery layer that has an overview (label layers have none)."""


class BasemapPublic(BaseModel):
    url: str
    """XYZ URL template with ``{z}``, ``{x}``, ``{y}``."""
    attribution: str | None
    """Text the map must show with it (the tile provider's terms)."""


class UiConfigPublic(BaseModel):
    """What the browser UI may know of the deployment's settings (nothing secret)."""

    basemap: BasemapPublic | None
    """The XYZ basemap drawn under the imagery, if the deployment set one."""
