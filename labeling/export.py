"""Exports of a project's annotations: GeoJSON (RFC 7946), GeoParquet, and an earthplat dataset
ready for fine-tuning.

Annotations arrive as GeoJSON features in WGS84 (``properties``: ``class`` = class value, or
``value`` for regression, plus ``author``, ``version``, ``window`` and the provenance
``origin`` (``human`` or ``model``), ``model_id`` and ``edited``) or as annotation rows
(``labeling.models.Annotation``), which :func:`annotation_feature` turns into such features.
Every export carries the provenance per annotation: the GeoJSON and GeoParquet as properties,
the fine-tuning dataset as ``annotations.geojson`` at its root (and counts in ``export.json``).

Painted masks (``labeling.masks``) travel as their outline geometry plus the RLE in
``properties.mask``. In the dataset's class label layer a mask burns its own pixels, bit for
bit; drawn polygons rasterize as before (pixel centres inside, holes left unlabelled).
Overlap rule: annotations burn in export order (annotation id, i.e. creation order), each later
one over the earlier ones, masks and polygons alike; this is the rule ``rasterize_features``
applies to polygons, kept for masks.

RFC 7946 rules applied: a ``FeatureCollection`` with no ``crs`` member, positions as
(longitude, latitude) within range, polygon exterior rings counter-clockwise and holes clockwise,
and a ``bbox``. Invalid geometries (self-intersections from hand drawing) are repaired with
``shapely.make_valid`` when the repair keeps the geometry type; otherwise the export stops and
names the annotation.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from earthplat.errors import DataError
from earthplat.tasks import get_task

LABEL_LAYER = "label"
"""The label layer of pixel and object tasks (``earthplat.tasks``: their ``default_label``)."""


def annotation_feature(
    annotation: Any, *, window: str | None = None, author: str | None = None
) -> dict[str, Any]:
    """A GeoJSON feature of an annotation row (or a feature dict, returned normalised)."""
    if isinstance(annotation, Mapping):
        feat = dict(annotation)
        props = dict(feat.get("properties") or {})
        if "class" not in props:
            for key in ("class_value", "value_class"):
                if key in props:
                    props["class"] = props.pop(key)
        if window is not None:
            props.setdefault("window", window)
        if author is not None:
            props.setdefault("author", author)
        return {
            "type": "Feature",
            "id": feat.get("id"),
            "geometry": feat["geometry"],
            "properties": props,
        }
    props = dict(getattr(annotation, "properties", None) or {})
    props.update(
        {
            "class": getattr(annotation, "class_value", None),
            "value": getattr(annotation, "value", None),
            "author": author if author is not None else getattr(annotation, "author_id", None),
            "version": getattr(annotation, "version", None),
            "window": window if window is not None else getattr(annotation, "window_id", None),
            "origin": getattr(annotation, "origin", None) or "human",
            "model_id": getattr(annotation, "model_id", None),
            "edited": bool(getattr(annotation, "edited", False)),
        }
    )
    if getattr(annotation, "mask", None) is not None:
        props["mask"] = annotation.mask
    return {
        "type": "Feature",
        "id": getattr(annotation, "id", None),
        "geometry": annotation.geometry,
        "properties": props,
    }


def _rfc7946_geometry(geometry: Mapping, where: str):
    """A shapely geometry, checked (lon/lat ranges, validity) and oriented per RFC 7946."""
    import shapely
    from shapely.geometry import shape
    from shapely.geometry.polygon import orient

    try:
        geom = shape(geometry)
    except Exception as e:
        raise DataError(f"{where}: not a GeoJSON geometry ({e})") from None
    if geom.is_empty:
        raise DataError(f"{where}: the geometry is empty")
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise DataError(
            f"{where}: coordinates {geom.bounds} are outside longitude/latitude range; "
            "annotations must be WGS84 (EPSG:4326) lon/lat"
        )
    if not geom.is_valid:
        repaired = shapely.make_valid(geom)
        if repaired.geom_type != geom.geom_type and not (
            geom.geom_type == "Polygon" and repaired.geom_type == "MultiPolygon"
        ):
            raise DataError(
                f"{where}: invalid {geom.geom_type} ({shapely.validation.explain_validity(geom)})"
                " that cannot be repaired without changing its type; fix it and export again"
            )
        geom = repaired
    if geom.geom_type == "Polygon":
        geom = orient(geom, sign=1.0)
    elif geom.geom_type == "MultiPolygon":
        geom = shapely.MultiPolygon([orient(p, sign=1.0) for p in geom.geoms])
    return geom


def _class_lookup(classes: list[dict] | None) -> dict[int, dict]:
    return {int(c["value"]): c for c in classes or []}


def export_geojson(features: Iterable[Any], classes: list[dict] | None) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection: each feature's geometry (WGS84) with ``class`` (value),
    ``label`` (from the class schema), ``value`` (regression), ``author``, ``version``,
    ``window`` and the provenance ``origin``, ``model_id`` and ``edited`` (None where a feature
    does not say). A class value not in ``classes`` raises ``DataError``."""
    from shapely.geometry import mapping

    lookup = _class_lookup(classes)
    out, bounds = [], []
    for i, raw in enumerate(features):
        feat = annotation_feature(raw)
        props = feat["properties"]
        where = f"annotation {feat.get('id') if feat.get('id') is not None else i}"
        geom = _rfc7946_geometry(feat["geometry"], where)
        value = props.get("class")
        label = None
        if value is not None:
            if lookup and int(value) not in lookup:
                raise DataError(
                    f"{where}: class value {value} is not in the class schema (known: "
                    f"{sorted(lookup)}); add the class or relabel the annotation"
                )
            label = lookup.get(int(value), {}).get("label")
        properties = {
            "class": None if value is None else int(value),
            "label": label,
            "value": props.get("value"),
            "author": props.get("author"),
            "version": props.get("version"),
            "window": props.get("window"),
            "origin": props.get("origin"),
            "model_id": props.get("model_id"),
            "edited": props.get("edited"),
        }
        extra = {k: v for k, v in props.items() if k not in properties}
        properties.update(extra)
        feature = {"type": "Feature", "geometry": mapping(geom), "properties": properties}
        if feat.get("id") is not None:
            feature["id"] = feat["id"]
        out.append(feature)
        bounds.append(geom.bounds)
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": out}
    if bounds:
        collection["bbox"] = [
            min(b[0] for b in bounds),
            min(b[1] for b in bounds),
            max(b[2] for b in bounds),
            max(b[3] for b in bounds),
        ]
    # round-trip through JSON: tuples become lists, exactly what a client will read
    return json.loads(json.dumps(collection))


def export_geoparquet(
    features: Iterable[Any], classes: list[dict] | None, path: str | Path
) -> Path:
    """The annotations as GeoParquet (EPSG:4326), one row per annotation."""
    import geopandas as gpd
    from shapely.geometry import shape

    collection = export_geojson(features, classes)
    rows = [f["properties"] | {"id": f.get("id")} for f in collection["features"]]
    geoms = [shape(f["geometry"]) for f in collection["features"]]
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")
    for col in frame.columns:  # mixed-type object columns do not write to parquet
        if col != "geometry" and frame[col].dtype == object:
            frame[col] = frame[col].map(_cell)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def _cell(value: Any) -> str | None:
    """A parquet text cell: objects (a mask's RLE, nested properties) as JSON; a property
    missing from this row (pandas' NaN) stays missing."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:
        return None
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)  # same file system: no copy, and the source can change safely
    except OSError:
        shutil.copy2(src, dst)


def _by_window(annotations: Any, names: set[str]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {n: [] for n in names}
    if isinstance(annotations, Mapping):
        items = [
            (str(k), annotation_feature(a, window=str(k)))
            for k, v in annotations.items()
            for a in v
        ]
    else:
        items = []
        for a in annotations:
            feat = annotation_feature(a)
            items.append((str(feat["properties"].get("window")), feat))
    from shapely.geometry import mapping

    for name, feat in items:
        where = f"annotation {feat.get('id')} of window {name}"
        feat["geometry"] = mapping(_rfc7946_geometry(feat["geometry"], where))
        if name not in grouped:
            raise DataError(
                f"an annotation refers to window {name!r}, which is not among the exported "
                "windows; export its window too or drop the annotation"
            )
        grouped[name].append(feat)
    return grouped


def _class_raster(window: Any, features: list[dict]):
    """[H, W] int16 class codes of ``features`` in order, later over earlier: runs of drawn
    shapes rasterized (``rasterize_features``), masks burnt pixel for pixel."""
    import numpy as np

    from earthplat.data.labels import CLASS_NODATA, rasterize_features
    from labeling.masks import burn

    out = np.full((window.height, window.width), CLASS_NODATA, dtype=np.int16)
    shapes: list[dict] = []

    def flush() -> None:
        if shapes:
            drawn, _ = rasterize_features(window, shapes, property="class")
            out[drawn != CLASS_NODATA] = drawn[drawn != CLASS_NODATA]
            shapes.clear()

    for f in features:
        mask = f["properties"].get("mask")
        if mask is None:
            shapes.append(f)
            continue
        flush()
        burn(out, mask, int(f["properties"]["class"]), window=window)
    flush()
    return out


def export_dataset(
    windows: list[Any],
    annotations: Any,
    classes: list[dict] | None,
    out_dir: str | Path,
    *,
    task: str,
    source: Any = None,
    layers: list[str] | None = None,
) -> str:
    """Write an earthplat dataset for fine-tuning and return its root.

    ``windows``: earthplat ``Window`` objects; ``annotations``: features (``properties.window``
    names the window) or ``{window name: [features]}``. ``source`` (a ``Dataset`` or its root)
    provides the imagery: its ``layers`` (default: every layer but ``label``) of each window are
    hard-linked (copied across file systems). Labels, by task: ``segmentation``/``detection`` a
    class label layer, ``pixel_regression`` a float label layer (from ``properties.value``),
    ``classification``/``multilabel``/``regression`` the window property the task registry names
    (``earthplat.tasks``: each task's first label source and ``default_label``).
    ``export.json`` at the root records task, classes, label source and input layers, from
    which a fine-tuning config is built, and ``origins`` (annotations per origin, and how many
    model-made ones a person edited); ``annotations.geojson`` beside it holds every exported
    annotation with its provenance (``origin``, ``model_id``, ``edited``)."""
    from earthplat.data.dataset import Dataset
    from earthplat.data.labels import set_window_labels, validate_classes, write_label_layer

    schema = validate_classes(classes) if classes else None
    if get_task(task).class_task and not schema:
        raise DataError(f"task {task} needs a class schema")
    out = Path(out_dir)
    ds = Dataset(out)
    names = {w.name for w in windows}
    grouped = _by_window(annotations, names)
    ds.write_windows(list(windows), mode="overwrite")

    inputs: dict[str, str] = {}
    if source is not None:
        src = source if isinstance(source, Dataset) else Dataset(source)
        for w in windows:
            for layer in layers or [n for n in src.layers(w) if n != LABEL_LAYER]:
                meta = src.layer_metadata(w, layer)
                inputs[layer] = meta["modality"]
                for suffix in (".tif", ".mask.tif", ".json"):
                    path = Path(src.layer_path(w, layer, suffix))
                    _link_or_copy(path, Path(ds.layer_path(w, layer, suffix)))

    kind = get_task(task)
    source = kind.label_sources[0] if kind.label_sources else None
    label: dict[str, str] | None = {"kind": source, "name": kind.default_label} if source else None
    if source in ("layer", "geojson"):
        for w in windows:
            feats = grouped[w.name]
            if not feats:
                continue  # an unlabelled window: no label layer, the data module skips it
            if kind.class_task and any("mask" in f["properties"] for f in feats):
                write_label_layer(
                    ds, w, raster=_class_raster(w, feats), classes=schema, layer=kind.default_label
                )
                continue
            write_label_layer(
                ds,
                w,
                feats,
                classes=schema if kind.class_task else None,
                layer=kind.default_label,
                property="class" if kind.class_task else "value",
                detection=source == "geojson",
            )
    elif source == "property":
        values: dict[str, Any] = {}
        for name, feats in grouped.items():
            if not feats:
                continue
            if kind.target == "multilabel":
                values[name] = sorted({int(f["properties"]["class"]) for f in feats})
            elif kind.class_task:
                values[name] = int(feats[-1]["properties"]["class"])  # the latest annotation
            else:
                values[name] = float(feats[-1]["properties"]["value"])
        if values:
            set_window_labels(ds, values, property=kind.default_label, classes=schema)
    exported = [f for feats in grouped.values() for f in feats]
    ds.write_json(ds.url("annotations.geojson"), export_geojson(exported, schema))
    origins = {"human": 0, "model": 0, "model_edited": 0}
    for f in exported:
        origin = f["properties"].get("origin") or "human"
        origins[origin] = origins.get(origin, 0) + 1
        if origin == "model" and f["properties"].get("edited"):
            origins["model_edited"] += 1
    ds.write_json(
        ds.url("export.json"),
        {
            "task": task,
            "classes": schema or [],
            "label": label,
            "inputs": inputs,
            "windows": len(windows),
            "labelled_windows": sum(1 for f in grouped.values() if f),
            "origins": origins,
        },
    )
    return ds.root
