"""``earthplat``: the command line, a thin shell over library functions.

Subcommands are added as the library grows; each one is a typed function that is equally
callable from Python and from the API.
"""

from __future__ import annotations

import json


def info(measure_peak: bool = False) -> dict:
    """Print versions, the compute devices and (optionally) the measured CPU matmul peak."""
    import platform

    import lightning
    import torch

    import earthplat

    report: dict = {
        "earthplat": earthplat.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
    }
    if measure_peak:
        from earthplat.traincore.flops import cpu_peak_flops

        report["cpu_peak_gflops_fp32"] = round(cpu_peak_flops() / 1e9, 1)
    print(json.dumps(report, indent=2))
    return report


def healthcheck(url: str | None = None, timeout: float = 5.0) -> None:
    """Exit non-zero unless the stack imports and, when given, ``url`` (or $EARTHPLAT_HEALTH_URL)
    answers 200. Used by the container's HEALTHCHECK."""
    import os
    import urllib.request

    import torch

    torch.zeros(1).add_(1)  # the tensor library loads and runs
    url = url or os.environ.get("EARTHPLAT_HEALTH_URL")
    if url:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                raise SystemExit(f"{url} answered {response.status}")
    print("ok")


def windows_create(
    dataset: str,
    start: str,
    end: str,
    bbox: list[float] | None = None,
    aoi: str | None = None,
    points: str | None = None,
    polygons: str | None = None,
    size: int = 256,
    resolution: float = 10.0,
    group: str = "default",
) -> int:
    """Create windows in a dataset from a bbox (minlon minlat maxlon maxlat), an AOI GeoJSON,
    a points CSV (lon, lat, start, end[, name]) or polygons GeoJSON; UTM/UPS chosen per place."""
    from earthplat.data.dataset import Dataset
    from earthplat.data.window import (
        windows_from_aoi,
        windows_from_points_csv,
        windows_from_polygons,
    )

    given = [x for x in (bbox, aoi, points, polygons) if x]
    if len(given) != 1:
        raise SystemExit("give exactly one of --bbox, --aoi, --points, --polygons")
    if bbox:
        windows = windows_from_aoi(
            tuple(bbox), start=start, end=end, size=size, resolution=resolution, group=group
        )
    elif aoi:
        windows = windows_from_aoi(
            _read_geojson(aoi), start=start, end=end, size=size, resolution=resolution, group=group
        )
    elif points:
        windows = windows_from_points_csv(points, size=size, resolution=resolution, group=group)
    else:
        features = _read_geojson(polygons)
        windows = windows_from_polygons(
            features.get("features", [features]),
            start=start,
            end=end,
            resolution=resolution,
            group=group,
        )
    Dataset(dataset).write_windows(windows)
    print(f"{len(windows)} windows written to {dataset}")
    return len(windows)


def _read_geojson(path: str) -> dict:
    import fsspec

    with fsspec.open(path, "r") as f:
        return json.load(f)


def ingest(
    dataset: str,
    layer: str,
    modality: str,
    paths: list[str] | None = None,
    stac: str | None = None,
    collections: list[str] | None = None,
    datetime: str | None = None,
    file_bands: list[str] | None = None,
    quality: str | None = None,
    nodata: float | None = None,
    to_db: bool = False,
    max_cloud_cover: float | None = None,
    bands: list[str] | None = None,
    period: str = "30d",
    max_periods: int | None = None,
    method: str = "first",
    windows: list[str] | None = None,
    group: str | None = None,
    workers: int = 2,
    retries: int = 2,
    ignore_errors: bool = False,
    force: bool = False,
) -> dict:
    """Prepare and materialise a layer for the dataset's windows from local rasters (--paths,
    globs allowed) or a STAC API/catalog (--stac). Re-running resumes."""
    from earthplat.data.dataset import Dataset
    from earthplat.data.ingest import IngestConfig
    from earthplat.data.ingest import ingest as run_ingest
    from earthplat.data.materialize import LayerSpec
    from earthplat.data.sources.factory import build_source

    ds = Dataset(dataset)
    source = build_source(
        modality,
        paths=paths,
        stac=stac,
        collections=collections,
        datetime=datetime,
        file_bands=file_bands,
        quality=quality,
        nodata=nodata,
        to_db=to_db,
        max_cloud_cover=max_cloud_cover,
    )
    spec = LayerSpec(
        layer, modality, bands=bands, period=period, max_periods=max_periods, method=method
    )
    report = run_ingest(
        ds,
        ds.windows(windows, group),
        spec,
        source,
        IngestConfig(workers=workers, retries=retries, ignore_errors=ignore_errors, force=force),
    )
    print(report.summary())
    return {"done": report.done, "skipped": report.skipped, "failed": report.failed}


def dataset_pack(
    dataset: str,
    out: str,
    layers: dict[str, str] | None = None,
    windows: list[str] | None = None,
    compression: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Pack finished window layers into one HDF5 store built for fast random reads by many
    DataLoader workers (the format was chosen by bench/pack_formats.py). ``layers`` maps layer
    name to modality (default: every finished layer)."""
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
    """Summarise a dataset directory or a packed store; with --window (and --png) render a
    layer's composite time series."""
    from earthplat.data.dataset import Dataset

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
                k: meta[k]
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
                raise SystemExit(f"window {window} has no imagery layer to preview")
            summary["png"] = str(render_preview(ds, window, chosen, png, composite))
    print(json.dumps(summary, indent=1, default=str))
    return summary


def export(checkpoint: str, out: str) -> str:
    """Export the encoder of a pretraining checkpoint as safetensors + config JSON; load it
    with ``earthplat.nn.load_encoder(out)``."""
    from earthplat.nn.export import encoder_from_checkpoint, export_encoder

    path = export_encoder(
        encoder_from_checkpoint(checkpoint), out, extra={"source_checkpoint": checkpoint}
    )
    print(f"encoder exported to {path}")
    return str(path)


def main(argv: list[str] | None = None) -> None:
    import sys

    from jsonargparse import CLI

    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "worker":
        # the platform's job worker (``python -m api.jobs.worker``): the command line is the one
        # entry point over every package, so it may reach up to ``api``; the library never does
        import importlib

        raise SystemExit(importlib.import_module("api.jobs.worker").main(args[1:]))
    if args and args[0] in ("pretrain", "finetune"):  # LightningCLI parses these itself
        if args[0] == "pretrain":
            from earthplat.train.lightning_cli import run_pretrain_cli as run_cli
        else:
            from earthplat.train.finetune import run_finetune_cli as run_cli

        import warnings

        # sys.argv stays whole: Lightning starts the other ranks of a multi-device run by
        # re-running this command line; the subcommand's own arguments are parsed as ``args``
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        run_cli(args[1:], from_argv=argv is None)
        return

    from earthplat.eval.cli import evaluate
    from earthplat.inference.cli import predict

    CLI(
        {
            "info": info,
            "healthcheck": healthcheck,
            "windows": {"create": windows_create},
            "ingest": ingest,
            "dataset": {"pack": dataset_pack, "show": dataset_show},
            "export": export,
            "predict": predict,
            "evaluate": evaluate,
        },
        args=argv,
        as_positional=False,
        description="earthplat: multimodal Earth-observation foundation models and platform. "
        "Also: `earthplat pretrain|finetune` (LightningCLI) and `earthplat worker` (job worker).",
    )
