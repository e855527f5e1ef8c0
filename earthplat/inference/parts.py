"""Finished chunks on disk next to the output (``OUT.parts/``): what makes a run resumable.

Each finished chunk is one file, written to a temporary name and renamed, so a chunk is either
complete or absent; a rerun skips the chunks already there. ``manifest.json`` records what the
parts were computed with (model, input, tiling); parts of a different run are discarded.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from earthplat.inference.engine import ChunkResult
from earthplat.inference.tiling import Chunk

MANIFEST = "manifest.json"


class PartStore:
    def __init__(self, out: str | Path) -> None:
        self.dir = Path(f"{out}.parts")

    def prepare(self, manifest: dict[str, Any]) -> None:
        """Create the directory; discard parts of a run with a different manifest."""
        path = self.dir / MANIFEST
        text = json.dumps(manifest, sort_keys=True, default=str)
        if path.exists() and path.read_text() != text:
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # ranks may race here
            tmp.write_text(text)
            os.replace(tmp, path)

    def _path(self, index: int) -> Path:
        return self.dir / f"chunk_{index:06d}.npz"

    def done(self) -> set[int]:
        return {int(p.stem.split("_")[1]) for p in self.dir.glob("chunk_*.npz")}

    def save(self, result: ChunkResult) -> None:
        tmp = self.dir / f".tmp_{result.chunk.index}_{os.getpid()}.npz"
        values = result.values if result.values is not None else np.zeros((0, 0, 0), np.float32)
        dets = json.dumps(result.detections)
        np.savez(tmp, values=values, detections=np.array(dets), valid=result.valid_pixels)
        os.replace(tmp, self._path(result.chunk.index))

    def load(self, chunk: Chunk) -> ChunkResult:
        with np.load(self._path(chunk.index)) as z:
            values = z["values"] if z["values"].size else None
            return ChunkResult(chunk, values, json.loads(str(z["detections"])), int(z["valid"]))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
