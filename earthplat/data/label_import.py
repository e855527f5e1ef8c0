"""Labels for any dataset from a file: ``earthplat dataset label --dataset D --from FILE``.

What the file is decides what it gives (``kind`` chooses where a vector file allows both):

- points or polygons (GeoJSON, GeoPackage, Shapefile, FlatGeobuf; any CRS, read with
  geopandas): a **layer** rasterised onto each window's grid (polygons; points become
  detection boxes of zero size), or a window **property** (the value of the feature under the
  window's centre, else of the features inside it: their most common value);
- a CSV of window names and values: a window **property**;
- a class raster (GeoTIFF with a CRS): a **layer**, reprojected with nearest neighbour; an
  integer raster (or one with a ``CLASSES`` tag, or given ``classes``) holds class codes, a
  float raster numbers.

Values are class names, class codes, or numbers (regression). Class names are kept: the
dataset's class schema (``dataset.json``) names every class, existing schemas are extended
with new names, and rasters' ``CLASSES`` tags name their codes. Windows the file says nothing
about are reported, never given an invented label.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.labels import set_window_labels, validate_classes, write_label_layer
from earthplat.data.window import Window
from earthplat.errors import DataError

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".parquet")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")
NAME_COLUMNS = ("window", "name", "window_name")
VALUE_COLUMNS = ("class", "label", "value", "class_name", "class_id")


@dataclass
class LabelReport:
    """What ``label_dataset`` wrote."""

    kind: str
    """``layer`` or ``property``."""
    name: str
    """The layer or property written."""
    labelled: list[str] = field(default_factory=list)
    unlabelled: dict[str, str] = field(default_factory=dict)
    """Window -> why it got no label."""
    classes: list[dict] | None = None
    """The class schema (None for regression values)."""

    def summary(self) -> str:
        what = f"{len(self.classes)} classes" if self.classes else "numeric values"
        lines = [
            f"labels: {len(self.labelled)} windows got {self.kind} {self.name!r} ({what}), "
            f"{len(self.unlabelled)} none"
        ]
        shown = sorted(self.unlabelled.items())[:10]
        lines += [f"  UNLABELLED {k}: {v}" for k, v in shown]
        if len(self.unlabelled) > len(shown):
            lines.append(f"  ... and {len(self.unlabelled) - len(shown)} more")
        return "\n".join(lines)


# --- values and class schemas ---------------------------------------------------------------
def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


SPLITS = ("train", "val", "test")


def schema_for(
    values: list[Any],
    existing: list[dict] | None,
    given: list[dict] | None,
    *,
    text: bool = False,
) -> tuple[list[dict] | None, dict[str, Any]]:
    """(class schema or None for regression and ``text`` values, value text -> stored value)."""
    texts = sorted({str(v).strip() for v in values})
    if text:
        return None, {t: t for t in texts}
    schema = validate_classes(given) if given else (existing or None)
    numbers = bool(texts) and all(_is_number(t) for t in texts)
    if schema is not None and numbers and not all(float(t).is_integer() for t in texts):
        raise DataError(
            f"the values are numbers ({', '.join(texts[:3])}, ...) but this label has a "
            f"class schema ({_schema_text(schema)}); write them under another --name"
        )
    if schema is not None:
        by_label = {c["label"]: c["value"] for c in schema}
        by_value = {str(c["value"]): c["value"] for c in schema}
        new = [t for t in texts if t not in by_label and t not in by_value]
        if new and given:
            raise DataError(
                f"label values {new[:5]} are not in --classes (values "
                f"{sorted(by_value)}, names {sorted(by_label)})"
            )
        if new and all(re.fullmatch(r"\d+", t) for t in new):
            schema = validate_classes(schema + [{"value": int(t), "label": t} for t in new])
        elif new:
            start = max((c["value"] for c in schema), default=-1) + 1
            extra = [{"value": start + i, "label": t} for i, t in enumerate(new)]
            schema = validate_classes(schema + extra)
        mapping = {c["label"]: c["value"] for c in schema} | {
            str(c["value"]): c["value"] for c in schema
        }
        return schema, {t: mapping[t] for t in texts}
    if texts and all(_is_number(t) for t in texts):
        numbers = [float(t) for t in texts]
        if not all(n.is_integer() and n >= 0 for n in numbers):
            return None, {t: float(t) for t in texts}  # regression values
        schema = validate_classes([{"value": int(n), "label": str(int(n))} for n in numbers])
        return schema, {t: int(float(t)) for t in texts}
    schema = validate_classes([{"value": i, "label": t} for i, t in enumerate(texts)])
    return schema, {t: i for i, t in enumerate(texts)}


def _classes_from_tags(tags: dict[str, str]) -> list[dict] | None:
    """A class schema from a raster's ``CLASSES`` tag (JSON ``{code: name}`` or
    ``code=name,...``), without code 0 when it is called no data."""
    text = tags.get("CLASSES")
    if not text:
        return None
    try:
        pairs = {int(k): str(v) for k, v in json.loads(text).items()}
    except (ValueError, AttributeError):
        pairs = {}
        for part in text.split(","):
            k, _, v = part.partition("=")
            if k.strip().lstrip("-").isdigit():
                pairs[int(k)] = v.strip()
    pairs = {k: v for k, v in pairs.items() if k >= 0 and v.lower() not in ("no data", "nodata")}
    return validate_classes([{"value": k, "label": v} for k, v in sorted(pairs.items())]) or None


# --- readers ------------------------------------------------------------------------------------
def _read_vector(path: Path, column: str | None):
    import geopandas as gpd

    try:
        frame = gpd.read_file(path) if path.suffix != ".parquet" else gpd.read_parquet(path)
    except Exception as e:
        raise DataError(f"--from {path} is not a readable vector file ({e})") from None
    if frame.empty:
        raise DataError(f"--from {path} holds no features")
    if frame.crs is None:
        raise DataError(f"--from {path} has no CRS; GeoJSON is WGS84, other files need one")
    columns = [c for c in frame.columns if c != "geometry"]
    col = column or next((c for c in VALUE_COLUMNS if c in columns), None)
    if col is None or col not in columns:
        raise DataError(
            f"--from {path}: no label column {column or '(class, label, value...)'} among "
            f"{', '.join(columns) or 'none'}; name it with --column"
        )
    frame = frame[frame[col].notna() & frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame[frame[col].astype(str).str.strip() != ""]  # blank = no label, as in a CSV
    if frame.empty:
        raise DataError(f"--from {path}: no feature has a value in column {col!r} (--column)")
    return frame.to_crs("EPSG:4326"), col


def _windows_features(frame, windows: list[Window]):
    """window name -> the frame rows intersecting it (spatial index)."""
    index = frame.sindex
    out = {}
    for w in windows:
        hits = index.query(w.geometry_wgs84(), predicate="intersects")
        out[w.name] = frame.iloc[sorted(hits)]
    return out


def _property_of(rows, col: str, window: Window) -> str | None:
    if rows.empty:
        return None
    from shapely.geometry import Point

    centre = window.geometry_wgs84().centroid
    under = rows[rows.geometry.contains(Point(centre.x, centre.y))]
    chosen = under if not under.empty else rows
    return Counter(str(v).strip() for v in chosen[col]).most_common(1)[0][0]


# --- the entry point ----------------------------------------------------------------------------
def label_dataset(
    dataset: str | Path | Dataset,
    source: str | Path,
    *,
    kind: str | None = None,
    name: str = "label",
    column: str | None = None,
    classes: list[dict] | None = None,
    windows: list[str] | None = None,
    all_touched: bool = False,
    text: bool = False,
) -> LabelReport:
    """Label the windows of ``dataset`` from ``source`` (see the module docstring). ``name``
    is the layer or property written; ``column`` the attribute or CSV column of the values;
    ``classes`` a class schema to hold the values to; ``text`` stores property values as
    given, without a class schema. The ``split`` property (train/val/test, what
    ``--split_by property`` reads) is always text and checked."""
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    path = Path(source)
    if not path.exists():
        raise DataError(f"--from {path} does not exist")
    if kind not in (None, "layer", "property"):
        raise DataError(f"--kind must be layer or property, not {kind!r}")
    text = text or name == "split"
    if text and kind == "layer":
        raise DataError("text values make window properties, not a layer; drop --kind layer")
    targets = ds.windows(windows)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if kind == "layer":
            raise DataError("a CSV of window names gives window properties; drop --kind layer")
        return _from_csv(ds, path, targets, name, column, classes, text)
    if text and suffix in RASTER_SUFFIXES:
        raise DataError("a raster gives a label layer of numbers, not text values; drop --text")
    if suffix in RASTER_SUFFIXES:
        if kind == "property":
            raise DataError("a class raster gives a label layer; drop --kind property")
        return _from_raster(ds, path, targets, name, classes)
    if suffix in VECTOR_SUFFIXES:
        return _from_vector(ds, path, targets, name, column, classes, kind, all_touched, text)
    raise DataError(
        f"--from {path}: unknown file kind {suffix!r}; give a vector file "
        f"({', '.join(VECTOR_SUFFIXES)}), a CSV of window names and values, or a class raster "
        f"({', '.join(RASTER_SUFFIXES)})"
    )


def _check_splits(name: str, texts: list[str], path: Path) -> None:
    if name == "split":
        bad = sorted(set(texts) - set(SPLITS))
        if bad:
            raise DataError(
                f"--from {path}: split values must be train, val or test, not {', '.join(bad[:5])}"
            )


def _from_csv(ds, path, targets, name, column, classes, text=False) -> LabelReport:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0]) if rows else []
    win_col = next((c for c in NAME_COLUMNS if c in columns), None)
    if win_col is None:
        raise DataError(
            f"--from {path} needs a window-name column ({', '.join(NAME_COLUMNS)}); it has "
            f"{', '.join(columns) or 'none'}"
        )
    others = [c for c in columns if c != win_col]
    col = column or next((c for c in VALUE_COLUMNS if c in others), others[0] if others else None)
    if col not in columns:
        raise DataError(f"--from {path} has no column {col!r}; name the values with --column")
    given = {r[win_col].strip(): r[col].strip() for r in rows if (r.get(col) or "").strip()}
    unknown = sorted(set(given) - {w.name for w in ds.windows()})
    if unknown:
        raise DataError(
            f"--from {path} names windows the dataset does not have: {', '.join(unknown[:5])}"
        )
    known = {w.name for w in targets}  # rows of windows left out by --windows are skipped
    given = {w: v for w, v in given.items() if w in known}
    _check_splits(name, list(given.values()), path)
    schema, value_of = schema_for(list(given.values()), ds.class_schema(name), classes, text=text)
    report = LabelReport("property", name, classes=schema)
    values = {w: value_of[v] for w, v in given.items()}
    if values:
        set_window_labels(ds, values, property=name, classes=schema)
    report.labelled = sorted(values)
    report.unlabelled = {w.name: f"not in {path.name}" for w in targets if w.name not in values}
    if schema:
        ds.set_class_schema(name, schema)
    return report


def _schema_text(schema: list[dict]) -> str:
    return ", ".join(f"{c['value']}={c['label']}" for c in schema)


def _merge_tagged(existing, tagged, path, name) -> list[dict] | None:
    """The dataset's schema of ``name`` extended with a raster's ``CLASSES`` tag; a code or a
    class name the two give differently is an error (never silently renamed)."""
    if not existing or not tagged:
        return existing or tagged
    label_of = {c["value"]: c["label"] for c in existing}
    value_of = {c["label"]: c["value"] for c in existing}
    for c in tagged:
        v, lab = c["value"], c["label"]
        if label_of.get(v, lab) != lab or value_of.get(lab, v) != v:
            raise DataError(
                f"--from {path}: its CLASSES tag calls code {v} {lab!r}, but the dataset's "
                f"class schema of {name!r} is {_schema_text(existing)}; label into "
                "another --name"
            )
    return validate_classes(existing + [c for c in tagged if c["value"] not in label_of])


def _from_raster(ds, path, targets, name, classes) -> LabelReport:
    import rasterio

    from earthplat.data.labels import read_class_raster

    with rasterio.open(path) as src:
        tagged = _classes_from_tags(src.tags())
        nodata = src.nodata
        # float rasters hold quantities (elevation in whole metres is still no class code)
        coded = np.issubdtype(np.dtype(src.dtypes[0]), np.integer) or bool(tagged or classes)
    arrays = {}
    for w in targets:
        arr = read_class_raster(str(path), w)
        if not np.isfinite(arr).any():
            continue
        arrays[w.name] = arr
    if not arrays:
        raise DataError(f"--from {path} covers none of the {len(targets)} windows")
    seen = np.unique(np.concatenate([np.unique(a[np.isfinite(a)]) for a in arrays.values()]))
    seen = seen[seen != nodata] if nodata is not None else seen
    integral = coded and bool(seen.size) and bool(np.all(seen == np.round(seen)))
    codes = sorted(int(v) for v in seen if v >= 0) if integral else []
    schema = None
    if integral:
        known = _merge_tagged(ds.class_schema(name), tagged, path, name)
        schema, _ = schema_for([str(c) for c in codes], known, classes)
    report = LabelReport("layer", name, classes=schema)
    for w in targets:
        if w.name not in arrays:
            report.unlabelled[w.name] = f"{path.name} does not cover it (or only nodata)"
            continue
        arr = arrays[w.name]
        if schema is not None:  # nodata and negative codes are unlabelled
            arr = np.where(np.isin(arr, codes), arr, np.nan)
        write_label_layer(ds, w, raster=arr, classes=schema, layer=name)
        report.labelled.append(w.name)
    if schema:
        ds.set_class_schema(name, schema)
    return report


def _from_vector(
    ds, path, targets, name, column, classes, kind, all_touched, as_text=False
) -> LabelReport:
    frame, col = _read_vector(path, column)
    points = frame.geometry.geom_type.isin(["Point", "MultiPoint"]).all()
    kind = kind or ("property" if points or as_text else "layer")
    if as_text:
        _check_splits(name, [str(v).strip() for v in frame[col]], path)
    schema, value_of = schema_for(list(frame[col]), ds.class_schema(name), classes, text=as_text)
    report = LabelReport(kind, name, classes=schema)
    by_window = _windows_features(frame, targets)
    if kind == "property":
        values = {}
        for w in targets:
            text = _property_of(by_window[w.name], col, w)
            if text is None:
                report.unlabelled[w.name] = f"no feature of {path.name} touches it"
            else:
                values[w.name] = value_of[text]
        if values:
            set_window_labels(ds, values, property=name, classes=schema)
        report.labelled = sorted(values)
    else:
        for w in targets:
            rows = by_window[w.name]
            if rows.empty:
                report.unlabelled[w.name] = f"no feature of {path.name} touches it"
                continue
            features = [
                {
                    "type": "Feature",
                    "geometry": geom.__geo_interface__,
                    "properties": {"class": value_of[str(v).strip()]},
                }
                for geom, v in zip(rows.geometry, rows[col], strict=True)
            ]
            write_label_layer(
                ds,
                w,
                features,
                classes=schema,
                layer=name,
                all_touched=all_touched,
                detection=bool(points),
            )
            report.labelled.append(w.name)
    if schema:
        ds.set_class_schema(name, schema)
    return report
