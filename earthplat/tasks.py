"""The one task registry: every fact about each fine-tuning task, read by every layer.

Data targets, heads, task modules, inference outputs, STAC MLM names, the labelling schemas,
the API's validation, exports and default configs ask this table; nothing else lists task
names. Adding a task (change detection, say) is adding a ``TaskKind`` here plus its target
builder (``earthplat.data.finetune.targets``), its LightningModule (``earthplat.train.tasks``)
and, where the registry-parametrised tests say so, what they ask for.

Importing this module is cheap (no numpy or torch).
"""

from __future__ import annotations

from dataclasses import dataclass

from earthplat.errors import EarthplatError

LABEL_SOURCES = ("property", "layer", "geojson")
"""Where a window's label can come from: a window property, a label layer (class or value
raster), or the ``LAYER.geojson`` boxes/points written beside a label layer."""


@dataclass(frozen=True)
class TaskKind:
    """One fine-tuning task."""

    name: str
    description: str
    label_sources: tuple[str, ...]
    """Which of ``LABEL_SOURCES`` its label may come from; the first is the default."""
    default_label: str
    """Name of the default label: a window property or a label layer."""
    target: str
    """How targets are built from labels (``earthplat.data.finetune.targets``): ``class``,
    ``multilabel``, ``class_map``, ``value_map``, ``value``, ``boxes`` or ``none``."""
    per_window: bool
    """One target per window (evaluated on one centred chip) rather than per pixel/object."""
    class_task: bool
    """Targets are classes: needs a class schema."""
    default_head: str
    """The head a model gets when its config names none."""
    output: str
    """What inference writes: ``classes`` (a class map), ``values`` (float bands) or
    ``detections`` (vector features)."""
    output_scale: str
    """Output pixel size: ``pixel`` (the input grid), ``patch`` (the patch grid) or ``chip``
    (one pixel per tile)."""
    activation: str | None
    """Applied to the raw output before blending tiles: ``softmax``, ``sigmoid`` or none."""
    mlm_tasks: tuple[str, ...]
    """STAC Machine Learning Model ``mlm:tasks`` names."""
    default_config: str | None
    """The shipped fine-tuning config (``earthplat/configs/finetune/NAME.yaml``) the platform
    starts from when a job names none."""

    @property
    def dense(self) -> bool:
        """A per-pixel output (heads upsample to the input grid)."""
        return self.output_scale == "pixel"

    @property
    def pixel_classes(self) -> bool:
        """Labels are a class per pixel: labellers may paint class masks on the window's grid
        (brush, eraser, fill) besides drawing polygons."""
        return self.class_task and self.target == "class_map"


TASKS: dict[str, TaskKind] = {
    t.name: t
    for t in (
        TaskKind(
            name="classification",
            description="one class per window",
            label_sources=("property",),
            default_label="class_id",
            target="class",
            per_window=True,
            class_task=True,
            default_head="linear",
            output="classes",
            output_scale="chip",
            activation="softmax",
            mlm_tasks=("classification", "scene-classification"),
            default_config="eurosat_nano_frozen_linear",
        ),
        TaskKind(
            name="multilabel",
            description="any number of classes per window",
            label_sources=("property", "layer"),
            default_label="class_id",
            target="multilabel",
            per_window=True,
            class_task=True,
            default_head="linear",
            output="values",
            output_scale="chip",
            activation="sigmoid",
            mlm_tasks=("classification", "scene-classification"),
            default_config="slovenia_multilabel_nano_linear",
        ),
        TaskKind(
            name="segmentation",
            description="a class per pixel",
            label_sources=("layer",),
            default_label="label",
            target="class_map",
            per_window=False,
            class_task=True,
            default_head="upernet",
            output="classes",
            output_scale="pixel",
            activation="softmax",
            mlm_tasks=("semantic-segmentation", "segmentation"),
            default_config="sen1floods11_nano_upernet_s2",
        ),
        TaskKind(
            name="pixel_regression",
            description="a value per pixel",
            label_sources=("layer",),
            default_label="label",
            target="value_map",
            per_window=False,
            class_task=False,
            default_head="upernet",
            output="values",
            output_scale="pixel",
            activation=None,
            mlm_tasks=("regression",),
            default_config="slovenia_elevation_nano_upernet",
        ),
        TaskKind(
            name="regression",
            description="one value per window",
            label_sources=("property", "layer"),
            default_label="value",
            target="value",
            per_window=True,
            class_task=False,
            default_head="mlp",
            output="values",
            output_scale="chip",
            activation=None,
            mlm_tasks=("regression",),
            default_config="slovenia_mean_elevation_nano_mlp",
        ),
        TaskKind(
            name="detection",
            description="objects as boxes or points with a class",
            label_sources=("geojson",),
            default_label="label",
            target="boxes",
            per_window=False,
            class_task=True,
            default_head="centernet",
            output="detections",
            output_scale="pixel",
            activation=None,
            mlm_tasks=("object-detection", "detection"),
            default_config="slovenia_parcels_nano_centernet",
        ),
        TaskKind(
            name="embedding",
            description="an embedding per patch (no labels)",
            label_sources=(),
            default_label="",
            target="none",
            per_window=False,
            class_task=False,
            default_head="identity",
            output="values",
            output_scale="patch",
            activation=None,
            mlm_tasks=("similarity-search",),
            default_config=None,
        ),
    )
}
"""Task name -> its facts."""

TASK_NAMES: tuple[str, ...] = tuple(TASKS)
CLASS_TASKS: tuple[str, ...] = tuple(n for n, t in TASKS.items() if t.class_task)
WINDOW_TASKS: tuple[str, ...] = tuple(n for n, t in TASKS.items() if t.per_window)


def get_task(name: str) -> TaskKind:
    """The task called ``name``; an unknown name raises, naming the known ones."""
    if name not in TASKS:
        raise EarthplatError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]
