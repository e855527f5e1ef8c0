"""Targets of fine-tuning chips, one builder per ``TaskKind.target`` of the task registry.

A builder reads a window's label once (``load``: a window property, a label layer, or the boxes
of a ``LAYER.geojson``) and cuts a chip's target from it (``chip``) with the chip's crop, flip
and rotation. Pixels a previous eval tile already scored (``owned_r``/``owned_c``) are
unlabelled in the target, so each labelled pixel counts once. What each task's target is:

- ``class``: [] long class index (a window property);
- ``multilabel``: [K] float 0/1 (a property listing class values, or the classes a label
  layer holds inside the chip);
- ``class_map``: [H, W] long class index, -1 unlabelled (a class label layer);
- ``value_map``: [H, W] float and a validity mask (a value label layer);
- ``value``: [] float (a window property, or the mean of a value layer inside the chip);
- ``boxes``: [n, 4] float boxes in chip pixels and [n] long class indices (``LAYER.geojson``);
- ``none``: no target (embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from earthplat.data.dataset import Dataset
from earthplat.data.finetune.augment import augment_array, augment_boxes, crop
from earthplat.data.labels import CLASS_NODATA, check_class_values, read_boxes
from earthplat.data.layer import read_layer_arrays
from earthplat.data.window import Window
from earthplat.errors import DataError


@dataclass(frozen=True)
class ChipView:
    """Where a chip lies in its window and how it is augmented."""

    r0: int
    c0: int
    size: int
    flip: bool = False
    k: int = 0
    """Counter-clockwise quarter turns."""
    owned_r: int = 0
    """Leading rows already scored by the previous eval tile."""
    owned_c: int = 0
    """Leading columns already scored by the previous eval tile."""


class TargetContext:
    """What every builder needs: the dataset, the label source and the class schema."""

    def __init__(self, dataset: Dataset, label: Any, classes: list[dict]) -> None:
        self.dataset, self.label = dataset, label
        self.classes = classes
        self.values = np.array([c["value"] for c in classes], dtype=np.int64)

    def class_index(self, codes: np.ndarray, where: str) -> np.ndarray:
        """Class codes -> class indices (-1 for nodata); unknown codes raise ``DataError``."""
        check_class_values(codes, self.classes, where)
        order = np.argsort(self.values)
        pos = np.clip(np.searchsorted(self.values[order], codes), 0, len(order) - 1)
        return np.where(codes == CLASS_NODATA, -1, order[pos]).astype(np.int64)

    def where(self, window: Window) -> str:
        return f"window {window.name} label {self.label.kind} {self.label.name!r}"

    def layer(self, window: Window):
        ld = read_layer_arrays(self.dataset, window, self.label.name)
        return ld.data[0, 0], ld.valid[0]  # [H, W]

    def pixels(self, entry: np.ndarray, view: ChipView, fill) -> np.ndarray:
        """The chip of a per-pixel label, unlabelled where a previous tile scored, augmented."""
        chip = crop(entry, view.r0, view.c0, view.size, fill)
        if view.owned_r or view.owned_c:
            chip = chip.copy()
            chip[: view.owned_r] = fill
            chip[:, : view.owned_c] = fill
        return augment_array(chip, view.flip, view.k)


def _invalid(shape: tuple = (), dtype=torch.float32) -> dict[str, Any]:
    return {"target": torch.zeros(shape, dtype=dtype), "target_valid": torch.tensor(False)}


class ClassTarget:
    """One class per window, from a window property."""

    def load(self, ctx: TargetContext, window: Window) -> Any:
        value = window.properties.get(ctx.label.name)
        if value is None:
            return None
        return int(ctx.class_index(np.array([int(value)]), ctx.where(window))[0])

    def chip(self, ctx: TargetContext, entry: Any, view: ChipView) -> dict[str, Any]:
        if entry is None:
            return _invalid(dtype=torch.long)
        return {"target": torch.tensor(entry), "target_valid": torch.tensor(True)}


class MultilabelTarget:
    """The classes of a window: listed in a property, or present in a class layer's chip."""

    def load(self, ctx: TargetContext, window: Window) -> Any:
        if ctx.label.kind == "layer":
            values, valid = ctx.layer(window)
            codes = np.where(valid, values, CLASS_NODATA).astype(np.int64)
            return ("pixels", ctx.class_index(codes, ctx.where(window)))
        value = window.properties.get(ctx.label.name)
        if value is None:
            return None
        codes = value if isinstance(value, list | tuple) else str(value).split(",")
        codes = np.array([int(c) for c in codes if str(c).strip() != ""], dtype=np.int64)
        return ("codes", ctx.class_index(codes, ctx.where(window)))

    def chip(self, ctx: TargetContext, entry: Any, view: ChipView) -> dict[str, Any]:
        if entry is None:
            return _invalid((len(ctx.values),))
        hot = np.zeros(len(ctx.values), dtype=np.float32)
        kind, data = entry
        if kind == "pixels":
            chip = ctx.pixels(data, view, -1)
            data = np.unique(chip[chip >= 0])
        hot[data] = 1.0
        return {"target": torch.from_numpy(hot), "target_valid": torch.tensor(True)}


class ClassMapTarget:
    """A class per pixel, from a class label layer."""

    def load(self, ctx: TargetContext, window: Window) -> np.ndarray:
        values, valid = ctx.layer(window)
        codes = np.where(valid, values, CLASS_NODATA).astype(np.int64)
        return ctx.class_index(codes, ctx.where(window))

    def chip(self, ctx: TargetContext, entry: np.ndarray, view: ChipView) -> dict[str, Any]:
        t = torch.from_numpy(ctx.pixels(entry, view, -1))
        return {"target": t, "target_valid": t >= 0}


class ValueMapTarget:
    """A value per pixel, from a value label layer."""

    def load(self, ctx: TargetContext, window: Window) -> np.ndarray:
        values, valid = ctx.layer(window)
        return np.where(valid, values, np.nan).astype(np.float32)

    def chip(self, ctx: TargetContext, entry: np.ndarray, view: ChipView) -> dict[str, Any]:
        chip = ctx.pixels(entry, view, np.nan)
        ok = np.isfinite(chip)
        return {
            "target": torch.from_numpy(np.where(ok, chip, 0.0).astype(np.float32)),
            "target_valid": torch.from_numpy(ok),
        }


class ValueTarget:
    """One value per window: a property, or the mean of a value layer inside the chip."""

    def load(self, ctx: TargetContext, window: Window) -> Any:
        if ctx.label.kind == "layer":
            return ValueMapTarget().load(ctx, window)
        value = window.properties.get(ctx.label.name)
        return None if value is None else float(value)

    def chip(self, ctx: TargetContext, entry: Any, view: ChipView) -> dict[str, Any]:
        if entry is None:
            return _invalid()
        if isinstance(entry, float):
            return {"target": torch.tensor(entry), "target_valid": torch.tensor(True)}
        chip = ctx.pixels(entry, view, np.nan)
        ok = np.isfinite(chip)
        mean = float(chip[ok].mean()) if ok.any() else 0.0
        return {"target": torch.tensor(mean), "target_valid": torch.tensor(bool(ok.any()))}


class BoxesTarget:
    """Objects (boxes, or points as zero-size boxes) with a class, from ``LAYER.geojson``."""

    def load(self, ctx: TargetContext, window: Window) -> tuple[np.ndarray, np.ndarray]:
        boxes = read_boxes(ctx.dataset, window, ctx.label.name)
        codes = np.array([int(b["class"]) for b in boxes], dtype=np.int64)
        xyxy = np.array([b["box"] for b in boxes], dtype=np.float32).reshape(-1, 4)
        return xyxy, ctx.class_index(codes, ctx.where(window))

    def chip(self, ctx: TargetContext, entry: Any, view: ChipView) -> dict[str, Any]:
        boxes, labels = entry
        size = view.size
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 - np.array([view.c0, view.r0], np.float32)
        # centre inside the chip, and not in the part the previous tile already scored
        keep = (centre[:, 0] >= view.owned_c) & (centre[:, 1] >= view.owned_r)
        keep &= (centre[:, 0] < size) & (centre[:, 1] < size)
        shift = np.array([view.c0, view.r0, view.c0, view.r0], dtype=np.float32)
        b = np.clip(boxes[keep] - shift, 0, size).astype(np.float32)
        b = augment_boxes(b, size, view.flip, view.k)
        return {"boxes": torch.from_numpy(b), "box_labels": torch.from_numpy(labels[keep])}


TARGETS: dict[str, Any] = {
    "class": ClassTarget(),
    "multilabel": MultilabelTarget(),
    "class_map": ClassMapTarget(),
    "value_map": ValueMapTarget(),
    "value": ValueTarget(),
    "boxes": BoxesTarget(),
}
"""``TaskKind.target`` -> its builder (``none`` has no builder: no target)."""


def target_builder(name: str) -> Any:
    if name not in TARGETS:
        raise DataError(f"no target builder {name!r}; registered: {', '.join(TARGETS)}")
    return TARGETS[name]
