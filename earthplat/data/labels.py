"""Label layers: class rasters, GeoJSON polygons/points and window-level values, on the window
grid (Contract B).

A label layer is stored like any other layer (``LAYER.tif`` + ``LAYER.mask.tif`` + ``LAYER.json``,
modality ``label``, one period): class codes as int16 with nodata -1, or float32 values with
NaN nodata when no class schema is given. Points and boxes (detection) are also written to
``windows/NAME/LAYER.geojson``: one feature per object, its WGS84 geometry plus ``box`` =
(x0, y0, x1, y1) in window pixels (a point is a zero-size box) and ``class`` = its value.

Order of writing, so nothing is half-written: everything is validated first (an unknown class
raises before any file is touched), then the old ``LAYER.json`` is removed, then the data and
mask COGs (``materialize.write_layer``), then the GeoJSON, and the metadata JSON last.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.materialize import LayerArrays, LayerSpec, write_layer
from earthplat.data.window import Window
from earthplat.errors import DataError
from earthplat.sensors import Modality, get_modality

CLASS_NODATA = -1
"""Stored value of unlabelled pixels in class rasters."""
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def validate_classes(classes: list[dict] | None) -> list[dict]:
    """A class schema ``[{value, label, color}]`` checked and normalised (colour defaults from a
    palette). Values are distinct non-negative ints; index i of the list is class index i."""
    out: list[dict] = []
    for i, c in enumerate(classes or []):
        if not isinstance(c, dict) or "value" not in c:
            raise DataError(f"class {i} ({c!r}) needs at least a 'value' (an int >= 0)")
        value = c["value"]
        if isinstance(value, bool) or not float(value).is_integer() or int(value) < 0:
            raise DataError(f"class {i}: value {value!r} must be an integer >= 0 (-1 = ignore)")
        color = str(c.get("color") or _PALETTE[i % len(_PALETTE)])
        if not _COLOR.match(color):
            raise DataError(f"class {i}: color {color!r} must look like '#rrggbb'")
        out.append({"value": int(value), "label": str(c.get("label", value)), "color": color})
    values = [c["value"] for c in out]
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if values.count(v) > 1})
        raise DataError(f"class values {dup} appear more than once in the class schema")
    return out


def check_class_values(values, classes: list[dict], where: str) -> None:
    """Raise ``DataError`` if any of ``values`` (codes, nodata -1 allowed) is not in ``classes``."""
    known = {c["value"] for c in classes}
    unknown = sorted({int(v) for v in np.unique(np.asarray(values))} - known - {CLASS_NODATA})
    if unknown:
        raise DataError(
            f"{where}: class value(s) {unknown} are not in the class schema (known values: "
            f"{sorted(known)}); add them to the classes, or map them to a known value or to "
            f"{CLASS_NODATA} (ignore) before writing"
        )


@dataclass
class _LabelLayerSpec(LayerSpec):
    """A ``LayerSpec`` whose modality is ``label`` stored as int16 classes or float32 values."""

    floating: bool = False

    @property
    def spec(self) -> Modality:
        base = get_modality("label")
        if self.floating:
            return dataclasses.replace(base, dtype="float32", nodata=None, categorical=False)
        return base


def _to_window_geometry(geometry: dict, window: Window, i: int):
    from rasterio.warp import transform_geom
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    try:
        geom = shape(geometry)
    except Exception as e:
        raise DataError(f"window {window.name}: feature {i} has no valid geometry ({e})") from None
    if geom.is_empty or not geom.is_valid:
        why = "it is empty" if geom.is_empty else explain_validity(geom)
        raise DataError(
            f"window {window.name}: feature {i} has an invalid geometry ({why}); repair it "
            "(e.g. shapely.make_valid) and try again"
        )
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise DataError(
            f"window {window.name}: feature {i} lies outside lon/lat range; label features are "
            "WGS84 (EPSG:4326) longitude/latitude"
        )
    return shape(transform_geom("EPSG:4326", window.crs, geometry))


def rasterize_features(
    window: Window,
    features: list[dict],
    *,
    property: str = "class",
    floating: bool = False,
    fill: float | None = None,
    all_touched: bool = False,
) -> tuple[np.ndarray, list[dict]]:
    """Burn GeoJSON ``features`` (WGS84) into the window grid: ([H, W] int16 or float32 raster,
    boxes). Later features overwrite earlier ones; ``fill`` is the background (default nodata).
    ``boxes`` has one entry per feature touching the window: pixel box, value, WGS84 geometry."""
    from rasterio.features import rasterize

    shapes, boxes = [], []
    inverse = ~window.transform
    for i, feat in enumerate(features):
        props = feat.get("properties") or {}
        if property not in props or props[property] is None:
            raise DataError(
                f"window {window.name}: feature {i} has no property {property!r} (its properties: "
                f"{sorted(props)}); set it or pass property=<the name holding the value>"
            )
        try:
            value = float(props[property])
        except (TypeError, ValueError):
            raise DataError(
                f"window {window.name}: feature {i} value {props[property]!r} is not a number"
            ) from None
        geom = _to_window_geometry(feat.get("geometry") or {}, window, i)
        shapes.append((geom.__geo_interface__, value))
        minx, miny, maxx, maxy = geom.bounds
        x0, y0 = inverse @ (minx, maxy)
        x1, y1 = inverse @ (maxx, miny)
        box = [max(x0, 0.0), max(y0, 0.0), min(x1, window.width), min(y1, window.height)]
        if box[0] <= box[2] and box[1] <= box[3] and x1 >= 0 and y1 >= 0:
            boxes.append(
                {"box": box, "value": value, "geometry": feat["geometry"], "type": geom.geom_type}
            )
    dtype = np.float32 if floating else np.int16
    background = (np.nan if floating else CLASS_NODATA) if fill is None else fill
    out = np.full((window.height, window.width), background, dtype=dtype)
    if shapes:
        out = rasterize(
            shapes,
            out_shape=out.shape,
            transform=window.transform,
            fill=background,
            out=out,
            all_touched=all_touched,
            dtype=dtype,
        )
    return out, boxes


def read_class_raster(path: str, window: Window, *, nodata: float | None = None) -> np.ndarray:
    """Band 1 of a georeferenced raster, reprojected with nearest neighbour onto the window grid:
    [H, W] float64 with NaN where the source has nodata or does not cover the window."""
    import rasterio
    from rasterio.enums import Resampling

    from earthplat.data.warp import read_warped

    with rasterio.open(path) as src:
        if src.crs is None:
            raise DataError(
                f"{path} has no CRS; georeference it first (earthplat raster georef IN OUT "
                "--crs EPSG:N --bounds ...) before using it as labels"
            )
        values, valid = read_warped(src, window, [1], resampling=Resampling.nearest, nodata=nodata)
    return np.where(valid[0], values[0], np.nan)


def write_label_layer(
    dataset: Dataset,
    window: Window,
    features: list[dict] | None = None,
    *,
    raster: np.ndarray | str | None = None,
    classes: list[dict] | None = None,
    layer: str = "label",
    property: str = "class",
    fill: float | None = None,
    all_touched: bool = False,
    detection: bool | None = None,
    nodata: float | None = None,
) -> dict[str, Any]:
    """Write a label layer for ``window`` from GeoJSON ``features`` or a ``raster``.

    ``raster``: an [H, W] array on the window grid (NaN / -1 = unlabelled) or the path of a
    georeferenced raster (reprojected with nearest neighbour). With ``classes`` the layer holds
    class codes (int16, -1 = unlabelled) and every code must be in the schema; without, float32
    values (NaN = unlabelled). ``detection`` (default: when any feature is a point) also writes
    ``LAYER.geojson``. ``nodata``: a raster value meaning unlabelled (besides NaN and, for
    classes, -1). Returns the layer metadata."""
    if (features is None) == (raster is None):
        raise DataError("write_label_layer needs exactly one of features= or raster=")
    schema = validate_classes(classes) if classes is not None else None
    floating = schema is None
    boxes: list[dict] = []
    if features is not None:
        values, boxes = rasterize_features(
            window,
            features,
            property=property,
            floating=floating,
            fill=fill,
            all_touched=all_touched,
        )
        if detection is None:
            detection = any("Point" in b["type"] for b in boxes)
    else:
        if isinstance(raster, str):
            arr = read_class_raster(raster, window, nodata=nodata)
        else:
            arr = np.asarray(raster)
        arr = arr.reshape(arr.shape[-2:]) if arr.ndim == 3 and arr.shape[0] == 1 else arr
        if arr.shape != (window.height, window.width):
            raise DataError(
                f"window {window.name}: the label raster is {arr.shape}, the window "
                f"{window.height}x{window.width}; pass a georeferenced file to reproject it"
            )
        arr = arr.astype(np.float64)
        if nodata is not None:
            arr = np.where(arr == nodata, np.nan, arr)
        if floating:
            values = arr.astype(np.float32)
        else:
            invalid = ~np.isfinite(arr) | (arr == CLASS_NODATA)
            if np.any(arr[~invalid] != np.round(arr[~invalid])):
                raise DataError(f"window {window.name}: class raster holds non-integer values")
            values = np.where(invalid, CLASS_NODATA, arr).astype(np.int16)
    where = f"window {window.name} layer {layer!r}"
    if schema is not None:
        check_class_values(values, schema, where)
        valid = values != CLASS_NODATA
    else:
        valid = np.isfinite(values)
    if not np.isfinite(np.asarray(values, dtype=np.float64)[valid]).all():
        raise DataError(f"{where}: label values must be finite")

    # nothing was written so far; from here on the finished marker (LAYER.json) comes last
    json_path = dataset.layer_path(window, layer, ".json")
    if dataset.fs.exists(json_path):
        dataset.fs.rm(json_path)
    spec = _LabelLayerSpec(layer, "label", floating=floating)
    arrays = LayerArrays(
        data=values[None, None],  # [T=1, C=1, H, W]
        valid=valid[None],
        bands=["class"],
        periods=[(window.start, window.end)],
        items_per_period=[[]],
    )
    source = {"type": "labels", "classes": schema, "property": property}
    geojson_path = dataset.layer_path(window, layer, ".geojson")
    if detection:
        dataset.fs.makedirs(dataset.window_dir(window), exist_ok=True)
        dataset.write_json(geojson_path, _box_collection(window, boxes, schema))
    elif dataset.fs.exists(geojson_path):
        dataset.fs.rm(geojson_path)
    # write_layer writes data, then mask, then the JSON; our source info rides in the JSON
    return write_layer(dataset, window, spec, arrays, [], source)


def _box_collection(window: Window, boxes: list[dict], schema: list[dict] | None) -> dict:
    labels = {c["value"]: c["label"] for c in schema or []}
    feats = []
    for b in boxes:
        value = int(b["value"]) if schema is not None else b["value"]
        feats.append(
            {
                "type": "Feature",
                "geometry": b["geometry"],
                "properties": {"class": value, "label": labels.get(value), "box": b["box"]},
            }
        )
    return {"type": "FeatureCollection", "window": window.name, "features": feats}


def read_boxes(dataset: Dataset, window: Window | str, layer: str = "label") -> list[dict]:
    """The boxes of a detection label layer: ``[{"box": [x0, y0, x1, y1], "class": value}]``
    in window pixels."""
    path = dataset.layer_path(window, layer, ".geojson")
    if not dataset.fs.exists(path):
        name = window.name if isinstance(window, Window) else window
        raise DataError(
            f"window {name} has no {layer}.geojson (detection boxes); write it with "
            "write_label_layer(..., detection=True)"
        )
    return [
        {"box": f["properties"]["box"], "class": f["properties"]["class"]}
        for f in dataset.read_json(path)["features"]
    ]


def set_window_labels(
    dataset: Dataset,
    values: dict[str, Any],
    *,
    property: str = "class_id",
    classes: list[dict] | None = None,
) -> list[Window]:
    """Window-level labels: set ``properties[property]`` of the named windows (``{name: value}``;
    a value may be a list of class values for multilabel) and rewrite the index. With
    ``classes`` every value is checked against the schema first (nothing is written on error)."""
    schema = validate_classes(classes) if classes is not None else None
    windows = dataset.windows(names=list(values))
    updated = []
    for w in windows:
        value = values[w.name]
        if schema is not None:
            codes = value if isinstance(value, list | tuple) else [value]
            check_class_values(np.asarray(codes, dtype=np.int64), schema, f"window {w.name}")
        updated.append(dataclasses.replace(w, properties={**w.properties, property: value}))
    dataset.write_windows(updated)
    return updated
