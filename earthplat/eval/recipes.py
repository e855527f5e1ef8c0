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


# --- labelled datasets for fine-tuning ------------------------------------------------------
# Each returns (Dataset, windows, classes or target info); labels are written with
# ``earthplat.data.labels`` (validated against the class schema, atomic layer writes).
EUROSAT_COLORS = (
    "#e6c84b",  # AnnualCrop
    "#1a6b1a",  # Forest
    "#8fd16a",  # HerbaceousVegetation
    "#7f7f7f",  # Highway
    "#c0392b",  # Industrial
    "#b5e655",  # Pasture
    "#d98c2b",  # PermanentCrop
    "#e74c8b",  # Residential
    "#2e86de",  # River
    "#0b3d91",  # SeaLake
)
SLOVENIA_CLASSES = [
    {"value": 1, "label": "cultivated land", "color": "#e6c84b"},
    {"value": 2, "label": "forest", "color": "#1a6b1a"},
    {"value": 3, "label": "grassland", "color": "#8fd16a"},
    {"value": 4, "label": "shrubland", "color": "#a0785a"},
    {"value": 8, "label": "artificial surface", "color": "#c0392b"},
]
"""eo-learn Slovenia land use (RABA); code 0 = no data is unlabelled (-1)."""
WATER_CLASSES = [
    {"value": 0, "label": "not water", "color": "#d9d9d9"},
    {"value": 1, "label": "water", "color": "#2e86de"},
]


def eurosat_classes() -> list[dict]:
    """The 10 EuroSAT classes as a class schema (value = ``class_id``)."""
    return [
        {"value": i, "label": name, "color": EUROSAT_COLORS[i]}
        for i, name in enumerate(EUROSAT_CLASSES)
    ]


def eurosat_classification(
    root: str | Path,
    dataset: str | Path,
    *,
    size: int = 64,
    limit_per_class: int | None = None,
    workers: int = 2,
) -> tuple[Dataset, list[Window], list[dict]]:
    """EuroSAT-MS scene classification: an ``s2`` layer per patch; the label is the window
    property ``class_id`` (checked against the 10-class schema)."""
    from earthplat.data.labels import set_window_labels

    ds, windows, report = ingest_eurosat(
        root, dataset, size=size, limit_per_class=limit_per_class, workers=workers
    )
    done = [w for w in windows if w.name not in report.failed]
    classes = eurosat_classes()
    set_window_labels(ds, {w.name: int(w.properties["class_id"]) for w in done}, classes=classes)
    return ds, ds.windows(names=[w.name for w in done]), classes


def _keep_properties(dataset: str | Path, ingest_fn, *args, **kwargs):
    """Run an ``ingest_*`` recipe without losing the window properties (labels) that earlier
    label recipes set on the same dataset: ingest rewrites the index with fresh windows."""
    import dataclasses

    ds = Dataset(dataset)
    before = {w.name: w.properties for w in ds.windows()} if ds.exists() else {}
    out = ingest_fn(*args, **kwargs)
    if before:
        merged = [
            dataclasses.replace(w, properties={**before.get(w.name, {}), **w.properties})
            for w in ds.windows()
        ]
        ds.write_windows(merged)
    names = [w.name for w in out[1]]
    return (out[0], ds.windows(names=names), *out[2:])


def _write_rasters(ds, windows, path, *, layer, classes=None, nodata=None) -> list[Window]:
    """``write_label_layer`` from a georeferenced raster for each window holding a label."""
    import numpy as np

    from earthplat.data.labels import read_class_raster, write_label_layer

    kept = []
    for w in windows:
        arr = read_class_raster(str(path), w, nodata=nodata)
        if classes is not None:
            arr = np.where(np.isfinite(arr), arr, -1)
        if not np.isfinite(arr).any() or (classes is not None and (arr < 0).all()):
            continue  # the source does not cover this window
        write_label_layer(ds, w, raster=arr, classes=classes, layer=layer)
        kept.append(w)
    return kept


def slovenia_landcover(
    root: str | Path, dataset: str | Path, *, size: int = 32
) -> tuple[Dataset, list[Window], list[dict]]:
    """Slovenia land-use segmentation: ``s2`` (5 dates of S2 L1C, 30-day periods) and a
    ``label`` layer from ``lulc.tif`` (classes 1, 2, 3, 4, 8; 0 = no data -> ignore)."""
    ds, windows = _keep_properties(dataset, ingest_slovenia, root, dataset, size=size)
    kept = _write_rasters(
        ds, windows, Path(root) / "lulc.tif", layer="label", classes=SLOVENIA_CLASSES, nodata=0
    )
    return ds, kept, SLOVENIA_CLASSES


def slovenia_multilabel(
    root: str | Path, dataset: str | Path, *, size: int = 32, min_fraction: float = 0.02
) -> tuple[Dataset, list[Window], list[dict]]:
    """Which land-use classes occur in each Slovenia window (window property ``lulc_present``:
    the class values covering at least ``min_fraction`` of the window's labelled pixels)."""
    from earthplat.data.labels import set_window_labels
    from earthplat.data.layer import read_layer_arrays

    ds, windows, classes = slovenia_landcover(root, dataset, size=size)
    present = {}
    for w in windows:
        ld = read_layer_arrays(ds, w, "label")
        codes = ld.data[0, 0][ld.valid[0]]
        present[w.name] = [
            c["value"]
            for c in classes
            if codes.size and (codes == c["value"]).mean() >= min_fraction
        ]
    set_window_labels(ds, present, property="lulc_present", classes=classes)
    return ds, ds.windows(names=[w.name for w in windows]), classes


def slovenia_elevation(
    root: str | Path, dataset: str | Path, *, size: int = 32
) -> tuple[Dataset, list[Window], dict]:
    """Pixel regression of elevation (metres) from Sentinel-2: ``s2`` + a float ``elevation``
    label layer from ``dem.tif``. Returns target info (name, units, mean, std)."""
    import numpy as np

    from earthplat.data.layer import read_layer_arrays

    ds, windows = _keep_properties(dataset, ingest_slovenia, root, dataset, size=size)
    kept = _write_rasters(ds, windows, Path(root) / "dem.tif", layer="elevation")
    values = np.concatenate(
        [(ld := read_layer_arrays(ds, w, "elevation")).data[0, 0][ld.valid[0]] for w in kept]
    )
    info = {
        "name": "elevation",
        "units": "m",
        "mean": float(values.mean()),
        "std": float(values.std()),
    }
    return ds, kept, info


def slovenia_mean_elevation(
    root: str | Path, dataset: str | Path, *, size: int = 32
) -> tuple[Dataset, list[Window], dict]:
    """Window regression: the mean elevation (metres) of each Slovenia window's labelled
    pixels, as the window property ``mean_elevation`` (plus the ``elevation`` layer)."""
    from earthplat.data.labels import set_window_labels
    from earthplat.data.layer import read_layer_arrays

    ds, windows, info = slovenia_elevation(root, dataset, size=size)
    means = {}
    for w in windows:
        ld = read_layer_arrays(ds, w, "elevation")
        means[w.name] = float(ld.data[0, 0][ld.valid[0]].mean())
    set_window_labels(ds, means, property="mean_elevation")
    return ds, ds.windows(names=list(means)), {**info, "name": "mean_elevation"}


def sen1floods11_water(
    root: str | Path, dataset: str | Path, *, size: int = 64
) -> tuple[Dataset, list[Window], list[dict]]:
    """Sen1Floods11 water segmentation: ``s2``, ``s1`` and a ``label`` layer (0 not water,
    1 water; the source's -1 = unlabelled -> ignore), rewritten through the class schema."""
    ds, windows = _keep_properties(dataset, ingest_sen1floods11, root, dataset, size=size)
    label = Path(root) / "Spain_7370579_LabelHand.tif"
    kept = _write_rasters(ds, windows, label, layer="label", classes=WATER_CLASSES, nodata=-1)
    return ds, kept, WATER_CLASSES


def sen1floods11_water_fraction(
    root: str | Path, dataset: str | Path, *, size: int = 64
) -> tuple[Dataset, list[Window], dict]:
    """Window regression: the fraction of each Sen1Floods11 window's labelled pixels that are
    water, as the window property ``water_fraction`` (plus the ``sen1floods11_water`` layers)."""
    from earthplat.data.labels import set_window_labels
    from earthplat.data.layer import read_layer_arrays

    ds, windows, _ = sen1floods11_water(root, dataset, size=size)
    fractions = {}
    for w in windows:
        ld = read_layer_arrays(ds, w, "label")
        codes = ld.data[0, 0][ld.valid[0]]
        if codes.size:
            fractions[w.name] = float((codes == 1).mean())
    set_window_labels(ds, fractions, property="water_fraction")
    info = {"name": "water_fraction", "units": "fraction", "classes": WATER_CLASSES}
    return ds, ds.windows(names=list(fractions)), info


def slovenia_parcels_detection(
    root: str | Path, dataset: str | Path, *, size: int = 32
) -> tuple[Dataset, list[Window], list[dict]]:
    """Object detection of the 88 real land-use parcels of ``original/LULC.gpkg``: per window a
    ``parcels`` layer (rasterised parcels) and ``parcels.geojson`` (each parcel touching the
    window: its box in window pixels, clipped to the window, and its LULC class)."""
    import geopandas as gpd

    from earthplat.data.labels import write_label_layer

    ds, windows = _keep_properties(dataset, ingest_slovenia, root, dataset, size=size)
    parcels = gpd.read_file(Path(root) / "original" / "LULC.gpkg").to_crs("EPSG:4326")
    kept = []
    for w in windows:
        touching = parcels[parcels.intersects(w.geometry_wgs84())]
        if touching.empty:
            continue
        feats = [
            {"geometry": geom.__geo_interface__, "properties": {"class": int(code)}}
            for geom, code in zip(touching.geometry, touching["LULC_ID"])
            if int(code) != 0  # 0 = no data: not an object
        ]
        if not feats:
            continue
        write_label_layer(ds, w, feats, classes=SLOVENIA_CLASSES, layer="parcels", detection=True)
        kept.append(w)
    return ds, kept, SLOVENIA_CLASSES
