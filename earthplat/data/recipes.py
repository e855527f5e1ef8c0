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


def ingest_slovenia(
    root: str | Path, dataset: str | Path, *, size: int = 32, progress: bool = False
) -> tuple[Dataset, list[Window]]:
    """A grid of ``size`` px windows over the eo-learn Slovenia tile with an ``s2`` layer (S2
    L1C, 30-day periods Jul-Sep 2015, least cloudy with its cloud mask) and a ``lulc`` label
    layer (0 = no data)."""
    import rasterio
    from rasterio.warp import transform_bounds

    from earthplat.data.window import windows_from_aoi

    root = Path(root)
    stack = root / "s2_l1c_5dates_13bands.tif"
    with rasterio.open(stack) as src:
        bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    windows = windows_from_aoi(
        bbox, start="2015-07-01", end="2015-09-29", size=size, group="slovenia", name_prefix="si_"
    )
    ds = Dataset(dataset)
    ds.write_windows(windows)
    cfg = IngestConfig(progress=progress, ignore_errors=True)
    report = ingest(
        ds,
        windows,
        LayerSpec("s2", "sentinel2_l1c", period="30d", method="least_cloudy"),
        LocalSource([str(stack)], "sentinel2_l1c", quality=str(root / "cloudmask_68dates.tif")),
        cfg,
    )
    ingest(
        ds,
        windows,
        LayerSpec("lulc", "label"),
        LocalSource([str(root / "lulc.tif")], "label", nodata=0),
        cfg,
    )
    done = [w for w in windows if w.name not in report.failed]
    return ds, done


def ingest_sen1floods11(
    root: str | Path, dataset: str | Path, *, size: int = 64, progress: bool = False
) -> tuple[Dataset, list[Window]]:
    """A grid of ``size`` px UTM windows over the Sen1Floods11 chip with ``s2`` (L1C), ``s1``
    (VV/VH dB) and ``label`` (water = 1, -1 = unlabelled) layers."""
    import rasterio
    from rasterio.warp import transform_bounds

    from earthplat.data.window import windows_from_aoi

    root = Path(root)
    s2 = root / "Spain_7370579_S2Hand.tif"
    with rasterio.open(s2) as src:
        bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    windows = windows_from_aoi(
        bbox,
        start="2019-09-10",
        end="2019-09-25",
        size=size,
        group="sen1floods11",
        name_prefix="sp_",
    )
    ds = Dataset(dataset)
    ds.write_windows(windows)
    cfg = IngestConfig(progress=progress, ignore_errors=True)
    failed: set[str] = set()
    for layer, source in (
        (
            LayerSpec("s2", "sentinel2_l1c", period="15d"),
            LocalSource([str(s2)], "sentinel2_l1c", datetime="2019-09-18"),
        ),
        (
            LayerSpec("s1", "sentinel1", period="15d"),
            LocalSource(
                [str(root / "Spain_7370579_S1Hand.tif")], "sentinel1", datetime="2019-09-17"
            ),
        ),
        (
            LayerSpec("label", "label"),
            LocalSource([str(root / "Spain_7370579_LabelHand.tif")], "label", nodata=-1),
        ),
    ):
        failed |= set(ingest(ds, windows, layer, source, cfg).failed)
    return ds, [w for w in windows if w.name not in failed]
