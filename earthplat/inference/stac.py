"""A STAC Item describing a prediction: its assets, grid (``proj``, ``raster``), classes
(``classification``) and the model that made it (the Machine Learning Model extension, MLM)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from earthplat.tasks import TASKS

MLM = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
PROJ = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"
_MEDIA = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".geojson": "application/geo+json",
    ".parquet": "application/vnd.apache.parquet",
}


def _result(spec: Any) -> dict[str, Any]:
    """The shape of what the model returns for one chip, by the task's output scale."""
    scale = TASKS[spec.task].output_scale
    if scale == "chip":  # one vector per window
        return {"shape": [-1, spec.num_outputs], "dim_order": ["batch", "channel"],
                "data_type": "float32"}  # fmt: skip
    side = spec.chip_size if scale == "pixel" else spec.chip_size // spec.patch_size
    return {
        "shape": [-1, spec.num_outputs, side, side],
        "dim_order": ["batch", "channel", "height", "width"],
        "data_type": "float32",
    }


def mlm_properties(model: Any, sources: dict) -> dict[str, Any]:
    """The ``mlm:*`` fields of ``model`` (a TaskModel) fed from ``sources`` (RasterSource)."""
    import torch

    from earthplat.sensors import get_modality

    spec = model.spec
    backbone = spec.backbone.get("model") or spec.backbone.get("name", "earthplat")
    inputs = []
    for name, bands in spec.inputs.items():
        mod = get_modality(name)
        t = len(sources[name].channels) if name in sources else spec.num_periods
        means, stds = mod.stats(tuple(bands))
        inputs.append(
            {
                "name": name,
                "bands": list(bands),
                "input": {
                    "shape": [-1, t, len(bands), spec.chip_size, spec.chip_size],
                    "dim_order": ["batch", "time", "bands", "height", "width"],
                    "data_type": "float32",
                },
                "value_scaling": [
                    {"type": "z-score", "mean": m - 2 * s, "stddev": 4 * s}
                    for m, s in zip(means, stds)
                ],
                "description": f"{mod.description}; (x - (mean - 2 std)) / (4 std) per band",
            }
        )
    classes = [
        {
            "value": int(c["value"]),
            "name": str(c["label"]),
            "color_hint": str(c["color"]).lstrip("#").upper(),
        }
        for c in spec.classes
    ]
    output: dict[str, Any] = {
        "name": spec.task,
        "tasks": list(TASKS[spec.task].mlm_tasks),
        "result": _result(spec),
    }
    if classes:
        output["classification:classes"] = classes
    return {
        "mlm:name": f"earthplat-{spec.task}-{backbone}-{spec.head.get('name', 'head')}",
        "mlm:architecture": f"{backbone} + {spec.head.get('name', 'head')} head",
        "mlm:tasks": list(TASKS[spec.task].mlm_tasks),
        "mlm:framework": "pytorch",
        "mlm:framework_version": torch.__version__.split("+")[0],
        "mlm:total_parameters": int(sum(p.numel() for p in model.parameters())),
        "mlm:pretrained": spec.backbone.get("pretrained") is not None,
        "mlm:accelerator": "amd64",
        "mlm:input": inputs,
        "mlm:output": [output],
        "mlm:hyperparameters": {
            "patch_size": spec.patch_size,
            "chip_size": spec.chip_size,
            "num_periods": spec.num_periods,
            "gsd_m": spec.gsd_m,
        },
    }


def write_item(
    path: str | Path,
    *,
    item_id: str,
    grid: Any,
    assets: dict[str, Path],
    model: Any,
    sources: dict,
    raster_format: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict:
    """Write the Item JSON at ``path`` (asset hrefs relative to it); return its dict."""
    import json

    import pystac
    from rasterio.warp import transform_bounds, transform_geom
    from shapely.geometry import box, mapping

    left, bottom, right, top = grid.bounds
    footprint = transform_geom(
        grid.crs, "EPSG:4326", mapping(box(left, bottom, right, top)), precision=-1
    )
    bbox = list(transform_bounds(grid.crs, "EPSG:4326", left, bottom, right, top, densify_pts=21))
    dates = sorted(d for s in sources.values() for d in s.dates)
    start, end = (datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (dates[0], dates[-1]))
    props: dict[str, Any] = {
        "start_datetime": start.isoformat(),
        "end_datetime": end.isoformat(),
        "created": datetime.now(UTC).isoformat(),
        "proj:code": grid.crs.to_string(),
        "proj:shape": [grid.height, grid.width],
        "proj:transform": list(grid.transform)[:6],
        "proj:bbox": [left, bottom, right, top],
        **mlm_properties(model, sources),
        **(extra or {}),
    }
    exts = [MLM, PROJ, RASTER] + ([CLASSIFICATION] if model.spec.classes else [])
    item = pystac.Item(item_id, footprint, bbox, start, props, stac_extensions=exts)
    out_dir = Path(path).parent
    for key, asset_path in assets.items():
        fields: dict[str, Any] = {}
        if asset_path.suffix == ".tif" and raster_format is not None:
            nodata = raster_format.nodata
            fields["raster:bands"] = [
                {
                    "name": d,
                    "data_type": raster_format.dtype,
                    "nodata": "nan" if nodata != nodata else nodata,
                }
                for d in raster_format.descriptions
            ]
            if model.spec.classes and raster_format.count == 1:
                fields["classification:classes"] = props["mlm:output"][0].get(
                    "classification:classes", []
                )
        roles = ["data"] if key != "model" else ["mlm:model"]
        if key == "model":
            fields["mlm:artifact_type"] = "safetensors" if asset_path.is_dir() else "torch.save"
        item.add_asset(
            key,
            pystac.Asset(
                href=str(asset_path.relative_to(out_dir))
                if asset_path.is_relative_to(out_dir)
                else str(asset_path),
                media_type=_MEDIA.get(asset_path.suffix),
                roles=roles,
                extra_fields=fields,
            ),
        )
    payload = item.to_dict(include_self_link=False)
    Path(path).write_text(json.dumps(payload, indent=1))
    return payload
