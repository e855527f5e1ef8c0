"""Vector outputs: GeoJSON (RFC 7946: WGS84 lon/lat, counter-clockwise exteriors, no ``crs``)
for detections and vectorised class maps, and GeoParquet for embeddings.

Class polygons are traced per chunk (``rasterio.features.shapes``), then dissolved per class
and split into parts, so polygons do not break at chunk borders.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from earthplat.inference.engine import ChunkResult


def _to_wgs84(geom: Any, crs: Any) -> dict:
    """A shapely geometry in ``crs`` -> an RFC 7946 GeoJSON geometry dict."""
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape
    from shapely.geometry.polygon import orient

    out = shape(transform_geom(crs, "EPSG:4326", mapping(geom), precision=-1))
    if out.geom_type == "Polygon":
        out = orient(out, 1.0)
    elif out.geom_type == "MultiPolygon":
        from shapely.geometry import MultiPolygon

        out = MultiPolygon([orient(p, 1.0) for p in out.geoms])
    return json.loads(json.dumps(mapping(out)))  # tuples -> lists


def class_features(
    results: Iterable[ChunkResult],
    *,
    transform: Any,
    crs: Any,
    scale: int,
    nodata: float,
    classes: list[dict],
) -> list[dict]:
    """Dissolved polygons of each class of a class map, as WGS84 GeoJSON features."""
    from affine import Affine
    from rasterio.features import shapes
    from shapely import union_all
    from shapely.geometry import shape

    pieces: dict[int, list] = defaultdict(list)
    for res in results:
        ch, values = res.chunk, res.values[0]
        t = transform @ Affine.translation(ch.col // scale, ch.row // scale)
        for geom, value in shapes(values, mask=values != nodata, transform=t):
            pieces[int(value)].append(shape(geom))
    by_value = {int(c["value"]): c for c in classes}
    features = []
    for value in sorted(pieces):
        merged = union_all(pieces[value]).buffer(0)
        parts = getattr(merged, "geoms", [merged])
        c = by_value.get(value, {"label": str(value), "color": "#808080"})
        for part in parts:
            if part.is_empty:
                continue
            props = {
                "class_value": value,
                "class_label": c["label"],
                "color": c["color"],
                "area_crs_units": float(part.area),
            }
            features.append(
                {"type": "Feature", "geometry": _to_wgs84(part, crs), "properties": props}
            )
    return features


def detection_features(
    results: Iterable[ChunkResult], *, transform: Any, crs: Any, classes: list[dict]
) -> list[dict]:
    """Boxes (a point where a box has no size) as WGS84 GeoJSON features; the corners are
    reprojected together (one call for all detections)."""
    from rasterio.warp import transform as warp

    dets = [d for res in results for d in res.detections]
    if not dets:
        return []
    box = np.array([[d["x0"], d["y0"], d["x1"], d["y1"]] for d in dets])  # [N, 4] pixels
    corners = box[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 2)  # ccw in pixels is cw on map
    xs, ys = transform @ (corners[:, 0], corners[:, 1])
    lon, lat = warp(crs, "EPSG:4326", xs, ys)
    ring = np.stack([lon, lat], -1).reshape(len(dets), 4, 2).round(9)
    features = []
    for d, pts in zip(dets, ring):
        if d["x1"] - d["x0"] <= 0 and d["y1"] - d["y0"] <= 0:
            geom = {"type": "Point", "coordinates": pts[0].tolist()}
        else:
            # pixel order (x0,y0) (x1,y0) (x1,y1) (x0,y1) runs clockwise on the map: reverse it
            # so the exterior ring is counter-clockwise (RFC 7946 3.1.6)
            closed = [*pts[::-1].tolist(), pts[-1].tolist()]
            geom = {"type": "Polygon", "coordinates": [closed]}
        c = classes[d["label"]] if d["label"] < len(classes) else {}
        props = {
            "label": d["label"],
            "class_value": c.get("value", d["label"]),
            "class_label": c.get("label", str(d["label"])),
            "score": round(d["score"], 6),
        }
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    return features


def write_geojson(path: str | Path, features: list[dict], properties: dict | None = None) -> Path:
    """A FeatureCollection with a ``bbox`` (RFC 7946 section 5)."""
    from shapely.geometry import shape

    path = Path(path)
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if features:
        bounds = np.array([shape(f["geometry"]).bounds for f in features])
        collection["bbox"] = [
            float(bounds[:, 0].min()),
            float(bounds[:, 1].min()),
            float(bounds[:, 2].max()),
            float(bounds[:, 3].max()),
        ]
    if properties:
        collection["properties"] = properties  # foreign member (allowed by RFC 7946 6.1)
    tmp = path.with_suffix(".geojson.tmp")
    tmp.write_text(json.dumps(collection))
    tmp.replace(path)
    return path


def write_embeddings_parquet(
    path: str | Path, results: Iterable[ChunkResult], *, transform: Any, crs: Any, scale: int
) -> Path:
    """GeoParquet (1.0, WKB points), one row per valid embedding pixel: the pixel centre in
    the raster's CRS, ``row``/``col`` on the output grid and a fixed-size list ``embedding``.
    Written chunk by chunk (one row group each), so memory stays flat."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import shapely
    from pyproj import CRS

    path = Path(path)
    geo = {
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Point"],
                "crs": CRS.from_user_input(crs).to_json_dict(),
            }
        },
    }
    writer = None
    try:
        for res in results:
            ch, values = res.chunk, res.values
            ok = np.isfinite(values).all(0)
            rows, cols = np.nonzero(ok)
            rows, cols = rows + ch.row // scale, cols + ch.col // scale
            xs, ys = transform @ (cols + 0.5, rows + 0.5)
            emb = values[:, ok].T.astype(np.float32)  # [N, D]
            table = pa.table(
                {
                    "row": pa.array(rows.astype(np.int32)),
                    "col": pa.array(cols.astype(np.int32)),
                    "embedding": pa.FixedSizeListArray.from_arrays(
                        pa.array(emb.reshape(-1)), values.shape[0]
                    ),
                    "geometry": pa.array(shapely.to_wkb(shapely.points(xs, ys)), pa.binary()),
                }
            )
            table = table.replace_schema_metadata({"geo": json.dumps(geo)})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path
