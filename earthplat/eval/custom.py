"""A user's own labelled datasets as a benchmark: ``earthplat evaluate --train D [--test D]``.

The windows to train on come from ``train`` and the windows to score from ``test`` (or, without
``test``, from a split of ``train``). ``split_by`` splits what needs splitting: ``grid`` (whole
spatial cells to one split, stratified by class for window labels, as the named benchmarks
do) or ``property`` (the windows' ``split`` property says train/val/test). Train and
validation windows that overlap a test window are dropped, across datasets too.

Every protocol then reads one benchmark dataset under the output directory that links (hard
links, else copies) the chosen windows' layers from their datasets, with a ``split`` property,
so the frozen protocols and the fine-tune run see exactly the same windows.

What the datasets say about themselves is used: the input layers and class schemas recorded in
``dataset.json`` (``earthplat dataset import-patches`` / ``label`` write them). A window label
is a property (classification), a label layer is a class raster (segmentation).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.window import Window
from earthplat.errors import DataError
from earthplat.eval.benchmarks import SPLITS, Benchmark, BenchmarkData, split_windows

IMAGERY_EXCLUDED = ("label",)
"""Modalities never used as model inputs when the inputs are inferred."""


def _input_layers(ds: Dataset, window: Window, label: str) -> dict[str, str]:
    """layer -> modality of the dataset's inputs: ``dataset.json`` ``inputs``, else every
    finished layer of an encoder modality (not the label)."""
    from earthplat.sensors import get_modality

    recorded = ds.info().get("inputs")
    if recorded:
        return dict(recorded)
    out = {}
    for layer in ds.layers(window):
        if layer == label:
            continue
        modality = get_modality(ds.layer_metadata(window, layer)["modality"])
        if not modality.decode_only and modality.name not in IMAGERY_EXCLUDED:
            out[layer] = modality.name
    if not out:
        raise DataError(
            f"{ds.root}: window {window.name} has no imagery layer to feed a model; ingest one "
            "(earthplat ingest) or name the inputs with --layers"
        )
    return out


def _label(ds: Dataset, windows: list[Window], label: str | None) -> tuple[str, str]:
    """(label name, task): a window property (classification) or a label layer
    (segmentation); default: the dataset's only recorded class schema, else ``label``."""
    if label is None:
        schemas = list(ds.info().get("classes") or {})
        label = schemas[0] if len(schemas) == 1 else "label"
    if all(label in w.properties for w in windows[:50]):
        return label, "classification"
    if any(ds.layer_done(w, label) for w in windows[:50]):
        return label, "segmentation"
    raise DataError(
        f"{ds.root} has no label {label!r} (neither a window property nor a label layer); "
        "label it (earthplat dataset label --dataset ... --from FILE) or name it with --label"
    )


def _classes(ds: Dataset, windows: list[Window], label: str, task: str) -> list[dict]:
    from earthplat.data.label_import import schema_for

    recorded = ds.class_schema(label)
    if recorded:
        return [dict(c) for c in recorded]
    if task == "classification":
        schema, _ = schema_for([w.properties[label] for w in windows], None, None)
        if schema is None:
            raise DataError(
                f"label {label!r} of {ds.root} holds numbers, not classes; evaluate scores "
                "class labels"
            )
        return schema
    raise DataError(
        f"{ds.root} records no class schema for layer {label!r}; write it with "
        "earthplat dataset label (or name the classes in dataset.json)"
    )


def _link(src: str, dst: str) -> None:
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(dst):
        os.unlink(dst)
    try:
        os.link(src, dst)  # same file system: no copy
    except OSError:
        shutil.copy2(src, dst)


def _copy_window(src: Dataset, window: Window, dst: Dataset, name: str, layers: list[str]) -> None:
    """Link ``window``'s ``layers`` from ``src`` into ``dst`` as window ``name``."""
    for layer in layers:
        for suffix in (".tif", ".mask.tif", ".json", ".geojson"):
            path = src.local_path(src.layer_path(window, layer, suffix))
            if os.path.exists(path):
                _link(path, dst.local_path(dst.layer_path(name, layer, suffix)))


def dataset_benchmark(
    train: str | Path,
    test: str | Path | None = None,
    *,
    out_dir: str | Path,
    label: str | None = None,
    layers: dict[str, str] | None = None,
    split_by: str = "grid",
    cell_size_m: float | None = None,
    patch_size: int = 8,
    seed: int = 0,
) -> BenchmarkData:
    """Train on ``train`` and score on ``test`` (or a split of ``train``): see the module
    docstring. The benchmark dataset is written to ``out_dir``."""
    from earthplat.data.sample import load_sample
    from earthplat.data.splits import drop_leaks, property_split
    from earthplat.eval.benchmarks import _segmentation_labels

    if split_by not in ("grid", "property"):
        raise DataError(f"--split_by must be grid or property, not {split_by!r}")
    tr = Dataset(train)
    te = Dataset(test) if test else None
    if not tr.exists() or (te is not None and not te.exists()):
        missing = train if not tr.exists() else test
        raise DataError(f"{missing} is not a dataset (no windows.parquet)")
    tr_windows = tr.windows()
    name, task = _label(tr, tr_windows, label)
    inputs = dict(layers) if layers else _input_layers(tr, tr_windows[0], name)
    needed = [*inputs, *([name] if task == "segmentation" else [])]

    def usable(ds: Dataset, windows: list[Window]) -> list[Window]:
        ok = [w for w in windows if all(ds.layer_done(w, layer) for layer in needed)]
        if task == "classification":
            ok = [w for w in ok if w.properties.get(name) not in (None, "")]
        if not ok:
            raise DataError(
                f"no window of {ds.root} holds the layers {needed}"
                + (f" and a {name!r} property" if task == "classification" else "")
            )
        return ok

    classes = _classes(tr, tr_windows, name, task)
    value_index = {c["value"]: i for i, c in enumerate(classes)}
    label_of = {c["label"]: c["value"] for c in classes}
    fractions = (
        {"train": 0.6, "val": 0.13, "test": 0.27} if te is None else {"train": 0.85, "val": 0.15}
    )
    side = min(min(w.height, w.width) for w in tr_windows)
    chip = max(patch_size, min(64, side) // patch_size * patch_size)
    label_cfg = (
        {"kind": "property", "name": "class_value"}
        if task == "classification"
        else {"kind": "layer", "name": name}
    )
    title = Path(str(train)).name + (f"->{Path(str(test)).name}" if te is not None else "")
    bench = Benchmark(
        name=title,
        task=task,
        description=f"{train}" + (f" (test: {test})" if test else ""),
        source=str(train),
        ingest=None,
        classes=lambda: classes,
        layers=inputs,
        label_layer=name if task == "segmentation" else None,
        patch_size=patch_size,
        cell_size_m=cell_size_m or 10_000.0,
        fractions=fractions,
        stratify=True,
        finetune_config="finetune_eurosat"
        if task == "classification"
        else "finetune_sen1floods11_water",
        finetune_overrides={
            "data.config.inputs": inputs,
            "data.config.label": label_cfg,
            "data.config.chip_size": chip,
            "model.patch_size": patch_size,
        },
    )

    def class_id(w: Window) -> Window:
        """The window with ``class_value`` (its class's value) and ``class_id`` (its class's
        index, what splits stratify on and scores count)."""
        raw = w.properties[name]
        value = label_of.get(str(raw), raw)
        try:
            index = value_index[int(value)]
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"window {w.name}: {name}={raw!r} is not in the class schema "
                f"({', '.join(c['label'] for c in classes)})"
            ) from None
        props = {**w.properties, "class_id": index, "class_value": int(value)}
        return dataclasses.replace(w, properties=props)

    def labelled(ws: list[Window]) -> list[Window]:
        return [class_id(w) for w in ws] if task == "classification" else ws

    def split(ws: list[Window], with_test: bool) -> dict[str, list[Window]]:
        if split_by == "property":
            parts = property_split(ws, property="split")
            return parts if with_test else {s: parts.get(s, []) for s in ("train", "val")}
        return split_windows(bench, ws, seed)

    parts = split(labelled(usable(tr, tr_windows)), te is None)
    sources = {s: tr for s in SPLITS}
    if te is not None:
        parts["test"] = labelled(usable(te, te.windows()))
        sources["test"] = te
    before = {s: len(parts.get(s, [])) for s in SPLITS}
    parts = drop_leaks({s: parts.get(s, []) for s in SPLITS})
    dropped = {s: before[s] - len(parts[s]) for s in SPLITS if before[s] != len(parts[s])}
    empty = [s for s in SPLITS if not parts[s]]
    if empty:
        counts = {s: len(v) for s, v in parts.items()}
        fix = (
            "lower --cell_size_m so there are more cells"
            if split_by == "grid"
            else "set the windows' split property to train/val/test"
        )
        raise DataError(
            f"the {', '.join(empty)} split(s) of {bench.name} are empty (windows per split: "
            f"{counts}); {fix}"
        )
    # one dataset for every protocol: the chosen windows, renamed where two datasets collide
    root = Path(out_dir)
    shutil.rmtree(root, ignore_errors=True)
    out = Dataset(root)
    seen: set[str] = set()
    final: dict[str, list[Window]] = {}
    for s in SPLITS:
        final[s] = []
        for w in parts[s]:
            new = w.name if w.name not in seen else f"{s}__{w.name}"
            seen.add(new)
            _copy_window(sources[s], w, out, new, needed)
            props = {**w.properties, "split": s}
            final[s].append(dataclasses.replace(w, name=new, properties=props))
    out.write_windows([w for s in SPLITS for w in final[s]])
    out.update_info(inputs=inputs, classes={name: classes}, dropped_for_leakage=dropped)
    samples, labels = {}, {}
    for s, ws in final.items():
        samples[s] = [load_sample(out, w, inputs) for w in ws]
        if task == "classification":
            labels[s] = np.array([int(w.properties["class_id"]) for w in ws], dtype=np.int64)
        else:
            labels[s] = _segmentation_labels(out, ws, name, classes)
    notes = {"label": name, "inputs": inputs, "dropped_for_leakage": dropped}
    return BenchmarkData(bench, out, classes, final, samples, labels, notes)
