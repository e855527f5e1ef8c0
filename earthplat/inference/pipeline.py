"""``predict``: a model over a GeoTIFF of any size, streamed chunk by chunk, to COG / GeoJSON /
GeoParquet / a STAC Item, resumable and optionally spread over ranks.

Outputs next to ``OUT.tif`` (``out`` may also be a directory: files named ``prediction.*``):

- ``OUT.tif``: COG on the input grid (class map with colormap and legend, values, or
  embeddings on the patch grid; per-tile tasks: one pixel per tile).
- ``OUT.geojson``: detections, or the class map's polygons, in WGS84 (RFC 7946).
- ``OUT.parquet``: embeddings as GeoParquet (``outputs=[..., "parquet"]``).
- ``OUT.item.json``: a STAC Item with the MLM model fields.
- ``OUT.tif.parts/``: finished chunks while running; a rerun resumes from them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from earthplat.errors import NoDataError
from earthplat.inference.engine import ChunkEngine, RasterFormat, task_output
from earthplat.inference.errors import InferenceError
from earthplat.inference.parts import PartStore
from earthplat.inference.reader import Grid, RasterSource, window_from_bbox
from earthplat.inference.tiling import TilePlan

OUTPUTS = ("cog", "geojson", "parquet", "stac")
DEFAULT_OUTPUTS = {
    "classes": ("cog", "geojson", "stac"),
    "values": ("cog", "stac"),
    "detections": ("geojson", "stac"),
}


def load_model(model: Any) -> Any:
    """A task model from a path (export, run dir, checkpoint, encoder export) or as given."""
    if hasattr(model, "spec") and hasattr(model, "forward"):
        return model.eval()
    from earthplat.nn.task_model import load_task_model

    return load_task_model(model).eval()


def _fingerprint(model: Any) -> str:
    h = hashlib.sha256(json.dumps(model.spec.to_dict(), sort_keys=True).encode())
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().float().sum().numpy().tobytes())
    return h.hexdigest()[:16]


def _paths(out: str | Path) -> dict[str, Path]:
    p = Path(out)
    if p.suffix.lower() not in (".tif", ".tiff"):
        p = p / "prediction.tif"
    stem = p.with_suffix("")
    return {
        "cog": p,
        "geojson": stem.with_suffix(".geojson"),
        "parquet": stem.with_suffix(".parquet"),
        "stac": stem.with_suffix(".item.json"),
    }


def _check_not_empty(sources: dict[str, RasterSource], area: tuple[int, int, int, int]) -> None:
    """Raise NoDataError when no input holds a valid pixel in the area."""
    if any(src.any_valid(*area) for src in sources.values()):
        return
    raise NoDataError(
        f"the area to predict in {', '.join(s.path for s in sources.values())} holds only "
        "nodata (no valid pixel); pick a --bbox or raster that covers imagery, or check the "
        "file's nodata value"
    )


def predict_sources(
    model: Any,
    sources: dict[str, RasterSource],
    out: str | Path,
    *,
    bbox: list[float] | None = None,
    batch_size: int = 8,
    overlap: int | None = None,
    chunk_size: int = 512,
    outputs: list[str] | None = None,
    devices: int = 1,
    threshold: float = 0.3,
    keep_parts: bool = False,
    progress: Callable[[int, int], None] | None = None,
    model_href: str | None = None,
) -> dict[str, Path]:
    """Predict ``sources`` (modality -> RasterSource, one grid) into files at ``out``."""
    from affine import Affine

    spec, kind = model.spec, task_output(model.spec.task)
    full = next(iter(sources.values())).grid()
    area = window_from_bbox(full, bbox)
    _check_not_empty(sources, area)
    scale = {"pixel": 1, "patch": spec.patch_size, "chip": spec.chip_size}[kind.output_scale]
    if overlap is None:
        overlap = 0 if kind.output_scale == "chip" else (spec.chip_size // 4) // scale * scale
    plan = TilePlan(area[2], area[3], spec.chip_size, overlap, chunk_size, scale)
    transform = full.transform @ Affine.translation(area[1], area[0])
    grid = Grid(full.crs, transform, area[3], area[2])
    out_grid = Grid(full.crs, transform @ Affine.scale(scale), *plan.out_shape[::-1])
    wanted = tuple(outputs or DEFAULT_OUTPUTS[kind.output])
    unknown = [o for o in wanted if o not in OUTPUTS]
    if unknown:
        raise InferenceError(f"unknown outputs {unknown}; choose from {', '.join(OUTPUTS)}")
    paths = _paths(out)
    paths["cog"].parent.mkdir(parents=True, exist_ok=True)
    store = PartStore(paths["cog"])
    store.prepare(
        {
            "model": _fingerprint(model),
            "sources": {k: s.describe() for k, s in sources.items()},
            "area": area,
            "plan": [plan.chip, plan.overlap, plan.chunk_size, plan.scale, threshold],
        }
    )
    engine = ChunkEngine(
        model, sources, plan, area_offset=area[:2], batch_size=batch_size, threshold=threshold
    )
    chunks = plan.chunks()
    rank = 0
    if devices > 1:
        from earthplat.inference.runner import run_chunks_ddp

        rank, _ = run_chunks_ddp(engine, chunks, store, devices, progress)
    else:
        from earthplat.inference.runner import run_chunks

        run_chunks(engine, chunks, store, progress)
    if rank == 0:
        _assemble(
            model, sources, store, chunks, paths, wanted, grid, out_grid, plan, keep_parts,
            model_href,
        )  # fmt: skip
    from earthplat.inference.runner import barrier

    barrier()
    return {k: v for k, v in paths.items() if k in wanted}


def _assemble(
    model, sources, store, chunks, paths, wanted, grid, out_grid, plan, keep_parts, model_href
):
    """Rank 0: parts -> COG / GeoJSON / GeoParquet / STAC Item (one chunk in memory at a time)."""
    from earthplat.inference.cog import write_cog
    from earthplat.inference.stac import write_item
    from earthplat.inference.vector import (
        class_features,
        detection_features,
        write_embeddings_parquet,
        write_geojson,
    )

    spec, kind = model.spec, task_output(model.spec.task)
    missing = sorted({c.index for c in chunks} - store.done())
    if missing:
        raise InferenceError(
            f"{len(missing)} chunks are not finished (e.g. {missing[:5]}); rerun the same "
            "command to resume"
        )
    if sum(store.load(c).valid_pixels for c in chunks) == 0:
        raise NoDataError("no chunk of the area held a valid pixel; nothing was predicted")
    channels = len(spec.classes) if kind.output == "classes" else spec.num_outputs
    fmt = RasterFormat.for_spec(spec, channels)
    results = lambda: (store.load(c) for c in chunks)  # noqa: E731 - re-iterable, streamed
    written: dict[str, Path] = {}
    classes = spec.classes if kind.output == "classes" else None
    geo = dict(crs=out_grid.crs, transform=out_grid.transform)
    if "cog" in wanted and kind.output != "detections":
        written["prediction"] = write_cog(
            paths["cog"],
            results(),
            shape=(out_grid.height, out_grid.width),
            fmt=fmt,
            scale=plan.scale,
            classes=classes,
            tags={"TASK": spec.task, "MODEL": json.dumps(spec.to_dict())} | _input_tags(sources),
            **geo,
        )
    if "geojson" in wanted:
        if kind.output == "detections":
            feats = detection_features(
                results(), transform=grid.transform, crs=grid.crs, classes=spec.classes
            )
        elif kind.output == "classes":
            feats = class_features(
                results(), scale=plan.scale, nodata=fmt.nodata, classes=spec.classes, **geo
            )
        else:
            raise InferenceError(f"GeoJSON output needs a class or detection task, not {spec.task}")
        legend = {"task": spec.task, "classes": spec.classes}
        written["vector"] = write_geojson(paths["geojson"], feats, legend)
    if "parquet" in wanted:
        if spec.task != "embedding":
            raise InferenceError("GeoParquet output is for embeddings; use cog for this task")
        written["embeddings"] = write_embeddings_parquet(
            paths["parquet"], results(), scale=plan.scale, **geo
        )
    if "stac" in wanted:
        model_asset = {"model": Path(model_href).resolve()} if model_href else {}
        write_item(
            paths["stac"],
            item_id=paths["cog"].stem,
            grid=out_grid,
            assets=written | model_asset,
            model=model,
            sources=sources,
            raster_format=fmt,
            extra={"earthplat:task": spec.task, "earthplat:chunks": len(chunks)}
            | _substitutions(sources),
        )
    if not keep_parts:
        store.remove()


def _substitutions(sources: dict[str, RasterSource]) -> dict[str, Any]:
    """``{"earthplat:substitutions": [...]}`` when an input is another product than the model
    was trained on (accepted with ``allow_substitution``), else ``{}``."""
    subs = [s.substitution for s in sources.values() if s.substitution]
    return {"earthplat:substitutions": subs} if subs else {}


def _input_tags(sources: dict[str, RasterSource]) -> dict[str, str]:
    tags = {
        "INPUT_DATES": ",".join(
            sorted({f"{d:%Y-%m-%d}" for s in sources.values() for d in s.dates})
        )
    }
    subs = _substitutions(sources)
    if subs:
        tags["SUBSTITUTIONS"] = json.dumps(subs["earthplat:substitutions"])
    return tags


def predict(
    model: Any,
    input: str | Path,
    out: str | Path | None = None,
    *,
    batch_size: int = 8,
    overlap: int | None = None,
    outputs: list[str] | None = None,
    bands: list[str] | None = None,
    modality: str | None = None,
    date: str | None = None,
    dates: list[str] | None = None,
    bbox: list[float] | None = None,
    chunk_size: int = 512,
    devices: int = 1,
    threshold: float = 0.3,
    keep_parts: bool = False,
    progress: Callable[[int, int], None] | None = None,
    windows: list[str] | None = None,
    layers: dict[str, str] | None = None,
    allow_substitution: bool = False,
) -> Any:
    """Predict a GeoTIFF (or an earthplat dataset dir) with a task model.

    Args:
        model: a TaskModel, or a path ``load_task_model`` accepts (export dir, finetune run
            dir or checkpoint, encoder export -> embeddings).
        input: a GeoTIFF with a CRS, or an earthplat dataset directory (see ``predict_dataset``).
        out: the output COG path (``.tif``) or a directory; ``None``: a temporary directory,
            and the result is loaded into memory.
        batch_size: tiles per forward pass.
        overlap: pixels shared by neighbouring tiles (default: a quarter of the chip).
        outputs: any of ``cog``, ``geojson``, ``parquet``, ``stac`` (default per task).
        bands: names of the file's bands in order (default: band descriptions, else the
            model's band order when the count matches).
        modality: the modality of the raster (default: the model's first input).
        date: acquisition date ``YYYY-MM-DD`` when the file does not name one.
        dates: the dates of a multi-date file without dated band descriptions: one per block
            of ``bands`` (date-major) or one per file band.
        bbox: ``minx miny maxx maxy`` in the raster's CRS: predict only this part.
        chunk_size: side (px) of a unit of work: memory scales with it, not with the area.
        devices: CPU processes (Lightning DDP over gloo) sharing the chunks.
        threshold: detection score threshold.
        keep_parts: keep the finished chunks (``OUT.tif.parts``) after assembly.
        progress: called as ``progress(done, total)`` after each chunk on this rank (for a
            dataset: after each window).
        windows: (dataset input) only these windows.
        layers: (dataset input) modality -> the layer holding it (default: the first layer of
            each of the model's modalities).
        allow_substitution: accept an input of a sibling product (Sentinel-2 L2A for a model
            trained on L1C); recorded in the outputs' metadata. Without it such input is
            refused.

    Returns:
        ``xarray.DataArray`` (band, y, x) of the COG with its CRS and transform (lazily read
        when ``out`` is given), or for detections an ``xarray.Dataset`` of boxes. ``attrs``
        name the written files (``path``, ``geojson``, ``stac``).
    """
    from earthplat.inference.dataset import is_dataset, predict_dataset

    net = load_model(model)
    if is_dataset(input):
        return predict_dataset(
            net,
            input,
            out,
            batch_size=batch_size,
            overlap=overlap,
            outputs=outputs,
            chunk_size=chunk_size,
            devices=devices,
            threshold=threshold,
            progress=progress,
            windows=windows,
            layers=layers,
            allow_substitution=allow_substitution,
        )
    from earthplat.data.sources.level import check_model_modality
    from earthplat.sensors import get_modality

    given = get_modality(modality or next(iter(net.spec.inputs))).name
    key, substitution = check_model_modality(
        given, list(net.spec.inputs), allow=allow_substitution, where=f"--modality {given}"
    )
    if key is None:
        raise InferenceError(
            f"the model reads {', '.join(net.spec.inputs)}, not {given}; pass --modality naming "
            "one of those (or use a model trained on this sensor)"
        )
    src = RasterSource.open(
        str(input),
        key,
        net.spec.inputs[key],
        bands=bands,
        when=date,
        dates=dates,
        num_periods=net.spec.num_periods,
        allow_substitution=allow_substitution,
    )
    src.substitution = src.substitution or substitution
    tmp = None
    if out is None and devices > 1:
        raise InferenceError("devices > 1 needs out= (a path every rank can write to)")
    if out is None:
        tmp = tempfile.mkdtemp(prefix="earthplat-predict-")
        out = Path(tmp) / "prediction.tif"
    files = predict_sources(
        net,
        {key: src},
        out,
        bbox=bbox,
        batch_size=batch_size,
        overlap=overlap,
        chunk_size=chunk_size,
        outputs=outputs,
        devices=devices,
        threshold=threshold,
        keep_parts=keep_parts,
        progress=progress,
        model_href=None if hasattr(model, "forward") else str(model),
    )
    result = to_xarray(net, files, in_memory=tmp is not None)
    if tmp is not None:  # loaded into memory: no files are left behind
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        result.attrs = {k: v for k, v in result.attrs.items() if k not in files and k != "path"}
    return result


def to_xarray(model: Any, files: dict[str, Path], in_memory: bool = False) -> Any:
    """The written prediction as xarray (DataArray of the COG, or a Dataset of detections)."""
    import numpy as np
    import rioxarray
    import xarray as xr

    attrs = {"task": model.spec.task, "classes": json.dumps(model.spec.classes)}
    attrs |= {k if k != "cog" else "path": str(v) for k, v in files.items()}
    if "cog" in files and files["cog"].exists():
        da = rioxarray.open_rasterio(files["cog"], masked=False)
        if in_memory:
            da = da.load()
            da.close()
        da.attrs.update(attrs)
        return da
    feats: list[dict] = []
    if "geojson" in files:
        feats = json.loads(Path(files["geojson"]).read_text())["features"]
    props = {
        k: np.array([f["properties"][k] for f in feats])
        for k in ("label", "class_value", "class_label", "score")
    }
    geoms = np.array([json.dumps(f["geometry"]) for f in feats], dtype=object)
    ds = xr.Dataset(
        {k: ("detection", v) for k, v in props.items()} | {"geometry": ("detection", geoms)},
        attrs=attrs,
    )
    return ds.rio.write_crs("EPSG:4326")
