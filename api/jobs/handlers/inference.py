"""``inference``: run a registered model over windows of the project (one, a list, or all
those meeting an AOI) with ``earthplat.inference.predict``.

Payload::

    {"model_id": 3 | "model_path": "models/x",
     "windows": [ids] | null, "bbox": [minlon, minlat, maxlon, maxlat] | null,  # the AOI
     "dataset": "default", "layer": null,       # input layer (default: the model's modality)
     "outputs": ["cog", "geojson"] | null,      # default per task (see predict)
     "batch_size": 8}

Outputs go to ``DATA_DIR/jobs/ID/NAME.*`` per window (COG with legend, GeoJSON in WGS84,
STAC Item) plus ``predictions.geojson`` with every window's features; all are listed in the
result's ``artifacts`` and downloadable at ``/api/v1/jobs/ID/artifacts/NAME``. A window whose
outputs exist already (earlier attempt) is not predicted again; ``predict`` itself resumes a
half-done raster from its finished chunks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.jobs.context import JobContext, PermanentJobError
from api.jobs.handlers.common import input_layers, model_path, project_windows


def _in_aoi(rows: list, bbox: list[float] | None) -> list:
    if not bbox:
        return rows
    from shapely.geometry import box, shape

    aoi = box(*bbox)
    return [r for r in rows if shape(r.geometry).intersects(aoi)]


def run(ctx: JobContext) -> dict[str, Any]:
    from earthplat.data.dataset import Dataset
    from earthplat.inference import load_model, predict

    root, rows = project_windows(ctx, ctx.payload)
    rows = _in_aoi(rows, ctx.payload.get("bbox"))
    if not rows:
        raise PermanentJobError("no window of the dataset meets the AOI (bbox)")
    path, entry = model_path(ctx, ctx.payload)
    model = load_model(str(path))
    ds = Dataset(root)
    wanted = {ctx.payload["layer"]: None} if ctx.payload.get("layer") else None
    out_dir = ctx.work_dir
    artifacts: dict[str, str] = {}
    features: list[dict] = []
    done: list[str] = []
    for i, row in enumerate(rows):
        ctx.check()
        if wanted:
            layer = ctx.payload["layer"]
            modality = ds.layer_metadata(row.name, layer)["modality"]
        else:
            found = input_layers(ds, row.name, model.spec.inputs)
            if not found:
                ctx.log(f"window {row.name}: skipped (no layer of {sorted(model.spec.inputs)})")
                continue
            layer, modality = next(iter(found.items()))
        out = out_dir / f"{row.name}.tif"
        marker = out_dir / f"{row.name}.done"
        if not marker.exists():
            predict(
                model,
                ds.layer_path(row.name, layer),
                out,
                modality=modality,
                outputs=ctx.payload.get("outputs"),
                batch_size=int(ctx.payload.get("batch_size", 8)),
            )
            marker.write_text("ok")
        for suffix in (".tif", ".geojson", ".item.json", ".parquet"):
            p = out_dir / f"{row.name}{suffix}"
            if p.is_file():
                artifacts[p.name] = str(p)
        gj = out_dir / f"{row.name}.geojson"
        if gj.is_file():
            for f in json.loads(gj.read_text()).get("features", []):
                f.setdefault("properties", {})["window"] = row.name
                features.append(f)
        done.append(row.name)
        ctx.progress((i + 1) / len(rows), f"predicted {i + 1}/{len(rows)} windows")
        ctx.log(f"window {row.name}: {out.name}")
    if not done:
        raise PermanentJobError("no window holds an input layer the model reads")
    if features:
        merged = out_dir / "predictions.geojson"
        merged.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        artifacts[merged.name] = str(merged)
    return {
        "windows": done,
        "model": str(path),
        "model_id": entry.id if entry else None,
        "task": model.spec.task,
        "artifacts": artifacts,
        "output_dir": str(Path(out_dir)),
    }
