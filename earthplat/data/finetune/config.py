"""The configs of fine-tuning data: the dataset, the task and its label, the split, the chips."""

from __future__ import annotations

from dataclasses import dataclass, field

from earthplat.errors import DataError
from earthplat.sensors import get_modality
from earthplat.tasks import LABEL_SOURCES, TASKS, TaskKind


@dataclass
class LabelConfig:
    """Where a window's label comes from."""

    kind: str = "property"
    """``property`` (a window property), ``layer`` (a label layer of the window) or ``geojson``
    (the ``LAYER.geojson`` boxes/points written by ``write_label_layer``)."""
    name: str = "class_id"
    """The property or layer name."""

    def __post_init__(self) -> None:
        if self.kind not in LABEL_SOURCES:
            raise DataError(f"label kind must be {', '.join(LABEL_SOURCES)}, got {self.kind!r}")


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
    """A task of the registry (``earthplat.tasks.TASKS``)."""
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
        kind = TASKS[self.task]
        if not kind.label_sources:
            self.label = None
        elif self.label is None or self.label.kind not in kind.label_sources:
            given = None if self.label is None else self.label.kind
            raise DataError(
                f"task {self.task} takes its label from {' or '.join(kind.label_sources)}, "
                f"not {given!r}; set label.kind accordingly"
            )
        self.classes = validate_classes(self.classes)
        if kind.class_task and not self.classes:
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
    def kind(self) -> TaskKind:
        """The task's facts (``earthplat.tasks``)."""
        return TASKS[self.task]

    @property
    def num_outputs(self) -> int:
        """Classes for class tasks, 1 for regression (0 without targets: embedding)."""
        if self.kind.class_task:
            return len(self.classes)
        return 0 if self.kind.target == "none" else 1
