"""Fine-tuning tasks as LightningModules, one per task family, registered by task name."""

from __future__ import annotations

from earthplat.train.tasks.base import TaskModule
from earthplat.train.tasks.classification import ClassificationTask, MultilabelTask
from earthplat.train.tasks.detection import DetectionTask
from earthplat.train.tasks.embedding import EmbeddingTask
from earthplat.train.tasks.regression import PixelRegressionTask, RegressionTask
from earthplat.train.tasks.segmentation import SegmentationTask

TASK_MODULES: dict[str, type[TaskModule]] = {
    cls.task: cls
    for cls in (
        ClassificationTask,
        MultilabelTask,
        SegmentationTask,
        PixelRegressionTask,
        RegressionTask,
        DetectionTask,
        EmbeddingTask,
    )
}
"""Task name (``TaskSpec.task``) -> LightningModule class."""


def get_task_module(name: str) -> type[TaskModule]:
    if name not in TASK_MODULES:
        from earthplat.errors import EarthplatError

        raise EarthplatError(f"unknown task {name!r}; registered: {', '.join(TASK_MODULES)}")
    return TASK_MODULES[name]


__all__ = [
    "TASK_MODULES",
    "ClassificationTask",
    "DetectionTask",
    "EmbeddingTask",
    "MultilabelTask",
    "PixelRegressionTask",
    "RegressionTask",
    "SegmentationTask",
    "TaskModule",
    "get_task_module",
]
