"""Tiles, chunks and blending weights for sliding-window prediction over any area.

Tiles lie on one *global* grid over the area (starts ``0, stride, 2 stride, ...``), and each
chunk predicts every global tile that touches its core, so a pixel's blended value does not
depend on how the area is cut into chunks: chunk borders leave no seams, and chunks can run in
any order, on any rank, or be skipped on resume. Blending weights ramp linearly over the
overlap at each tile edge, so a translation-equivariant model gives the same result with and
without overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from earthplat.inference.errors import InferenceError


@dataclass(frozen=True)
class Chunk:
    """One unit of work: a rectangle of the area (input pixels, relative to the area)."""

    index: int
    row: int
    col: int
    height: int
    width: int


@dataclass(frozen=True)
class TilePlan:
    """How an area of ``height`` x ``width`` input pixels is tiled and chunked."""

    height: int
    width: int
    chip: int
    """Tile size (input px), the model's chip size."""
    overlap: int
    """Pixels shared by neighbouring tiles."""
    chunk: int
    """Chunk side (input px): what one unit of work covers, written as one part."""
    scale: int = 1
    """Input pixels per output pixel (1 for per-pixel tasks, the patch size for embeddings,
    the chip for per-tile tasks)."""

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < self.chip:
            raise InferenceError(
                f"overlap={self.overlap} must lie in [0, chip size {self.chip}); pass a smaller "
                "overlap"
            )
        for name, value in (("chip", self.chip), ("overlap", self.overlap)):
            if value % self.scale:
                raise InferenceError(
                    f"{name}={value} must be a multiple of the output scale {self.scale} "
                    "(the model's patch size or chip); round it to a multiple"
                )
        if self.height < 1 or self.width < 1:
            raise InferenceError("the area to predict is empty (0 pixels)")

    @property
    def stride(self) -> int:
        return self.chip - self.overlap

    @property
    def chunk_size(self) -> int:
        """The chunk side rounded up to a multiple of the output scale."""
        return max(self.scale, math.ceil(self.chunk / self.scale) * self.scale)

    @property
    def out_shape(self) -> tuple[int, int]:
        return math.ceil(self.height / self.scale), math.ceil(self.width / self.scale)

    def starts(self, length: int) -> list[int]:
        n = math.ceil(max(length - self.chip, 0) / self.stride) + 1
        return [k * self.stride for k in range(n)]

    def chunks(self) -> list[Chunk]:
        size, out = self.chunk_size, []
        for r in range(0, self.height, size):
            for c in range(0, self.width, size):
                h, w = min(size, self.height - r), min(size, self.width - c)
                out.append(Chunk(len(out), r, c, h, w))
        return out

    def tiles(self, chunk: Chunk) -> list[tuple[int, int]]:
        """(row, col) starts of the global tiles touching the chunk."""

        def touching(starts: list[int], a: int, b: int) -> list[int]:
            return [s for s in starts if s < b and s + self.chip > a]

        rows = touching(self.starts(self.height), chunk.row, chunk.row + chunk.height)
        cols = touching(self.starts(self.width), chunk.col, chunk.col + chunk.width)
        return [(r, c) for r in rows for c in cols]

    def owned(self, start: int, length: int) -> tuple[float, float]:
        """The span of one axis a tile owns (for de-duplicating detections in the overlap)."""
        starts = self.starts(length)
        k = starts.index(start)
        lo = 0.0 if k == 0 else start + self.overlap / 2
        hi = math.inf if k == len(starts) - 1 else start + self.stride + self.overlap / 2
        return lo, hi

    def weights(self) -> np.ndarray:
        """[chip/scale, chip/scale] blending weights, > 0 everywhere, 1 in the tile centre."""
        n, o = self.chip // self.scale, self.overlap // self.scale
        i = np.arange(n)
        ramp = np.minimum(1.0, (np.minimum(i, n - 1 - i) + 1) / (o + 1)) if o else np.ones(n)
        return np.outer(ramp, ramp).astype(np.float32)


class Blender:
    """Accumulates weighted tile outputs over a chunk's region; ``result`` crops the core."""

    def __init__(self, plan: TilePlan, chunk: Chunk, channels: int) -> None:
        tiles = plan.tiles(chunk)
        self.plan, self.chunk = plan, chunk
        self.row0 = min(r for r, _ in tiles)
        self.col0 = min(c for _, c in tiles)
        h = (max(r for r, _ in tiles) + plan.chip - self.row0) // plan.scale
        w = (max(c for _, c in tiles) + plan.chip - self.col0) // plan.scale
        self.sum = np.zeros((channels, h, w), np.float64)
        self.weight = np.zeros((h, w), np.float64)
        self.w = plan.weights()

    def add(self, row: int, col: int, values: np.ndarray) -> None:
        """Add one tile's output ([K, chip/scale, chip/scale]) at tile start (row, col)."""
        s, n = self.plan.scale, self.plan.chip // self.plan.scale
        r, c = (row - self.row0) // s, (col - self.col0) // s
        self.sum[:, r : r + n, c : c + n] += values * self.w
        self.weight[r : r + n, c : c + n] += self.w

    def result(self) -> np.ndarray:
        """[K, h, w] blended output over the chunk core (output pixels)."""
        s, ch = self.plan.scale, self.chunk
        r = (ch.row - self.row0) // s
        c = (ch.col - self.col0) // s
        h, w = math.ceil(ch.height / s), math.ceil(ch.width / s)
        core = self.sum[:, r : r + h, c : c + w] / self.weight[r : r + h, c : c + w]
        return core.astype(np.float32)
