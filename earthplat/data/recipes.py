"""Ready-made ingestions of the small real datasets the project tests, benchmarks and
pretrains on (read where they live; nothing is copied)."""

from __future__ import annotations

import csv
from pathlib import Path

from earthplat.data.dataset import Dataset
from earthplat.data.ingest import IngestConfig, IngestReport, ingest
from earthplat.data.materialize import LayerSpec
from earthplat.data.sources import LocalSource
from earthplat.data.window import Window, windows_from_points

EUROSAT_CLASSES = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)


def eurosat_windows(
    root: str | Path, size: int = 64, limit_per_class: int | None = None, group: str = "eurosat"
) -> tuple[list[Window], list[str]]:
    """One window per EuroSAT-MS patch of ``root`` (its ``labels.csv``), centred on the patch
    in its own UTM zone; ``class_id``/``class_name`` become window properties. Returns the
    windows and the patch files."""
    from rasterio.warp import transform

    root = Path(root)
    rows = list(csv.DictReader((root / "labels.csv").open()))
    taken: dict[str, int] = {}
    points, files = [], []
    for r in rows:
        n = taken.get(r["class_id"], 0)
        if limit_per_class is not None and n >= limit_per_class:
            continue
        taken[r["class_id"]] = n + 1
        cx = (float(r["left"]) + float(r["right"])) / 2
        cy = (float(r["bottom"]) + float(r["top"])) / 2
        lon, lat = transform(f"EPSG:{r['epsg']}", "EPSG:4326", [cx], [cy])
        points.append(
            {
                "lon": lon[0],
                "lat": lat[0],
                "start": "2017-01-01",
                "end": "2019-01-01",
                "name": Path(r["path"]).stem,
                "class_id": int(r["class_id"]),
                "class_name": r["class_name"],
                "epsg": int(r["epsg"]),
            }
        )
        files.append(str(root / r["path"]))
    return windows_from_points(points, size=size, group=group), files


def ingest_eurosat(
    root: str | Path,
    dataset: str | Path,
    *,
    size: int = 64,
    limit_per_class: int | None = None,
    workers: int = 2,
    progress: bool = False,
) -> tuple[Dataset, list[Window], IngestReport]:
    """Windows + an ``s2`` layer (Sentinel-2 L1C, one period) for each EuroSAT patch.
    EuroSAT stores no acquisition date; the layer is dated mid-2018 by convention."""
    windows, files = eurosat_windows(root, size, limit_per_class)
    ds = Dataset(dataset)
    ds.write_windows(windows)
    source = LocalSource(files, "sentinel2_l1c", datetime="2018-06-01")
    report = ingest(
        ds,
        windows,
        LayerSpec("s2", "sentinel2_l1c", period="730d"),
        source,
        IngestConfig(workers=workers, progress=progress),
    )
    return ds, windows, report
