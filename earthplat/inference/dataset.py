"""Predicting an earthplat dataset directory: each window's layers, outputs per window.

Every window's inputs are read through ``earthplat.data.layer.LayerReader`` (the reader
training uses: bands and periods from the layer JSON, validity from the mask COG), one layer per
modality the model reads: the first layer of that modality, or the one ``layers`` names. A
layer of a sibling product (L2A for a model trained on L1C) is refused unless
``allow_substitution``, which is then recorded in the outputs. Outputs are written per window,
not as a mosaic (windows may lie in different UTM zones)::

    OUT/windows/NAME/prediction.tif (.geojson, .item.json)
    OUT/predictions.json    window -> files, plus the windows skipped and why (no valid
                            pixel, no layer of a modality the model reads)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from earthplat.errors import NoDataError
from earthplat.inference.errors import InferenceError


def is_dataset(path: Any) -> bool:
    """Whether ``path`` is an earthplat dataset directory (it has a window index)."""
    from earthplat.data.dataset import INDEX

    p = Path(str(path))
    return p.is_dir() and (p / INDEX).exists()


class MissingInputError(InferenceError):
    """A window has no layer of a modality the model reads."""


def model_layers(
    spec: Any,
    dataset: Any,
    window: Any,
    *,
    layers: dict[str, str] | None = None,
    allow_substitution: bool = False,
) -> dict[str, tuple[str, dict | None]]:
    """model modality -> (the window's layer that feeds it, the substitution recorded or
    ``None``), for a model of ``spec`` (a ``TaskSpec``; see the module docstring). ``layers``
    (modality -> layer) names them instead. Raises ``MissingInputError`` naming the
    modalities no layer holds (an encoder reads any subset of its modalities)."""
    from earthplat.data.sources.level import check_model_modality
    from earthplat.sensors import get_modality

    chosen: dict[str, tuple[str, dict | None]] = {}
    for modality, layer in (layers or {}).items():
        key = get_modality(modality).name
        if key not in spec.inputs:
            raise InferenceError(
                f"layers names {modality}, which the model does not read (it reads "
                f"{', '.join(spec.inputs)})"
            )
        meta = dataset.layer_metadata(window, layer)
        found, sub = check_model_modality(
            get_modality(meta["modality"]).name,
            [key],
            allow=allow_substitution,
            where=f"window {window.name} layer {layer!r}",
        )
        if found is None:
            raise InferenceError(
                f"window {window.name} layer {layer!r} holds {meta['modality']}, not {key}"
            )
        chosen[key] = (layer, sub)
    held = {
        layer: get_modality(dataset.layer_metadata(window, layer)["modality"]).name
        for layer in dataset.layers(window)
    }
    for layer, modality in held.items():  # the model's own modalities first
        if modality in spec.inputs and modality not in chosen:
            chosen[modality] = (layer, None)
    for layer, modality in held.items():  # then sibling products, refused unless allowed
        found, sub = check_model_modality(
            modality,
            [m for m in spec.inputs if m not in chosen],
            allow=allow_substitution,
            where=f"window {window.name} layer {layer!r}",
        )
        if found is not None:
            chosen[found] = (layer, sub)
    # a task model reads what it was trained on; an encoder (embeddings) any of its modalities
    missing = [m for m in spec.inputs if m not in chosen]
    if missing and (spec.task != "embedding" or not chosen):
        raise MissingInputError(
            f"window {window.name} has no layer of {', '.join(missing)} (its layers: "
            f"{', '.join(dataset.layers(window)) or 'none'}); ingest one (earthplat ingest "
            f"--modality {missing[0]}) or use a model for these sensors"
        )
    return {m: chosen[m] for m in spec.inputs if m in chosen}


def window_sources(
    model: Any,
    dataset: Any,
    window: Any,
    *,
    layers: dict[str, str] | None = None,
    allow_substitution: bool = False,
) -> dict:
    """model modality -> ``LayerSource`` over the window's layer that feeds it
    (``model_layers``)."""
    from earthplat.inference.reader import LayerSource

    spec = model.spec
    chosen = model_layers(
        spec, dataset, window, layers=layers, allow_substitution=allow_substitution
    )
    return {
        m: LayerSource.open_layer(
            dataset,
            window,
            layer,
            spec.inputs[m],
            modality=m,
            num_periods=spec.num_periods,
            substitution=sub,
        )
        for m, (layer, sub) in chosen.items()
    }


def _run_key(model: Any, sources: dict, kwargs: dict) -> str:
    """What a window's finished outputs were computed from (model, inputs, settings)."""
    import hashlib

    from earthplat.inference.pipeline import _fingerprint

    text = json.dumps(
        [_fingerprint(model), {k: s.describe() for k, s in sources.items()}, kwargs],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finished(marker: Path, key: str, out_dir: Path) -> dict[str, Path] | None:
    """The files of a window finished by an earlier run with the same ``key``, else None."""
    if not marker.is_file():
        return None
    done = json.loads(marker.read_text())
    files = {k: Path(v) for k, v in done.get("files", {}).items()}
    if done.get("key") != key or not all(p.exists() for p in files.values()):
        return None
    return files


def predict_dataset(
    model: Any,
    root: str | Path,
    out: str | Path | None,
    *,
    windows: list[str] | None = None,
    layers: dict[str, str] | None = None,
    allow_substitution: bool = False,
    progress: Callable[[int, int], None] | None = None,
    show_progress: bool = True,
    **kwargs: Any,
) -> Any:
    """Predict every window (or ``windows``) of a local dataset; returns an
    ``xarray.DataTree`` with one node per window (its prediction, with that window's CRS).

    ``progress(done, total)`` is called after each window (it may raise to stop); ``kwargs`` go
    to ``predict_sources`` (batch size, overlap, outputs, chunk size, devices, threshold). A
    window finished by an earlier run with the same model, inputs and settings is not predicted
    again (``prediction.done.json`` beside its outputs), so an interrupted run resumes."""
    import xarray as xr
    from tqdm.auto import tqdm

    from earthplat.data.dataset import Dataset
    from earthplat.inference.pipeline import predict_sources, to_xarray

    ds = Dataset(root)
    if not ds.is_local:
        raise InferenceError(f"{root}: dataset inference reads local datasets; copy it first")
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="earthplat-pred-"))
    index: dict[str, Any] = {"windows": {}, "skipped": {}, "substitutions": {}}
    nodes = {}
    todo = ds.windows(windows)
    bar = tqdm(todo, desc="predict", unit="window", disable=not show_progress)
    for i, window in enumerate(bar):
        try:
            sources = window_sources(
                model, ds, window, layers=layers, allow_substitution=allow_substitution
            )
        except MissingInputError as err:
            index["skipped"][window.name] = str(err)
            continue
        target = out_dir / "windows" / window.name / "prediction.tif"
        marker = target.with_name("prediction.done.json")
        key = _run_key(model, sources, kwargs)
        try:
            files = _finished(marker, key, out_dir)
            if files is None:
                files = predict_sources(model, sources, target, **kwargs)
                marker.write_text(
                    json.dumps({"key": key, "files": {k: str(v) for k, v in files.items()}})
                )
        except NoDataError as err:
            index["skipped"][window.name] = str(err)
            continue
        finally:
            if progress is not None:
                progress(i + 1, len(todo))
        subs = [s.substitution for s in sources.values() if s.substitution]
        if subs:
            index["substitutions"][window.name] = subs
        index["windows"][window.name] = {k: str(v.relative_to(out_dir)) for k, v in files.items()}
        result = to_xarray(model, files, in_memory=out is None)
        name = result.name or "prediction"
        nodes[f"/{window.name}"] = (
            result.to_dataset(name=name) if isinstance(result, xr.DataArray) else result
        )
    bar.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "predictions.json").write_text(json.dumps(index, indent=1))
    if not nodes:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(index["skipped"].items())[:3])
        raise NoDataError(f"no window of {root} could be predicted ({reasons})")
    tree = xr.DataTree.from_dict(nodes)
    tree.attrs.update({"path": str(out_dir), "task": model.spec.task})
    return tree
