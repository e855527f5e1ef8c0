"""Fine-tuning data: labelled windows -> Contract A batches, and their ``LightningDataModule``.

A batch (``collate_finetune``)::

    {"window": list[str], "chip": long [B, 4] (row0, col0, row1, col1) read from the window,
     "modalities": {modality: {"data": float32 [B, T, C, H, W] normalised, 0 where invalid,
                               "valid": bool [B, T, H, W], "timestamps": long [B, T, 3],
                               "bands": list[str]}},
     "target": ..., "target_valid": ...}            # per task, see ``FinetuneDataset``

Choices (documented here because they shape the metrics):

- train: each window gives ``train_chips_per_window`` chips per epoch at seeded random offsets,
  drawn from ``(seed, epoch, index)`` alone, so the data never depend on workers or resumes;
  the order comes from a ``ResumableSampler`` (exact resume from Lightning checkpoints).
  Augmentation (``augment``): a seeded horizontal flip and rot90, applied alike to inputs,
  pixel targets and boxes.
- val/test/predict: pixel tasks (segmentation, pixel_regression, detection, embedding) tile
  each window with non-overlapping ``chip_size`` chips; the last chip of a row/column is flush
  with the window edge, and the pixels it shares with the previous chip are marked invalid in
  its target, so each labelled pixel is scored exactly once. Window-level tasks
  (classification, multilabel, regression) use one centred chip per window.
- a window smaller than ``chip_size`` is padded (valid = False, target ignored).
- multitemporal inputs keep their first ``num_periods`` periods, or are padded with
  valid = False periods (timestamps repeat the last one).

``FinetuneDataModule`` subclasses Lightning's ``LightningDataModule``; it is resolved lazily
(module ``__getattr__``) so that importing this module does not import lightning.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from earthplat.data.dataset import Dataset
from earthplat.data.labels import CLASS_NODATA, check_class_values, read_boxes
from earthplat.data.layer import read_layer_arrays
from earthplat.data.sample import fit_periods, prepare_modality, timestamps_of
from earthplat.data.window import Window
from earthplat.errors import DataError
from earthplat.sensors import get_modality

TASKS = (
    "classification",
    "multilabel",
    "segmentation",
    "pixel_regression",
    "regression",
    "detection",
    "embedding",
)
WINDOW_TASKS = ("classification", "multilabel", "regression")
"""Tasks with one target per window (evaluated on one centred chip per window)."""
PIXEL_TASKS = ("segmentation", "pixel_regression")
LABEL_KINDS = {
    "classification": ("property",),
    "multilabel": ("property", "layer"),
    "segmentation": ("layer",),
    "pixel_regression": ("layer",),
    "regression": ("property", "layer"),
    "detection": ("geojson",),
    "embedding": (),
}
"""Which label sources each task accepts."""
CLASS_TASKS = ("classification", "multilabel", "segmentation", "detection")


@dataclass
class LabelConfig:
    """Where a window's label comes from."""

    kind: str = "property"
    """``property`` (a window property), ``layer`` (a label layer of the window) or ``geojson``
    (the ``LAYER.geojson`` boxes/points written by ``write_label_layer``)."""
    name: str = "class_id"
    """The property or layer name."""

    def __post_init__(self) -> None:
        if self.kind not in ("property", "layer", "geojson"):
            raise DataError(f"label kind must be property, layer or geojson, got {self.kind!r}")


@dataclass
class SplitConfig:
    """How windows are split into train/val/test (see ``earthplat.data.splits``)."""

    kind: str = "spatial"
    """``spatial`` (grid cells, leak-free) or ``property`` (a window property names the split)."""
    cell_size_m: float = 1280.0
    """Side of the spatial grid cells in metres (whole cells go to one split)."""
    fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15}
    )
    """Target share of windows per split (``spatial`` only)."""
    seed: int = 0
    """Seed of the cell assignment."""
    buffer_m: float = 0.0
    """Train/val windows within this distance of a test window are dropped."""
    property: str = "split"
    """Window property holding ``train``/``val``/``test`` (``property`` kind)."""

    def __post_init__(self) -> None:
        if self.kind not in ("spatial", "property"):
            raise DataError(f"split kind must be spatial or property, got {self.kind!r}")
        if self.cell_size_m <= 0 or self.buffer_m < 0:
            raise DataError("split cell_size_m must be > 0 and buffer_m >= 0")
        if self.kind == "spatial" and self.fractions.get("train", 0) <= 0:
            raise DataError(f"split fractions {self.fractions} give no share to 'train'")


@dataclass
class FinetuneDataConfig:
    """A labelled dataset and how fine-tuning batches are drawn from it."""

    path: str
    """The dataset directory (``windows.parquet`` + ``windows/``)."""
    task: str = "classification"
    """One of ``TASKS``."""
    inputs: dict[str, str] = field(default_factory=lambda: {"s2": "sentinel2_l1c"})
    """Input layers: layer name -> modality (batches are keyed by the modality name)."""
    bands: dict[str, list[str]] | None = None
    """Optional band subset per input layer (default: every band the layer holds)."""
    label: LabelConfig | None = field(default_factory=LabelConfig)
    """Label source; ``None`` for ``embedding``."""
    classes: list[dict] = field(default_factory=list)
    """Class schema ``[{value, label, color}]``; index i = class i. Required for class tasks."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """Train/val/test split."""
    chip_size: int = 32
    """Side of the square chips fed to the model, pixels."""
    num_periods: int = 1
    """Periods of multitemporal inputs (first ones kept; short series padded as invalid)."""
    batch_size: int = 8
    """Chips per batch."""
    num_workers: int = 0
    """DataLoader worker processes (the data do not depend on it)."""
    seed: int = 0
    """Seed of the train order, crops and augmentations."""
    augment: bool = True
    """Random flips and rot90 of training chips (inputs, pixel targets and boxes alike)."""
    group: str | None = None
    """Only windows of this group (default: all)."""
    train_chips_per_window: int = 1
    """Random chips drawn per training window and epoch."""
    pin_memory: bool = False
    """Pin batches in page-locked memory (GPU training)."""

    def __post_init__(self) -> None:
        from earthplat.data.labels import validate_classes

        if isinstance(self.label, dict):  # from YAML / JSON
            self.label = LabelConfig(**self.label)
        if isinstance(self.split, dict):
            self.split = SplitConfig(**self.split)
        if self.task not in TASKS:
            raise DataError(f"task {self.task!r} is unknown; choose one of {', '.join(TASKS)}")
        if self.task == "embedding":
            self.label = None
        elif self.label is None or self.label.kind not in LABEL_KINDS[self.task]:
            kind = None if self.label is None else self.label.kind
            raise DataError(
                f"task {self.task} takes its label from {' or '.join(LABEL_KINDS[self.task])}, "
                f"not {kind!r}; set label.kind accordingly"
            )
        self.classes = validate_classes(self.classes)
        if self.task in CLASS_TASKS and not self.classes:
            raise DataError(f"task {self.task} needs a class schema (classes: [{{value, label}}])")
        if not self.inputs:
            raise DataError("inputs is empty; name at least one layer: {layer: modality}")
        for modality in self.inputs.values():
            get_modality(modality)  # SensorError names the known modalities
        for name, value in (
            ("chip_size", self.chip_size),
            ("num_periods", self.num_periods),
            ("batch_size", self.batch_size),
            ("train_chips_per_window", self.train_chips_per_window),
        ):
            if value < 1:
                raise DataError(f"{name} must be >= 1, got {value}")
        if self.num_workers < 0:
            raise DataError(f"num_workers must be >= 0, got {self.num_workers}")

    @property
    def num_outputs(self) -> int:
        """Classes for class tasks, 1 for regression (0 for embedding)."""
        if self.task in CLASS_TASKS:
            return len(self.classes)
        return 0 if self.task == "embedding" else 1


AUG_STREAM = 0xA06
CROP_STREAM = 0xC40
CACHE_BYTES = 256 * 2**20
"""Budget of the in-memory cache of whole-window arrays, per dataset (and per worker): small
windows are read once per run, large ones are re-read as the LRU turns over."""


def tile_starts(size: int, chip: int) -> list[int]:
    """Start offsets of non-overlapping chips along one axis; the last is flush with the edge."""
    if size <= chip:
        return [0]
    starts = list(range(0, size - chip + 1, chip))
    if starts[-1] + chip < size:
        starts.append(size - chip)
    return starts


def _crop(arr: np.ndarray, r0: int, c0: int, size: int, fill) -> np.ndarray:
    """[..., size, size] crop at (r0, c0); parts outside ``arr`` are ``fill``."""
    h, w = arr.shape[-2:]
    out = np.full((*arr.shape[:-2], size, size), fill, dtype=arr.dtype)
    rh, cw = min(size, h - r0), min(size, w - c0)
    out[..., :rh, :cw] = arr[..., r0 : r0 + rh, c0 : c0 + cw]
    return out


def _augment_array(arr: np.ndarray, flip: bool, k: int) -> np.ndarray:
    if flip:
        arr = arr[..., ::-1]
    return np.ascontiguousarray(np.rot90(arr, k, axes=(-2, -1)))


def _augment_boxes(boxes: np.ndarray, size: int, flip: bool, k: int) -> np.ndarray:
    """Boxes [n, 4] (x0, y0, x1, y1) through the same flip + rot90 as ``_augment_array``."""
    b = boxes.copy()
    if flip:  # x -> size - x
        b = np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], axis=1)
    for _ in range(k):  # np.rot90 (counter-clockwise): (x, y) -> (y, size - x)
        b = np.stack([b[:, 1], size - b[:, 2], b[:, 3], size - b[:, 0]], axis=1)
    return b


class FinetuneDataset(TorchDataset):
    """Chips of labelled windows as Contract A samples.

    ``mode``: ``train`` (random chips; indexed by ``(index, epoch)`` tuples from the train
    sampler, or an int for the current ``epoch``), ``eval`` (tiles or centred chips, see the
    module docstring) or ``predict`` (tiles of every window, no target). Targets per task:
    classification long [] class index; multilabel float [K]; segmentation long [H, W] (-1 =
    ignore); pixel_regression float [H, W] + bool mask; regression float []; detection
    ``boxes`` float [n, 4] in chip pixels + ``box_labels`` long [n]; embedding none.
    """

    def __init__(
        self, dataset: Dataset, windows: list[Window], config: FinetuneDataConfig, mode: str
    ) -> None:
        if mode not in ("train", "eval", "predict"):
            raise DataError(f"mode must be train, eval or predict, got {mode!r}")
        self.dataset, self.windows, self.config, self.mode = dataset, list(windows), config, mode
        self.epoch = 0
        self.values = np.array([c["value"] for c in config.classes], dtype=np.int64)
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.chips: list[tuple[int, int, int, int, int]] = []
        """(window index, row0, col0, rows and columns already scored by the previous tile)."""
        if mode != "train":
            size = config.chip_size
            for wi, w in enumerate(self.windows):
                if mode == "eval" and config.task in WINDOW_TASKS:
                    r0, c0 = max(0, (w.height - size) // 2), max(0, (w.width - size) // 2)
                    self.chips.append((wi, r0, c0, 0, 0))
                    continue
                rows, cols = tile_starts(w.height, size), tile_starts(w.width, size)
                for i, r0 in enumerate(rows):
                    own_r = max(0, rows[i - 1] + size - r0) if i else 0
                    for k, c0 in enumerate(cols):
                        own_c = max(0, cols[k - 1] + size - c0) if k else 0
                        self.chips.append((wi, r0, c0, own_r, own_c))

    def __len__(self) -> int:
        if self.mode == "train":
            return len(self.windows) * self.config.train_chips_per_window
        return len(self.chips)

    # --- reading ---------------------------------------------------------------------------
    def _load(self, wi: int) -> dict[str, Any]:
        if wi in self._cache:
            self._cache.move_to_end(wi)
            return self._cache[wi]
        cfg, w = self.config, self.windows[wi]
        mods: dict[str, dict[str, Any]] = {}
        for layer, modality in cfg.inputs.items():
            ld = read_layer_arrays(self.dataset, w, layer)
            spec = get_modality(modality)
            data, bands = ld.data, list(ld.bands)
            if cfg.bands and cfg.bands.get(layer):
                want = list(spec.canonical(cfg.bands[layer]))
                missing = [b for b in want if b not in bands]
                if missing:
                    raise DataError(
                        f"window {w.name} layer {layer!r} lacks band(s) {missing} (it has "
                        f"{bands}); choose bands the layer holds"
                    )
                data, bands = data[:, [bands.index(b) for b in want]], want
            valid = ld.valid
            data = prepare_modality(data, valid, spec, bands)
            stamps = timestamps_of(ld.times).astype(np.int64)
            if spec.multitemporal:
                data, valid, stamps = fit_periods(data, valid, stamps, cfg.num_periods)
            mods[spec.name] = {"data": data, "valid": valid, "timestamps": stamps, "bands": bands}
        entry: dict[str, Any] = {"modalities": mods}
        if self.mode != "predict" and cfg.label is not None:
            entry.update(self._load_label(w))
        entry["nbytes"] = sum(d["data"].nbytes for d in mods.values())
        self._cache[wi] = entry
        while len(self._cache) > 1 and sum(e["nbytes"] for e in self._cache.values()) > CACHE_BYTES:
            self._cache.popitem(last=False)
        return entry

    def _class_index(self, codes: np.ndarray, where: str) -> np.ndarray:
        """Codes -> class indices (-1 for nodata); unknown codes raise ``DataError``."""
        check_class_values(codes, self.config.classes, where)
        order = np.argsort(self.values)
        pos = np.searchsorted(self.values[order], codes)
        pos = np.clip(pos, 0, len(order) - 1)
        return np.where(codes == CLASS_NODATA, -1, order[pos]).astype(np.int64)

    def _load_label(self, w: Window) -> dict[str, Any]:
        cfg, task = self.config, self.config.task
        lab = cfg.label
        where = f"window {w.name} label {lab.kind} {lab.name!r}"
        if lab.kind == "property":
            value = w.properties.get(lab.name)
            return {"value": value}
        if lab.kind == "geojson":
            boxes = read_boxes(self.dataset, w, lab.name)
            codes = np.array([int(b["class"]) for b in boxes], dtype=np.int64)
            xyxy = np.array([b["box"] for b in boxes], dtype=np.float32).reshape(-1, 4)
            return {"boxes": xyxy, "box_labels": self._class_index(codes, where)}
        ld = read_layer_arrays(self.dataset, w, lab.name)
        values, valid = ld.data[0, 0], ld.valid[0]  # [H, W]
        if task in ("segmentation", "multilabel"):
            codes = np.where(valid, values, CLASS_NODATA).astype(np.int64)
            return {"pixels": self._class_index(codes, where)}
        return {"pixels": np.where(valid, values, np.nan).astype(np.float32)}

    # --- one sample ------------------------------------------------------------------------
    def __getitem__(self, key) -> dict[str, Any]:
        cfg, size = self.config, self.config.chip_size
        if self.mode == "train":
            index, epoch = key if isinstance(key, tuple) else (int(key), self.epoch)
            wi = index % len(self.windows)
            w = self.windows[wi]
            rng = np.random.default_rng((cfg.seed, epoch, index, CROP_STREAM))
            r0 = int(rng.integers(0, max(w.height - size, 0) + 1))
            c0 = int(rng.integers(0, max(w.width - size, 0) + 1))
            aug = np.random.default_rng((cfg.seed, epoch, index, AUG_STREAM))
            flip, k = (bool(aug.integers(2)), int(aug.integers(4))) if cfg.augment else (False, 0)
            owned_r, owned_c = 0, 0
        else:
            # pixels already covered by the previous tile are not scored again
            wi, r0, c0, owned_r, owned_c = self.chips[int(key)]
            w = self.windows[wi]
            flip, k = False, 0
        entry = self._load(wi)
        out: dict[str, Any] = {
            "window": w.name,
            "chip": torch.tensor([r0, c0, r0 + size, c0 + size], dtype=torch.long),
            "modalities": {},
        }
        for m, d in entry["modalities"].items():
            data = _augment_array(_crop(d["data"], r0, c0, size, 0.0), flip, k)
            valid = _augment_array(_crop(d["valid"], r0, c0, size, False), flip, k)
            out["modalities"][m] = {
                "data": torch.from_numpy(data),  # [T, C, h, w]
                "valid": torch.from_numpy(valid),  # [T, h, w]
                "timestamps": torch.from_numpy(d["timestamps"]),  # [T, 3]
                "bands": d["bands"],
            }
        if self.mode != "predict" and cfg.label is not None:
            out.update(self._target(w, entry, r0, c0, flip, k, owned_r, owned_c))
        return out

    def _target(self, w, entry, r0, c0, flip, k, owned_r, owned_c) -> dict[str, Any]:
        cfg, task, size = self.config, self.config.task, self.config.chip_size
        where = f"window {w.name} property {cfg.label.name!r}"
        if task == "detection":
            boxes, labels = entry["boxes"], entry["box_labels"]
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2 - np.array([c0, r0], dtype=np.float32)
            # centre inside the chip, and not in the part the previous tile already scored
            keep = (centre[:, 0] >= owned_c) & (centre[:, 1] >= owned_r)
            keep &= (centre[:, 0] < size) & (centre[:, 1] < size)
            b = boxes[keep] - np.array([c0, r0, c0, r0], dtype=np.float32)
            b = np.clip(b, 0, size).astype(np.float32)
            b = _augment_boxes(b, size, flip, k)
            return {"boxes": torch.from_numpy(b), "box_labels": torch.from_numpy(labels[keep])}
        if "pixels" in entry:
            pix = entry["pixels"]
            fill = -1 if task in ("segmentation", "multilabel") else np.nan
            chip = _crop(pix, r0, c0, size, fill)
            if owned_r or owned_c:
                chip = chip.copy()
                chip[:owned_r] = fill
                chip[:, :owned_c] = fill
            chip = _augment_array(chip, flip, k)
            if task == "segmentation":
                t = torch.from_numpy(chip)
                return {"target": t, "target_valid": t >= 0}
            if task == "multilabel":
                hot = np.zeros(len(self.values), dtype=np.float32)
                hot[np.unique(chip[chip >= 0])] = 1.0
                return {"target": torch.from_numpy(hot), "target_valid": torch.tensor(True)}
            ok = np.isfinite(chip)
            if task == "pixel_regression":
                return {
                    "target": torch.from_numpy(np.where(ok, chip, 0.0).astype(np.float32)),
                    "target_valid": torch.from_numpy(ok),
                }
            mean = float(chip[ok].mean()) if ok.any() else 0.0  # regression from a layer
            return {"target": torch.tensor(mean), "target_valid": torch.tensor(bool(ok.any()))}
        value = entry.get("value")
        if value is None:
            empty = torch.zeros(len(self.values)) if task == "multilabel" else torch.tensor(0)
            return {
                "target": empty.float() if task != "classification" else empty,
                "target_valid": torch.tensor(False),
            }
        if task == "classification":
            idx = self._class_index(np.array([int(value)]), where)[0]
            return {"target": torch.tensor(int(idx)), "target_valid": torch.tensor(True)}
        if task == "multilabel":
            codes = value if isinstance(value, list | tuple) else str(value).split(",")
            codes = np.array([int(c) for c in codes if str(c).strip() != ""], dtype=np.int64)
            hot = np.zeros(len(self.values), dtype=np.float32)
            hot[self._class_index(codes, where)] = 1.0
            return {"target": torch.from_numpy(hot), "target_valid": torch.tensor(True)}
        return {"target": torch.tensor(float(value)), "target_valid": torch.tensor(True)}


def collate_finetune(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a Contract A batch (detection keeps per-sample box lists)."""
    # modalities first: the training core infers the batch size from the first tensor it finds
    out: dict[str, Any] = {"modalities": {}}
    out["window"] = [it["window"] for it in items]
    out["chip"] = torch.stack([it["chip"] for it in items])
    for m, first in items[0]["modalities"].items():
        out["modalities"][m] = {
            k: torch.stack([it["modalities"][m][k] for it in items])
            for k in ("data", "valid", "timestamps")
        }
        out["modalities"][m]["bands"] = list(first["bands"])
    if "boxes" in items[0]:
        out["boxes"] = [it["boxes"] for it in items]
        out["box_labels"] = [it["box_labels"] for it in items]
    elif "target" in items[0]:
        out["target"] = torch.stack([it["target"] for it in items])
        out["target_valid"] = torch.stack([it["target_valid"] for it in items])
    return out


def inputs_from_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch's modalities as encoder inputs ``{modality: ModalityInput}``."""
    from earthplat.nn.encoder import ModalityInput

    return {
        get_modality(name).name: ModalityInput(
            m["data"],
            m["valid"].bool(),
            m["timestamps"],
            tuple(m["bands"]) if m.get("bands") else None,
        )
        for name, m in batch["modalities"].items()
    }


# --- splits and loaders ---------------------------------------------------------------------
def usable_windows(dataset: Dataset, config: FinetuneDataConfig) -> list[Window]:
    """The windows of ``config.group`` that hold every input layer and the label layer/boxes."""
    windows = dataset.windows(group=config.group)
    needed = list(config.inputs)
    lab = config.label
    if lab is not None and lab.kind == "layer":
        needed.append(lab.name)
    out = [w for w in windows if all(dataset.layer_done(w, layer) for layer in needed)]
    if lab is not None and lab.kind == "geojson":
        out = [w for w in out if dataset.fs.exists(dataset.layer_path(w, lab.name, ".geojson"))]
    if not out:
        raise DataError(
            f"no window of {dataset.root} (group {config.group or 'any'}) holds all of the "
            f"layers {needed}; ingest them or fix inputs/label"
        )
    return out


def split_dataset(dataset: Dataset, config: FinetuneDataConfig) -> dict[str, list[Window]]:
    """``{split: windows}`` of the usable windows, by ``config.split``."""
    from earthplat.data.splits import property_split, spatial_split

    windows = usable_windows(dataset, config)
    sp = config.split
    if sp.kind == "property":
        return property_split(windows, property=sp.property)
    return spatial_split(
        windows,
        cell_size_m=sp.cell_size_m,
        fractions=sp.fractions,
        seed=sp.seed,
        buffer_m=sp.buffer_m,
    )


def _train_sampler_class():
    if "TrainChipSampler" in globals():
        return globals()["TrainChipSampler"]
    from earthplat.traincore.data import ResumableSampler

    class TrainChipSampler(ResumableSampler):
        """``ResumableSampler`` order yielding ``(index, epoch)``: the dataset draws each chip
        from (seed, epoch, index), so a resumed epoch reproduces the same chips."""

        def __iter__(self):
            order = self.indices()
            skip, self._skip_samples = self._skip_samples, 0
            epoch = self.epoch
            return iter([(j, epoch) for j in order[skip:]])

    TrainChipSampler.__module__ = __name__
    TrainChipSampler.__qualname__ = "TrainChipSampler"
    globals()["TrainChipSampler"] = TrainChipSampler
    return TrainChipSampler


def _datamodule_class():
    import lightning as L
    from torch.utils.data import DataLoader

    from earthplat.traincore.data import EvalShardSampler, ResumableDataLoader

    class FinetuneDataModule(L.LightningDataModule):
        """Train/val/test/predict loaders of Contract A batches (see the module docstring).

        The train loader is a ``ResumableDataLoader`` (exact resume from checkpoints); val and
        test tile their windows deterministically; predict tiles every usable window."""

        def __init__(self, config: FinetuneDataConfig) -> None:
            super().__init__()
            self.config = config
            self.dataset = Dataset(config.path)
            self.splits: dict[str, list[Window]] | None = None

        def setup(self, stage: str | None = None) -> None:
            if self.splits is None:
                self.splits = split_dataset(self.dataset, self.config)

        def windows(self, split: str) -> list[Window]:
            """The windows of ``split``; a clear error if it has none."""
            self.setup()
            members = self.splits.get(split, [])
            if not members:
                counts = {k: len(v) for k, v in self.splits.items()}
                sp = self.config.split
                how = (
                    f"lower split.cell_size_m (now {sp.cell_size_m} m) so there are more cells, "
                    f"or raise the {split!r} share of split.fractions"
                    if sp.kind == "spatial"
                    else f"set the window property {sp.property!r} to {split!r} on some windows"
                )
                raise DataError(
                    f"the {split!r} split of {self.config.path} has no windows (windows per "
                    f"split: {counts}); {how}"
                )
            return members

        @property
        def input_bands(self) -> dict[str, list[str]]:
            """Modality -> band names of the batches (for ``TaskSpec.inputs``)."""
            self.setup()
            w = next(ws[0] for ws in self.splits.values() if ws)
            out = {}
            for layer, modality in self.config.inputs.items():
                spec = get_modality(modality)
                chosen = (self.config.bands or {}).get(layer)
                bands = self.dataset.layer_metadata(w, layer)["bands"]
                out[spec.name] = list(spec.canonical(chosen)) if chosen else list(bands)
            return out

        def _kwargs(self) -> dict[str, Any]:
            workers = self.config.num_workers
            return dict(
                num_workers=workers,
                collate_fn=collate_finetune,
                persistent_workers=workers > 0,
                pin_memory=self.config.pin_memory,
            )

        def train_dataloader(self):
            cfg = self.config
            ds = FinetuneDataset(self.dataset, self.windows("train"), cfg, "train")
            if len(ds) < cfg.batch_size:
                raise DataError(
                    f"the train split has {len(ds)} chips per epoch, fewer than batch_size="
                    f"{cfg.batch_size}; lower batch_size or raise train_chips_per_window"
                )
            sampler = _train_sampler_class()(ds, seed=cfg.seed, shuffle=True, drop_last=True)
            return ResumableDataLoader(
                ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=True, **self._kwargs()
            )

        def _eval_loader(self, split: str):
            ds = FinetuneDataset(self.dataset, self.windows(split), self.config, "eval")
            return DataLoader(
                ds,
                batch_size=self.config.batch_size,
                sampler=EvalShardSampler(ds),  # each data-parallel rank scores its share
                **self._kwargs(),
            )

        def val_dataloader(self):
            return self._eval_loader("val")

        def test_dataloader(self):
            return self._eval_loader("test")

        def predict_dataloader(self):
            self.setup()
            windows = [w for ws in self.splits.values() for w in ws]
            ds = FinetuneDataset(self.dataset, windows, self.config, "predict")
            return DataLoader(ds, batch_size=self.config.batch_size, **self._kwargs())

    FinetuneDataModule.__module__ = __name__
    FinetuneDataModule.__qualname__ = "FinetuneDataModule"
    return FinetuneDataModule


def __getattr__(name: str):
    # lightning is imported only when the data module is asked for
    if name == "FinetuneDataModule":
        cls = globals()["FinetuneDataModule"] = _datamodule_class()
        return cls
    if name == "TrainChipSampler":
        return _train_sampler_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
