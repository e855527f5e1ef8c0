"""A dataset directory: a GeoParquet window index plus each window's layers.

Layout (a local path or any fsspec URL)::

    ROOT/windows.parquet                    index: one row per window, WGS84 footprint geometry
    ROOT/dataset.json                       dataset facts: the class schema of each label
                                            (window property or label layer), by label name
    ROOT/windows/NAME/LAYER.tif             a layer: COG, bands = periods x bands
    ROOT/windows/NAME/LAYER.mask.tif        validity (1) per period and pixel, uint8 COG
    ROOT/windows/NAME/LAYER.json            metadata: modality, bands, periods, items, missing
    ROOT/windows/NAME/LAYER.prepare.json    the items a prepare step matched (reproducibility)
    ROOT/windows/NAME/LAYER.context.*       a low-resolution overview around the window
                                            (``earthplat.data.context``; not listed as a layer)

The metadata JSON is written last, so its presence marks a finished layer; an interrupted
materialisation leaves no JSON and is redone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fsspec

from earthplat.data.window import Window
from earthplat.errors import DataError

INDEX = "windows.parquet"
INFO = "dataset.json"
CONTEXT_SUFFIX = ".context"
"""``LAYER.context.*``: a layer's context overview (``earthplat.data.context``), not a layer."""


class Dataset:
    def __init__(self, root: str | Path) -> None:
        self.root = str(root).rstrip("/")
        self.fs, self._path = fsspec.core.url_to_fs(self.root)

    # --- paths ---------------------------------------------------------------------------
    def url(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def window_dir(self, window: Window | str) -> str:
        name = window.name if isinstance(window, Window) else window
        return self.url("windows", name)

    def layer_path(self, window: Window | str, layer: str, suffix: str = ".tif") -> str:
        return f"{self.window_dir(window)}/{layer}{suffix}"

    def local_path(self, path: str) -> str:
        """``path`` (a URL of this dataset) as a path on the local file system."""
        return self.fs._strip_protocol(path)

    @property
    def is_local(self) -> bool:
        return self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol

    # --- index -----------------------------------------------------------------------------
    def write_windows(self, windows: list[Window], *, mode: str = "merge") -> None:
        """Write the index. ``merge`` keeps existing windows and replaces same-named ones."""
        import geopandas as gpd

        names = [w.name for w in windows]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})[:5]
            raise DataError(f"duplicate window names: {', '.join(dup)}; names must be unique")
        existing = self.windows() if mode == "merge" and self.exists() else []
        new_names = set(names)
        merged = [w for w in existing if w.name not in new_names] + list(windows)
        frame = gpd.GeoDataFrame(
            [w.to_record() for w in merged],
            geometry=[w.geometry_wgs84() for w in merged],
            crs="EPSG:4326",
        )
        self.fs.makedirs(self._path, exist_ok=True)
        tmp = self.url(INDEX + ".tmp")
        with self.fs.open(tmp, "wb") as f:
            frame.to_parquet(f, index=False)
        self.fs.mv(tmp, self.url(INDEX))

    def exists(self) -> bool:
        return self.fs.exists(self.url(INDEX))

    def windows(self, names: list[str] | None = None, group: str | None = None) -> list[Window]:
        import geopandas as gpd

        if not self.exists():
            raise DataError(
                f"{self.root} has no {INDEX}; create windows first (earthplat windows create)"
            )
        with self.fs.open(self.url(INDEX), "rb") as f:
            frame = gpd.read_parquet(f)
        out = [Window.from_record(r) for r in frame.drop(columns="geometry").to_dict("records")]
        if group is not None:
            out = [w for w in out if w.group == group]
        if names is not None:
            wanted = set(names)
            out = [w for w in out if w.name in wanted]
            missing = wanted - {w.name for w in out}
            if missing:
                raise DataError(f"no windows named {', '.join(sorted(missing))} in {self.root}")
        return out

    def window(self, name: str) -> Window:
        return self.windows([name])[0]

    # --- dataset facts -------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """``dataset.json`` (empty when the dataset has none)."""
        path = self.url(INFO)
        return self.read_json(path) if self.fs.exists(path) else {}

    def update_info(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into ``dataset.json`` (written atomically)."""
        info = self.info() | fields
        self.fs.makedirs(self._path, exist_ok=True)
        self.write_json(self.url(INFO), info)
        return info

    def class_schema(self, label: str) -> list[dict] | None:
        """The class schema ``[{value, label, color}]`` of label ``label``, if recorded."""
        return (self.info().get("classes") or {}).get(label)

    def set_class_schema(self, label: str, classes: list[dict]) -> None:
        from earthplat.data.labels import validate_classes

        known = dict(self.info().get("classes") or {})
        known[label] = validate_classes(classes)
        self.update_info(classes=known)

    # --- layer metadata -----------------------------------------------------------------------
    def write_json(self, path: str, payload: dict[str, Any]) -> None:
        tmp = path + ".tmp"
        with self.fs.open(tmp, "w") as f:
            json.dump(payload, f, indent=1, default=str)
        self.fs.mv(tmp, path)

    def read_json(self, path: str) -> dict[str, Any]:
        with self.fs.open(path, "r") as f:
            return json.load(f)

    def layer_done(self, window: Window | str, layer: str) -> bool:
        return self.fs.exists(self.layer_path(window, layer, ".json"))

    def layer_metadata(self, window: Window | str, layer: str) -> dict[str, Any]:
        path = self.layer_path(window, layer, ".json")
        if not self.fs.exists(path):
            name = window.name if isinstance(window, Window) else window
            raise DataError(
                f"window {name} has no finished layer {layer!r} in {self.root}; "
                "run earthplat ingest for it"
            )
        return self.read_json(path)

    def layers(self, window: Window | str) -> list[str]:
        d = self.window_dir(window)
        if not self.fs.exists(d):
            return []
        names = [Path(p).name for p in self.fs.ls(d, detail=False)]
        aside = (".prepare.json", f"{CONTEXT_SUFFIX}.json")
        return sorted(n[:-5] for n in names if n.endswith(".json") and not n.endswith(aside))

    def put_file(self, local: str | Path, dest: str) -> None:
        """Move a locally written file to ``dest`` (atomic rename when local)."""
        parent = dest.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self.is_local:
            Path(local).replace(self.fs._strip_protocol(dest))
        else:
            self.fs.put_file(str(local), dest)
            Path(local).unlink(missing_ok=True)
