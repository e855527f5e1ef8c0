"""The dataset commands of ``earthplat``: import patches, label, pack and show.

Typed functions over library calls (``earthplat.data.*``), equally callable from Python;
``earthplat.cli`` turns them into subcommands and their docstrings into the flags' help.
"""

from __future__ import annotations

import json


def dataset_pack(
    dataset: str,
    out: str,
    layers: dict[str, str] | None = None,
    windows: list[str] | None = None,
    compression: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Pack finished window layers into one HDF5 store for fast random reads.

    The format was chosen by bench/pack_formats.py (many DataLoader workers reading at random).

    Args:
        dataset: The dataset directory.
        out: The HDF5 file to write (.h5).
        layers: Layer name -> modality to pack (default: every finished layer).
        windows: Only these windows (names).
        compression: None (fastest reads), lzf or gzip.
        overwrite: Replace an existing file.
    """
    from dataclasses import asdict

    from earthplat.data.pack import pack_dataset

    info = pack_dataset(
        dataset,
        out,
        layers=layers,
        windows=windows,
        compression=compression,
        overwrite=overwrite,
        progress=True,
    )
    print(info.summary())
    return asdict(info)


def dataset_show(
    dataset: str,
    window: str | None = None,
    layer: str | None = None,
    png: str | None = None,
    composite: str | None = None,
) -> dict:
    """Summarise a dataset directory or a packed store, or one window and its layers.

    Args:
        dataset: A dataset directory or a packed .h5 store.
        window: Show this window: its record and each layer's bands, periods and validity.
        layer: The layer --png renders (default: the first imagery layer).
        png: Write a PNG of the layer's time series (composite per period).
        composite: The sensor composite to render (true_color, false_color, ...).
    """
    from earthplat.data.dataset import Dataset
    from earthplat.errors import DataError

    if dataset.endswith((".h5", ".hdf5")):
        from earthplat.data.pack import pack_info

        text = pack_info(dataset).summary()
        print(text)
        return {"pack": dataset, "summary": text}
    ds = Dataset(dataset)
    windows = ds.windows()
    summary: dict = {
        "dataset": dataset,
        "windows": len(windows),
        "groups": sorted({w.group for w in windows}),
        "crs": sorted({w.crs for w in windows}),
    }
    info = ds.info()
    if info.get("classes"):
        summary["classes"] = {k: [c["label"] for c in v] for k, v in info["classes"].items()}
    if window is None:
        layer_counts: dict[str, int] = {}
        for w in windows:
            for name in ds.layers(w):
                layer_counts[name] = layer_counts.get(name, 0) + 1
        summary["layers"] = layer_counts
    else:
        w = ds.window(window)
        summary["window"] = w.to_record()
        summary["layers"] = {}
        for name in ds.layers(w):
            meta = ds.layer_metadata(w, name)
            summary["layers"][name] = {
                k: meta.get(k)
                for k in ("modality", "bands", "shape", "missing_periods", "valid_fraction")
            }
        if png:
            from earthplat.data.preview import render_preview

            chosen = layer or next(
                (
                    n
                    for n in ds.layers(w)
                    if ds.layer_metadata(w, n)["modality"] not in ("label", "dem")
                ),
                None,
            )
            if chosen is None:
                raise DataError(f"window {window} has no imagery layer to preview (--layer)")
            summary["png"] = str(render_preview(ds, window, chosen, png, composite))
    print(json.dumps(summary, indent=1, default=str))
    return summary


def dataset_import_patches(
    root: str,
    dataset: str,
    modality: str,
    labels: str | None = None,
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
    workers: int = 2,
    allow_substitution: bool = False,
) -> dict:
    """Make a dataset from a folder of labelled patches, one window per GeoTIFF.

    Labels come from each file's class folder (ROOT/<class>/file.tif) or a CSV; each window
    keeps its file's CRS and pixel grid.

    Args:
        root: The folder of patches.
        dataset: The dataset directory to write.
        modality: The sensor product of the patches (sentinel2_l1c, naip, ...).
        labels: A CSV with a file column (relative to --root) and a class column, instead of
            class folders.
        label_column: The CSV column holding each file's class.
        file_column: The CSV column holding each file's path (default: file, path, ...).
        name_column: A CSV column naming integer classes (with --labels).
        property: The window property that holds the class value.
        layer: Name of the imagery layer to write.
        datetime: Acquisition date (YYYY-MM-DD) of patches that carry none.
        file_bands: Band names of the files in order, when their descriptions do not say.
        dates: Dates of multi-date patches without dated band descriptions.
        resolution: Pixel size in metres (default: each file's own).
        group: Group name of the windows.
        workers: Patches materialised at once.
        allow_substitution: Accept files whose metadata names another product of the sensor.
    """
    from earthplat.data.patches import import_patches

    result = import_patches(
        root,
        dataset,
        modality,
        labels=labels,
        label_column=label_column,
        file_column=file_column,
        name_column=name_column,
        property=property,
        layer=layer,
        datetime=datetime,
        file_bands=file_bands,
        dates=dates,
        resolution=resolution,
        group=group,
        workers=workers,
        allow_substitution=allow_substitution,
    )
    print(result.summary())
    return {
        "windows": len(result.windows),
        "classes": result.classes,
        "missing": result.report.missing,
        "failed": result.report.failed,
    }


def dataset_label(
    dataset: str,
    from_file: str,
    kind: str | None = None,
    name: str = "label",
    column: str | None = None,
    classes: str | None = None,
    windows: list[str] | None = None,
    all_touched: bool = False,
    text: bool = False,
) -> dict:
    """Label a dataset's windows from a vector file, a CSV of window values or a class raster.

    Args:
        dataset: The dataset directory.
        from_file: The labels (also --from): points or polygons (GeoJSON, GeoPackage, any CRS),
            a CSV of window names and values, or a class raster (GeoTIFF with a CRS).
        kind: layer (rasterised onto each window) or property (one value per window); default:
            property for points and CSVs, layer for polygons and rasters.
        name: The label layer or window property to write.
        column: The attribute or CSV column holding the values (default: class, label, ...).
        classes: A JSON file (or inline JSON list) of the class schema [{value, label}].
        windows: Only these windows (names).
        all_touched: Rasterise every pixel a polygon touches, not only those whose centre it
            covers.
        text: Store property values as given, without a class schema (the split property,
            train/val/test, always is).
    """
    from pathlib import Path

    from earthplat.data.label_import import label_dataset
    from earthplat.errors import DataError

    schema = None
    if classes:
        raw = Path(classes).read_text() if Path(classes).is_file() else classes
        try:
            schema = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataError(f"--classes is neither a JSON file nor a JSON list ({e})") from None
    report = label_dataset(
        dataset,
        from_file,
        kind=kind,
        name=name,
        column=column,
        classes=schema,
        windows=windows,
        all_touched=all_touched,
        text=text,
    )
    print(report.summary())
    return {
        "kind": report.kind,
        "name": report.name,
        "labelled": len(report.labelled),
        "unlabelled": report.unlabelled,
        "classes": report.classes,
    }
