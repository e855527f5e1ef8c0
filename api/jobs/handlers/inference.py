"""``inference``: run a registered model over windows of the project (one, a list, or all
those meeting an AOI): a thin caller of ``earthplat.inference.predict_dataset``.

Payload::

    {"model_id": 3 | "model_path": "models/x",
     "windows": [ids] | null, "bbox": [minlon, minlat, maxlon, maxlat] | null,  # the AOI
     "dataset": "default",
     "layers": {"sentinel1": "s1"} | null,      # modality -> layer (default: the first layer of
     "layer": "s2" | null,                      #   each modality the model reads); one layer
     "allow_substitution": false,               # feed L2A to an L1C model (recorded)
     "outputs": ["cog", "geojson"] | null,      # default per task (see predict)
     "batch_size": 8}

Every window is read the way training reads it (the one layer reader: the layer's bands and
periods, validity from its mask), with a layer for *each* modality the model reads, so a model
fine-tuned on Sentinel-1 + Sentinel-2 runs here as trained. Windows lacking a modality or any
valid pixel are skipped and logged. Outputs go to ``DATA_DIR/jobs/ID/windows/NAME/prediction.*``
(COG with legend, GeoJSON in WGS84, STAC Item) and are listed in the result's ``artifacts`` as
``NAME.tif``, ``NAME.geojson``, ... plus ``predictions.geojson`` with every window's features,
downloadable at ``/api/v1/jobs/ID/artifacts/NAME``. An AOI run (``bbox``) also writes one
mosaic over the AOI (``mosaic.tif``: overviews, legend, nodata outside the windows; and its
STAC Item ``mosaic.item.json``), via ``earthplat.inference.mosaic_predictions``. A window
finished by an earlier attempt is not predicted again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.jobs.context import JobContext, PermanentJobError
from api.jobs.handlers.common import model_path, project_windows


def _in_aoi(rows: list, bbox: list[float] | None) -> list:
    if not bbox:
        return rows
    from shapely.geometry import box, shape

    aoi = box(*bbox)
    return [r for r in rows if shape(r.geometry).intersects(aoi)]


def _layers(ds: Any, rows: list, params: Any) -> dict[str, str] | None:
    """modality -> layer from the payload (``layers``, or one ``layer`` by its modality)."""
    if params.layers:
        return dict(params.layers)
    if params.layer:
        return {ds.layer_metadata(rows[0].name, params.layer)["modality"]: params.layer}
    return None


def run(ctx: JobContext) -> dict[str, Any]:
    from earthplat.data.dataset import Dataset
    from earthplat.errors import DataError, NoDataError
    from earthplat.inference import load_model, predict_dataset

    params = ctx.params
    root, rows = project_windows(ctx, params)
    rows = _in_aoi(rows, params.bbox)
    if not rows:
        raise PermanentJobError("no window of the dataset meets the AOI (bbox)")
    path, entry = model_path(ctx, params)
    model = load_model(str(path))
    ds = Dataset(root)
    out_dir = Path(ctx.work_dir)

    def progress(done: int, total: int) -> None:
        ctx.check()
        ctx.progress(done / total, f"predicted {done}/{total} windows")

    try:
        predict_dataset(
            model,
            root,
            out_dir,
            windows=[r.name for r in rows],
            layers=_layers(ds, rows, params),
            allow_substitution=params.allow_substitution,
            progress=progress,
            show_progress=False,
            outputs=params.outputs,
            batch_size=params.batch_size,
        )
    except NoDataError as err:
        raise PermanentJobError(str(err)) from None
    except DataError as err:  # a layer of another product, a model that cannot read the data
        raise PermanentJobError(str(err)) from None
    index = json.loads((out_dir / "predictions.json").read_text())
    for name, reason in index["skipped"].items():
        ctx.log(f"window {name}: skipped ({reason})", "warning")
    artifacts: dict[str, str] = {}
    features: list[dict] = []
    for name, files in index["windows"].items():
        for rel in files.values():
            p = out_dir / rel
            suffix = "".join(p.suffixes)  # .tif, .geojson, .item.json, .parquet
            artifacts[f"{name}{suffix}"] = str(p)
            if suffix == ".geojson":
                for f in json.loads(p.read_text()).get("features", []):
                    f.setdefault("properties", {})["window"] = name
                    features.append(f)
        ctx.log(f"window {name}: {', '.join(sorted(files))}")
    merged = None
    if features:
        merged = out_dir / "predictions.geojson"
        merged.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        artifacts[merged.name] = str(merged)
    cogs = [out_dir / f["cog"] for f in index["windows"].values() if "cog" in f]
    if params.bbox is not None and cogs:  # an AOI run: one mosaic over the AOI as well
        from earthplat.inference import mosaic_predictions

        ctx.progress(0.95, f"mosaicking {len(cogs)} windows")
        written = mosaic_predictions(cogs, out_dir / "mosaic.tif", features=merged)
        for path in written.values():
            artifacts[path.name] = str(path)
        ctx.log(f"mosaic of {len(cogs)} windows: {', '.join(p.name for p in written.values())}")
    return {
        "windows": list(index["windows"]),
        "skipped": index["skipped"],
        "substitutions": index.get("substitutions", {}),
        "model": str(path),
        "model_id": entry.id if entry else None,
        "task": model.spec.task,
        "artifacts": artifacts,
        "output_dir": str(out_dir),
    }
