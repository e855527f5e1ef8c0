"""Predicting an earthplat dataset directory: each window's layers, outputs per window.

For every window, the layers whose modality the model reads become its inputs (the first
layer of each modality; multi-period layers give time steps). Outputs are written per window,
not as a mosaic (windows may lie in different UTM zones)::

    OUT/windows/NAME/prediction.tif (.geojson, .item.json)
    OUT/predictions.json    window -> files, plus the windows skipped (no valid pixel)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from earthplat.errors import NoDataError
from earthplat.inference.errors import InferenceError


def is_dataset(path: Any) -> bool:
    """Whether ``path`` is an earthplat dataset directory (it has a window index)."""
    from earthplat.data.dataset import INDEX

    p = Path(str(path))
    return p.is_dir() and (p / INDEX).exists()


def window_sources(model: Any, dataset: Any, window: Any) -> dict:
    """modality -> RasterSource over the window's layers that the model reads."""
    from earthplat.inference.reader import RasterSource
    from earthplat.sensors import get_modality

    sources = {}
    for layer in dataset.layers(window):
        meta = dataset.layer_metadata(window, layer)
        name = get_modality(meta["modality"]).name
        if name in model.spec.inputs and name not in sources:
            path = dataset.fs._strip_protocol(dataset.layer_path(window, layer))
            sources[name] = RasterSource.open(path, name, model.spec.inputs[name])
    return sources


def predict_dataset(
    model: Any,
    root: str | Path,
    out: str | Path | None,
    *,
    windows: list[str] | None = None,
    **kwargs: Any,
) -> Any:
    """Predict every window (or ``windows``) of a local dataset; returns an
    ``xarray.DataTree`` with one node per window (its prediction, with that window's CRS)."""
    import xarray as xr

    from earthplat.data.dataset import Dataset
    from earthplat.inference.pipeline import predict_sources, to_xarray

    ds = Dataset(root)
    if not ds.is_local:
        raise InferenceError(f"{root}: dataset inference reads local datasets; copy it first")
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="earthplat-pred-"))
    index: dict[str, Any] = {"windows": {}, "skipped": {}}
    nodes = {}
    for window in ds.windows(windows):
        sources = window_sources(model, ds, window)
        if not sources:
            raise InferenceError(
                f"window {window.name} has no layer of the model's modalities "
                f"({', '.join(model.spec.inputs)}); its layers: {ds.layers(window)}. Ingest "
                "one (earthplat ingest) or use a model for these sensors"
            )
        target = out_dir / "windows" / window.name / "prediction.tif"
        try:
            files = predict_sources(model, sources, target, **kwargs)
        except NoDataError as err:
            index["skipped"][window.name] = str(err)
            continue
        index["windows"][window.name] = {k: str(v.relative_to(out_dir)) for k, v in files.items()}
        result = to_xarray(model, files, in_memory=out is None)
        name = result.name or "prediction"
        nodes[f"/{window.name}"] = (
            result.to_dataset(name=name) if isinstance(result, xr.DataArray) else result
        )
    if not nodes:
        raise NoDataError(f"no window of {root} held a valid pixel to predict")
    (out_dir / "predictions.json").write_text(json.dumps(index, indent=1))
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs.update({"path": str(out_dir), "task": model.spec.task})
    return tree
