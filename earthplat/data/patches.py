"""A folder of labelled patches (EuroSAT, BigEarthNet-style) as a dataset: one window per file.

Each GeoTIFF becomes one window in its own CRS and on its own pixel grid
(``window_of_raster``), materialised with nearest neighbour so the layer holds the file's own
pixels (validity from its footprint and nodata, as any ingest). Its label becomes a window
property, from

- the sub-folder it sits in (``ROOT/<class>/.../file.tif``), or
- a CSV with a file column (relative to ``ROOT``, or absolute) and a class column.

Class names are kept: the dataset records a class schema (``dataset.json``: values, names,
colours) under the property's name. Names are numbered in sorted order (EuroSAT's alphabetical
``class_id``); a class column of integers keeps its values (names from ``name_column`` if
given). The input layer is recorded too (``dataset.json`` ``inputs``), so ``earthplat
evaluate`` and fine-tuning configs can find it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from earthplat.data.dataset import Dataset
from earthplat.data.ingest import IngestConfig, IngestReport, ingest
from earthplat.data.materialize import LayerSpec
from earthplat.data.sources.local import LocalSource
from earthplat.data.timeseries import suggest_periods
from earthplat.data.window import Window, window_of_raster
from earthplat.errors import DataError

RASTER_SUFFIXES = (".tif", ".tiff")
FILE_COLUMNS = ("file", "path", "filename", "image", "patch")


@dataclass
class PatchImport:
    """What ``import_patches`` made."""

    dataset: Dataset
    windows: list[Window]
    classes: list[dict]
    report: IngestReport
    property: str = "label"
    """The window property holding each patch's class value."""

    def summary(self) -> str:
        by_value = {c["value"]: c["label"] for c in self.classes}
        counts = dict.fromkeys(by_value.values(), 0)
        for w in self.windows:
            counts[by_value[w.properties[self.property]]] += 1
        per_class = ", ".join(f"{k} {v}" for k, v in counts.items())
        return f"{len(self.windows)} patches, {len(self.classes)} classes ({per_class})\n" + (
            self.report.summary()
        )


class WindowFiles:
    """A source that gives each window the items of its own file only."""

    def __init__(self, sources: dict[str, LocalSource]) -> None:
        self.sources = sources
        first = next(iter(sources.values()))
        self.modality = first.modality

    def search(self, window: Window) -> list:
        return self.sources[window.name].search(window)

    def describe(self) -> dict[str, Any]:
        return {"type": "patches", "files": len(self.sources), "modality": self.modality}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", text).strip("_") or "patch"


def _from_folders(root: Path) -> list[tuple[Path, str]]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in RASTER_SUFFIXES)
    loose = [p for p in files if p.parent == root]
    if loose:
        raise DataError(
            f"{loose[0]} lies directly in --root {root}, so no class folder names its label; put "
            "each class's files in a folder named for it, or pass --labels CSV"
        )
    return [(p, p.relative_to(root).parts[0]) for p in files]


def _from_csv(
    root: Path, labels: Path, label_column: str, file_column: str | None
) -> list[tuple[Path, str]]:
    if not labels.is_file():
        raise DataError(f"--labels {labels} does not exist")
    with labels.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise DataError(f"--labels {labels} has no rows")
    columns = list(rows[0])
    file_col = file_column or next((c for c in FILE_COLUMNS if c in columns), None)
    if file_col is None or file_col not in columns:
        raise DataError(
            f"--labels {labels} has no file column (columns: {', '.join(columns)}); name it "
            "with --file_column"
        )
    if label_column not in columns:
        raise DataError(
            f"--labels {labels} has no column {label_column!r} (columns: {', '.join(columns)});"
            " name the class column with --label_column"
        )
    out = []
    for i, row in enumerate(rows, start=2):
        path = Path(row[file_col])
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise DataError(f"--labels {labels} line {i}: {path} does not exist")
        if row[label_column] in (None, ""):
            raise DataError(f"--labels {labels} line {i}: no class in column {label_column!r}")
        out.append((path, row[label_column].strip()))
    return out


def class_schema(
    names: list[str], display: dict[str, str] | None = None
) -> tuple[list[dict], dict[str, int]]:
    """(class schema, label text -> class value) for label texts ``names``: integer texts keep
    their value (class names from ``display``), other texts are numbered in sorted order and
    kept as the class names."""
    from earthplat.data.labels import validate_classes

    unique = sorted(set(names))
    if all(re.fullmatch(r"\d+", n) for n in unique):
        value_of = {n: int(n) for n in unique}
        classes = [
            {"value": v, "label": (display or {}).get(n, n)}
            for n, v in sorted(value_of.items(), key=lambda kv: kv[1])
        ]
    else:
        value_of = {n: i for i, n in enumerate(unique)}
        classes = [{"value": i, "label": n} for n, i in value_of.items()]
    return validate_classes(classes), value_of


def import_patches(
    root: str | Path,
    dataset: str | Path,
    modality: str,
    *,
    labels: str | Path | None = None,
    label_column: str = "class",
    file_column: str | None = None,
    name_column: str | None = None,
    property: str = "label",
    layer: str = "image",
    datetime: str | None = None,
    file_bands: list[str] | None = None,
    dates: list[str] | None = None,
    resolution: float | None = None,
    group: str = "patches",
    allow_substitution: bool = False,
    workers: int = 2,
    progress: bool = True,
) -> PatchImport:
    """Make ``dataset`` from the patches under ``root`` (see the module docstring)."""
    from earthplat.sensors import get_modality

    modality = get_modality(modality).name  # an unknown name fails before any work
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--root {root} is not a directory")
    pairs = (
        _from_csv(root, Path(labels), label_column, file_column) if labels else _from_folders(root)
    )
    if not pairs:
        raise DataError(f"--root {root} holds no GeoTIFF ({', '.join(RASTER_SUFFIXES)})")
    display = None
    if labels and name_column:
        with Path(labels).open(newline="") as f:
            display = {r[label_column].strip(): r[name_column] for r in csv.DictReader(f)}
    classes, value_of = class_schema([c for _, c in pairs], display)
    names = {c["value"]: c["label"] for c in classes}
    stems = [_safe(p.stem) for p, _ in pairs]
    unique = len(set(stems)) == len(stems)
    windows, sources = [], {}
    for (path, cls), stem in zip(pairs, stems, strict=True):
        source = LocalSource(
            [str(path)],
            modality,
            bands=file_bands,
            datetime=datetime,
            dates=dates,
            allow_substitution=allow_substitution,
        )
        items = source.items()
        if not items:
            raise DataError(f"{path} holds no band of {modality}")
        start = min(it.datetime for it in items).replace(hour=0, minute=0, second=0)
        end = max(it.datetime for it in items) + timedelta(days=1)
        name = stem if unique else _safe(str(path.relative_to(root).with_suffix("")))
        value = value_of[cls]
        props = {property: value, f"{property}_name": names[value], "source_path": str(path)}
        windows.append(
            window_of_raster(
                str(path),
                name=name,
                start=start,
                end=end,
                resolution=resolution,
                group=group,
                properties=props,
            )
        )
        sources[name] = source
    ds = Dataset(dataset)
    ds.write_windows(windows)
    ds.set_class_schema(property, classes)
    ds.update_info(inputs={**(ds.info().get("inputs") or {}), layer: sources[name].modality})
    first = sources[windows[0].name].items()
    period, max_periods, _ = suggest_periods(windows[0].start, [it.datetime for it in first])
    spec = LayerSpec(
        layer,
        modality,
        period=period,
        max_periods=max_periods,
        method="first",
        resampling="nearest",  # the file's own pixels, not a blend of neighbours
    )
    report = ingest(
        ds,
        windows,
        spec,
        WindowFiles(sources),
        IngestConfig(workers=workers, progress=progress, ignore_errors=True),
    )
    kept = [w for w in windows if w.name not in report.failed and w.name not in report.missing]
    return PatchImport(ds, kept, classes, report, property)
