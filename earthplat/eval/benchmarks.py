"""The named benchmark registry: real labelled data, a task, a class schema and a spatial split.

Each benchmark builds its labelled dataset with its ``earthplat.eval.recipes`` recipe (same
name; ``eurosat_classification`` for eurosat) from the real data (``../shared/data/real`` or
``$EARTHPLAT_SHARED_DATA``) into a cache dataset once, splits the windows with
``earthplat.data.splits.spatial_split`` and loads the normalised samples and labels of each split:

* ``eurosat``: EuroSAT-MS subset, 10 classes, one 64 px patch per window, scene labels.
  The split is stratified: every class is split on its own with ``spatial_split`` (whole 10 km
  cells per split), so each class appears in train, val and test; a last leakage pass drops
  train/val windows overlapping a test window. With 15 patches a class an unstratified split
  would leave some classes out of the test set.
* ``slovenia_landcover``: the eo-learn Slovenia tile, 32 px windows, 5 land-cover classes
  (segmentation; kNN/linear score 4 px patches by majority class).
* ``sen1floods11_water``: the Sen1Floods11 Spain chip, 64 px windows, water / not water
  (segmentation; 8 px patches).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from earthplat.errors import DataError

if TYPE_CHECKING:
    from earthplat.batch import Sample
    from earthplat.data.dataset import Dataset
    from earthplat.data.window import Window

SPLITS = ("train", "val", "test")


def shared_real_dir() -> Path:
    """``$EARTHPLAT_SHARED_DATA/real``, else ``../shared/data/real`` beside the repository."""
    root = os.environ.get("EARTHPLAT_SHARED_DATA")
    if root:
        return Path(root) / "real"
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "real"


@dataclass(frozen=True)
class Benchmark:
    """A named evaluation: where its data comes from and how it is scored."""

    name: str
    task: str
    """``classification`` (one label per window) or ``segmentation`` (a label raster)."""
    description: str
    source: str
    """Folder under the real-data root."""
    ingest: Callable[..., list[Window]] | None
    """(source dir, dataset dir, limit) -> the labelled windows (an ``earthplat.eval.recipes``
    recipe: inputs plus label layers / properties); None for a user's datasets
    (``earthplat.eval.custom``)."""
    classes: Callable[[], list[dict]]
    """Class schema ``{"value", "label", "color"}`` (from ``earthplat.eval.recipes``); class
    index = position."""
    layers: dict[str, str] = field(default_factory=lambda: {"s2": "sentinel2_l1c"})
    """Input layers fed to the model: layer name -> modality."""
    label_layer: str | None = None
    """Segmentation label layer (classification reads ``class_id`` from the window)."""
    patch_size: int = 8
    """Encoder patch size (px); the kNN/linear unit for segmentation."""
    cell_size_m: float = 10_000.0
    """Spatial split grid cell."""
    fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.6, "val": 0.1, "test": 0.3}
    )
    stratify: bool = False
    """Split each class separately (classification only)."""
    finetune_config: str | None = None
    """Name of the ``earthplat/configs/eval/*.yaml`` config the finetune protocol runs."""
    finetune_overrides: dict[str, Any] = field(default_factory=dict)
    """Dotted overrides of that config for this benchmark (inputs, label, chip size...)."""


def _eurosat(src: Path, dst: Path, limit: int | None) -> list[Window]:
    from earthplat.eval.recipes import eurosat_classification

    return eurosat_classification(src, dst, limit_per_class=limit)[1]


def _slovenia(src: Path, dst: Path, limit: int | None) -> list[Window]:
    from earthplat.eval.recipes import slovenia_landcover

    return slovenia_landcover(src, dst)[1]


def _floods(src: Path, dst: Path, limit: int | None) -> list[Window]:
    from earthplat.eval.recipes import sen1floods11_water

    return sen1floods11_water(src, dst)[1]


def _classes(name: str) -> Callable[[], list[dict]]:
    """The recipe module's class schema ``name`` (a list or a function returning one)."""

    def get() -> list[dict]:
        from earthplat.eval import recipes

        value = getattr(recipes, name)
        return [dict(c) for c in (value() if callable(value) else value)]

    return get


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "eurosat",
            "classification",
            "EuroSAT-MS subset: 10 land-use classes, 64 px S2 L1C patches",
            "eurosat_ms_subset",
            _eurosat,
            _classes("eurosat_classes"),
            patch_size=8,
            stratify=True,
            fractions={"train": 0.6, "val": 0.13, "test": 0.27},
            finetune_config="finetune_eurosat",
        ),
        Benchmark(
            "slovenia_landcover",
            "segmentation",
            "eo-learn Slovenia tile: 5 land-cover classes, 32 px windows, S2 L1C (3 months)",
            "s2_slovenia_eolearn",
            _slovenia,
            _classes("SLOVENIA_CLASSES"),
            label_layer="label",
            patch_size=4,
            cell_size_m=320.0,
            fractions={"train": 0.5, "val": 0.15, "test": 0.35},
            finetune_config="finetune_slovenia_landcover",
        ),
        Benchmark(
            "sen1floods11_water",
            "segmentation",
            "Sen1Floods11 Spain chip: water / not water, 64 px windows, S2 L1C",
            "sen1floods11_spain",
            _floods,
            _classes("WATER_CLASSES"),
            label_layer="label",
            patch_size=8,
            cell_size_m=1280.0,
            fractions={"train": 0.5, "val": 0.15, "test": 0.35},
            finetune_config="finetune_sen1floods11_water",
        ),
    )
}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


@dataclass
class BenchmarkData:
    """One benchmark's windows, samples and labels per split."""

    benchmark: Benchmark
    dataset: Dataset
    classes: list[dict]
    windows: dict[str, list[Window]]
    samples: dict[str, list[Sample]]
    labels: dict[str, np.ndarray]
    """classification: [N] class index; segmentation: [N, H, W] class index, -1 = ignore."""
    notes: dict[str, Any] = field(default_factory=dict)
    """What the report should say about how the data were made (label, inputs, windows
    dropped for leakage)."""

    def count(self, split: str) -> int:
        return len(self.windows[split])

    def info(self) -> dict[str, Any]:
        return {s: self.count(s) for s in SPLITS} | {"dataset": str(self.dataset.root)}


def split_windows(bench: Benchmark, windows: list[Window], seed: int = 0) -> dict:
    """``{train, val, test}`` windows: leak-free spatial cells, stratified by class if asked."""
    from earthplat.data.splits import drop_leaks, spatial_split

    def split(ws: list[Window]) -> dict[str, list[Window]]:
        return spatial_split(
            ws, cell_size_m=bench.cell_size_m, fractions=bench.fractions, seed=seed
        )

    if not (bench.stratify and bench.task == "classification"):
        out = split(windows)
    else:
        out = {s: [] for s in bench.fractions}
        for c in sorted({int(w.properties["class_id"]) for w in windows}):
            for s, ws in split([w for w in windows if int(w.properties["class_id"]) == c]).items():
                out[s].extend(ws)
        out = drop_leaks(out)
    return {s: sorted(out.get(s, []), key=lambda w: w.name) for s in SPLITS}


def _segmentation_labels(ds, windows, layer: str, classes: list[dict]) -> np.ndarray:
    from earthplat.data.layer import read_layer_arrays

    lookup = {int(c["value"]): i for i, c in enumerate(classes)}
    out = []
    for w in windows:
        ld = read_layer_arrays(ds, w, layer)
        raw = ld.data[0, 0].astype(np.int64)
        idx = np.full(raw.shape, -1, dtype=np.int64)
        for value, i in lookup.items():
            idx[(raw == value) & ld.valid[0]] = i
        out.append(idx)
    return np.stack(out) if out else np.zeros((0, 0, 0), dtype=np.int64)


def load_benchmark(
    name: str,
    *,
    cache_dir: str | Path,
    data_root: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> BenchmarkData:
    """Ingest (once per ``cache_dir``), split and load a benchmark. ``limit`` caps EuroSAT
    patches per class (small test runs); other benchmarks ignore it."""
    from earthplat.data.dataset import Dataset
    from earthplat.data.sample import load_sample

    bench = get_benchmark(name)
    src = Path(data_root) if data_root else shared_real_dir()
    src = src / bench.source
    if not src.is_dir():
        raise DataError(
            f"benchmark {name}: real data not found at {src} "
            "(set EARTHPLAT_SHARED_DATA or pass data_root)"
        )
    tag = f"{name}_limit{limit}" if limit else name
    root = Path(cache_dir) / tag
    done = root / ".ingested-v2"  # bump when the recipes change what they write
    if done.exists():
        ds = Dataset(root)
        windows = ds.windows(names=done.read_text().split())
    else:
        windows = bench.ingest(src, root, limit)
        ds = Dataset(root)
        done.write_text("\n".join(w.name for w in windows))
    if not windows:
        raise DataError(f"benchmark {name}: no window could be ingested from {src}")
    classes = [dict(c) for c in bench.classes()]
    splits = split_windows(bench, windows, seed)
    samples, labels = {}, {}
    for s, ws in splits.items():
        samples[s] = [load_sample(ds, w, bench.layers) for w in ws]
        if bench.task == "classification":
            labels[s] = np.array([int(w.properties["class_id"]) for w in ws], dtype=np.int64)
        else:
            labels[s] = _segmentation_labels(ds, ws, bench.label_layer, classes)
    return BenchmarkData(bench, ds, classes, splits, samples, labels)
