"""The chunk engine: read a chunk's tiles, run the model in batches, blend, post-process.

What a task's raw output becomes is a fact of the task registry (``earthplat.tasks``:
``output``, ``output_scale``, ``activation``): per-pixel class maps, per-pixel values, per-patch
embeddings, per-tile classes/values (a coarse map with one pixel per tile), or detections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from earthplat.inference.errors import InferenceError
from earthplat.inference.reader import RasterSource
from earthplat.inference.tiling import Blender, Chunk, TilePlan
from earthplat.tasks import TASKS, TaskKind


def task_output(task: str) -> TaskKind:
    """The task's facts: what its output becomes (``output``: ``classes``, ``values`` or
    ``detections``), at which scale (``output_scale``) and after which ``activation``."""
    if task not in TASKS:
        raise InferenceError(
            f"no inference output is defined for task {task!r}; known: {', '.join(TASKS)}"
        )
    return TASKS[task]


@dataclass
class RasterFormat:
    """Band count, dtype, nodata and band names of the output raster."""

    count: int
    dtype: str
    nodata: float
    descriptions: list[str]

    @classmethod
    def for_spec(cls, spec: Any, channels: int) -> RasterFormat:
        out = task_output(spec.task)
        if out.output == "classes":
            values = [int(c["value"]) for c in spec.classes] or list(range(channels))
            if min(values) >= 0 and max(values) < 255:
                return cls(1, "uint8", 255, ["class"])
            return cls(1, "int16" if max(map(abs, values)) < 2**15 else "int32", -1, ["class"])
        if spec.task == "embedding":
            names = [f"embedding_{i:03d}" for i in range(channels)]
        elif spec.classes and len(spec.classes) == channels:
            names = [str(c["label"]) for c in spec.classes]
        else:
            names = [f"{spec.task}_{i}" for i in range(channels)] if channels > 1 else [spec.task]
        return cls(channels, "float32", float("nan"), names)


@dataclass
class ChunkResult:
    """A finished chunk: raster values on the output grid, or detections."""

    chunk: Chunk
    values: np.ndarray | None = None
    """[bands, h, w] in the output dtype, nodata where no input pixel was valid."""
    detections: list[dict] = field(default_factory=list)
    """Per detection: x0, y0, x1, y1 in area pixels, label (class index), score."""
    valid_pixels: int = 0


class ChunkEngine:
    """Predicts chunks of an area (``row0``/``col0``: the area's offset in the sources)."""

    def __init__(
        self,
        model: Any,
        sources: dict[str, RasterSource],
        plan: TilePlan,
        *,
        area_offset: tuple[int, int] = (0, 0),
        batch_size: int = 8,
        threshold: float = 0.3,
    ) -> None:
        self.model, self.spec, self.sources, self.plan = model, model.spec, sources, plan
        self.row0, self.col0 = area_offset
        self.batch_size, self.threshold = batch_size, threshold
        self.output = task_output(self.spec.task)
        self.channels = len(self.spec.classes) if self.output.output == "classes" else None
        self.channels = self.channels or self.spec.num_outputs
        self.format = RasterFormat.for_spec(self.spec, self.channels)
        self._handles: dict[str, Any] = {}

    def _open(self) -> dict[str, Any]:
        if not self._handles:
            self._handles = {k: s.handle() for k, s in self.sources.items()}
        return self._handles

    def close(self) -> None:
        for h in self._handles.values():
            h.close()
        self._handles = {}

    def _read(self, chunk: Chunk, tiles: list[tuple[int, int]]) -> tuple:
        chip = self.plan.chip
        r0, c0 = min(r for r, _ in tiles), min(c for _, c in tiles)
        h = max(r for r, _ in tiles) + chip - r0
        w = max(c for _, c in tiles) + chip - c0
        region = {}
        for name, src in self.sources.items():
            region[name] = src.read(self._open()[name], self.row0 + r0, self.col0 + c0, h, w)
        return region, r0, c0

    def _forward(self, region: dict, tiles: list[tuple[int, int]], r0: int, c0: int) -> Any:
        """The model on ``tiles`` of a read region: one ``Sample`` per tile, collated."""
        import torch

        from earthplat.batch import ModalityData, Sample, collate, to_model_inputs

        chip, samples = self.plan.chip, []
        for r, c in tiles:
            rows, cols = slice(r - r0, r - r0 + chip), slice(c - c0, c - c0 + chip)
            sample = Sample(f"tile_{r}_{c}")
            for name, (data, valid) in region.items():
                src = self.sources[name]
                sample.modalities[src.modality.name] = ModalityData(
                    data[:, :, rows, cols], valid[:, rows, cols], src.bands, src.timestamps()
                )
            samples.append(sample)
        with torch.inference_mode():
            return self.model(to_model_inputs(collate(samples)))

    def process(self, chunk: Chunk) -> ChunkResult:
        """Predict one chunk (deterministic: the same chunk gives the same result anywhere)."""
        plan, tiles = self.plan, self.plan.tiles(chunk)
        region, r0, c0 = self._read(chunk, tiles)
        any_valid = np.zeros(next(iter(region.values()))[1].shape[1:], bool)
        for _, valid in region.values():
            any_valid |= valid.any(0)
        live = [
            (r, c)
            for r, c in tiles
            if any_valid[r - r0 : r - r0 + plan.chip, c - c0 : c - c0 + plan.chip].any()
        ]
        ch = slice(chunk.row - r0, chunk.row - r0 + chunk.height)
        cw = slice(chunk.col - c0, chunk.col - c0 + chunk.width)
        result = ChunkResult(chunk, valid_pixels=int(any_valid[ch, cw].sum()))
        if self.output.output == "detections":
            self._detect(result, region, live, r0, c0, any_valid)
            return result
        blender = None
        for i in range(0, len(live), self.batch_size):
            batch = live[i : i + self.batch_size]
            out = self._postforward(self._forward(region, batch, r0, c0))
            blender = blender or Blender(plan, chunk, out.shape[1])
            for (r, c), values in zip(batch, out):
                blender.add(r, c, values)
        if blender is None:  # nothing valid in this chunk: all nodata
            fmt, (h, w) = self.format, _out_hw(chunk, plan.scale)
            result.values = np.full((fmt.count, h, w), fmt.nodata, fmt.dtype)
            return result
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = blender.result()
        result.values = self._finish(blended, _block_any(any_valid[ch, cw], plan.scale))
        return result

    def _postforward(self, out: Any) -> np.ndarray:
        """[B, K, h, w] float numpy at output scale, after the task's activation."""
        import torch

        if out.ndim == 2:  # per tile: one output pixel per tile
            out = out[:, :, None, None]
        if self.output.activation == "softmax":
            out = torch.softmax(out.float(), dim=1)
        elif self.output.activation == "sigmoid":
            out = torch.sigmoid(out.float())
        n = self.plan.chip // self.plan.scale
        if tuple(out.shape[1:]) != (self.channels, n, n):
            raise InferenceError(
                f"the model's {self.spec.task} output is {tuple(out.shape[1:])} per tile but "
                f"{(self.channels, n, n)} was expected (outputs, chip {self.plan.chip} / scale "
                f"{self.plan.scale}); check the spec's num_outputs, patch_size and chip_size"
            )
        return out.float().numpy()

    def _finish(self, blended: np.ndarray, valid: np.ndarray) -> np.ndarray:
        fmt = self.format
        if self.output.output == "classes":
            index = blended.argmax(0)
            values = np.array([int(c["value"]) for c in self.spec.classes] or range(len(blended)))
            out = values[index].astype(fmt.dtype)[None]
        else:
            out = blended.astype(fmt.dtype)
        return np.where(valid[None], out, np.asarray(fmt.nodata, dtype=fmt.dtype))

    def _detect(self, result, region, live, r0, c0, any_valid) -> None:
        plan, ch = self.plan, result.chunk
        for i in range(0, len(live), self.batch_size):
            batch = live[i : i + self.batch_size]
            out = self._forward(region, batch, r0, c0)
            found = self.model.decode_detections(
                out, threshold=self.threshold, image_size=(plan.chip, plan.chip)
            )
            for (r, c), dets in zip(batch, found):
                rlo, rhi = plan.owned(r, plan.height)
                clo, chi = plan.owned(c, plan.width)
                for d in dets:
                    y = r + (d["y0"] + d["y1"]) / 2
                    x = c + (d["x0"] + d["x1"]) / 2
                    inside = ch.row <= y < ch.row + ch.height and ch.col <= x < ch.col + ch.width
                    if inside and rlo <= y < rhi and clo <= x < chi:
                        result.detections.append(
                            {
                                "x0": c + float(d["x0"]),
                                "y0": r + float(d["y0"]),
                                "x1": c + float(d["x1"]),
                                "y1": r + float(d["y1"]),
                                "label": int(d["label"]),
                                "score": float(d["score"]),
                            }
                        )


def _out_hw(chunk: Chunk, scale: int) -> tuple[int, int]:
    return -(-chunk.height // scale), -(-chunk.width // scale)


def _block_any(valid: np.ndarray, scale: int) -> np.ndarray:
    """[h, w] -> [ceil(h/s), ceil(w/s)]: a block is valid where any of its pixels is."""
    if scale == 1:
        return valid
    h, w = valid.shape
    ph, pw = -(-h // scale) * scale, -(-w // scale) * scale
    padded = np.zeros((ph, pw), bool)
    padded[:h, :w] = valid
    return padded.reshape(ph // scale, scale, pw // scale, scale).any((1, 3))
