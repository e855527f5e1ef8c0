"""The data commands of ``earthplat``: windows, ingest, rasters and sensors (the dataset
commands are in ``earthplat.data.dataset_cli``).

Each command is a typed function over library calls (``earthplat.data.*``), equally callable
from Python; ``earthplat.cli`` turns them into subcommands. Flags are spelled as the parameter
names (``--file_bands``), and every parameter is described in its docstring, which is the flag's
help text.
"""

from __future__ import annotations

import json


def _read_geojson(path: str) -> dict:
    import fsspec

    from earthplat.errors import DataError

    try:
        with fsspec.open(path, "r") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not GeoJSON ({e})") from None


def _grid_for(crs: str, source: list[str] | None):
    """The place -> grid function ``--crs``/``--source`` ask for (None: UTM per place)."""
    from earthplat.data.window import GridChoice
    from earthplat.errors import DataError

    if crs == "utm":
        return None
    if crs != "source":
        from rasterio.crs import CRS
        from rasterio.errors import CRSError

        try:
            fixed = CRS.from_user_input(crs).to_string()
        except (CRSError, ValueError):  # "EPSG:nonsense" raises ValueError
            raise DataError(f"--crs {crs!r} is not utm, source or a CRS (EPSG:32633)") from None
        return lambda lon, lat: GridChoice(fixed)
    if not source:
        raise DataError("--crs source needs --source: the raster(s) whose CRS and grid to keep")
    import rasterio
    from rasterio.warp import transform_bounds
    from shapely.geometry import Point, box

    from earthplat.data.sources.local import expand_paths

    rasters = []
    for path in expand_paths(source):
        grid = GridChoice.of_raster(path)
        with rasterio.open(path) as src:
            rasters.append((box(*transform_bounds(src.crs, "EPSG:4326", *src.bounds)), grid))

    def grid_for(lon: float, lat: float) -> GridChoice:
        for footprint, grid in rasters:
            if footprint.contains(Point(lon, lat)):
                return grid
        raise DataError(
            f"({lon:.5f}, {lat:.5f}) lies in none of the --source rasters, so no source CRS "
            "applies there; add the raster that covers it, or use --crs utm"
        )

    return grid_for


def windows_create(
    dataset: str,
    start: str,
    end: str,
    bbox: list[float] | None = None,
    aoi: str | None = None,
    points: str | None = None,
    polygons: str | None = None,
    size: int = 256,
    resolution: float = 10.0,
    group: str = "default",
    crs: str = "utm",
    source: list[str] | None = None,
) -> int:
    """Create windows in a dataset from a bbox, an AOI, points or polygons.

    Args:
        dataset: The dataset directory (created if missing).
        start: Start of the windows' time range (YYYY-MM-DD).
        end: End of the windows' time range (YYYY-MM-DD, exclusive).
        bbox: An area as [minlon, minlat, maxlon, maxlat] in WGS84, gridded into windows.
        aoi: A GeoJSON file of an area (WGS84), gridded into windows.
        points: A CSV with columns lon, lat, start, end (and optional name): one window each.
        polygons: A GeoJSON file of polygons: one window around each.
        size: Window side in pixels (grids and points).
        resolution: Pixel size in metres.
        group: Group name written to every new window.
        crs: utm (the UTM zone of each place), an EPSG code (EPSG:32633), or source (the CRS
            and pixel grid of the --source raster that covers each place).
        source: Rasters (paths or globs) whose CRS and grid --crs source keeps.
    """
    from earthplat.data.dataset import Dataset
    from earthplat.data.window import (
        windows_from_aoi,
        windows_from_points_csv,
        windows_from_polygons,
    )
    from earthplat.errors import DataError

    given = [x for x in (bbox, aoi, points, polygons) if x]
    if len(given) != 1:
        raise DataError("give exactly one of --bbox, --aoi, --points, --polygons")
    grid_for = _grid_for(crs, source)
    if bbox or aoi:
        windows = windows_from_aoi(
            tuple(bbox) if bbox else _read_geojson(aoi),
            start=start,
            end=end,
            size=size,
            resolution=resolution,
            group=group,
            grid_for=grid_for,
        )
    elif points:
        windows = windows_from_points_csv(
            points, size=size, resolution=resolution, group=group, grid_for=grid_for
        )
    else:
        features = _read_geojson(polygons)
        windows = windows_from_polygons(
            features.get("features", [features]),
            start=start,
            end=end,
            resolution=resolution,
            group=group,
            grid_for=grid_for,
        )
    Dataset(dataset).write_windows(windows)
    print(f"{len(windows)} windows written to {dataset}")
    return len(windows)


def ingest(
    dataset: str,
    layer: str,
    modality: str,
    paths: list[str] | None = None,
    stac: str | None = None,
    collections: list[str] | None = None,
    datetime: str | None = None,
    dates: list[str] | None = None,
    file_bands: list[str] | None = None,
    quality: str | None = None,
    nodata: float | None = None,
    to_db: bool = False,
    max_cloud_cover: float | None = None,
    bands: list[str] | None = None,
    period: str = "30d",
    max_periods: int | None = None,
    method: str = "first",
    windows: list[str] | None = None,
    group: str | None = None,
    workers: int = 2,
    retries: int = 2,
    ignore_errors: bool = False,
    force: bool = False,
    allow_substitution: bool = False,
) -> dict:
    """Materialise a layer for the dataset's windows from local rasters or a STAC source.

    Re-running resumes: finished window layers are skipped.

    Args:
        dataset: The dataset directory (its windows come from earthplat windows create).
        layer: Name of the layer to write (s2, s1, ...).
        modality: The sensor product of the data (sentinel2_l1c, sentinel2_l2a, sentinel1,
            landsat, naip, or a custom sensor).
        paths: Local rasters, paths or globs (any CRS).
        stac: A STAC API URL or a static catalogue (instead of --paths).
        collections: STAC collection ids to search.
        datetime: Acquisition date (YYYY-MM-DD) of files that carry none.
        dates: Dates of a multi-date file without dated band descriptions: one per block of
            --file_bands (date-major), or one per file band.
        file_bands: Band names of the files in order, BAND or DATE_BAND (2020-06-01_B04), for
            files whose band descriptions do not name them.
        quality: A cloud-mask raster with one band per date (non-zero = cloud).
        nodata: Nodata value of files that do not declare one.
        to_db: The files hold linear backscatter (Sentinel-1): convert to dB.
        max_cloud_cover: STAC: keep items with at most this cloud cover (percent).
        bands: Bands to keep (default: all the modality's bands the files provide).
        period: Length of one time step (30d, 2w, 12h).
        max_periods: Most time steps per window.
        method: Compositing within a period: first, median or least_cloudy.
        windows: Only these windows (names).
        group: Only windows of this group.
        workers: Windows processed at once.
        retries: Extra attempts for transient read failures.
        ignore_errors: Go on past failed windows and list them at the end.
        force: Redo finished window layers.
        allow_substitution: Accept files whose metadata names another product of the sensor
            (L2A given as L1C); recorded in each layer's metadata.
    """
    from earthplat.data.dataset import Dataset
    from earthplat.data.ingest import IngestConfig
    from earthplat.data.ingest import ingest as run_ingest
    from earthplat.data.materialize import LayerSpec
    from earthplat.data.sources.factory import build_source

    ds = Dataset(dataset)
    source = build_source(
        modality,
        paths=paths,
        stac=stac,
        collections=collections,
        datetime=datetime,
        file_bands=file_bands,
        quality=quality,
        nodata=nodata,
        to_db=to_db,
        max_cloud_cover=max_cloud_cover,
        dates=dates,
        allow_substitution=allow_substitution,
    )
    spec = LayerSpec(
        layer, modality, bands=bands, period=period, max_periods=max_periods, method=method
    )
    report = run_ingest(
        ds,
        ds.windows(windows, group),
        spec,
        source,
        IngestConfig(workers=workers, retries=retries, ignore_errors=ignore_errors, force=force),
    )
    print(report.summary())
    return {
        "done": report.done,
        "skipped": report.skipped,
        "missing": report.missing,
        "failed": report.failed,
    }


def raster_georef(
    input: str,
    output: str,
    crs: str,
    bounds: list[float] | None = None,
    transform: list[float] | None = None,
    nodata: float | None = None,
    overwrite: bool = False,
) -> str:
    """Write a copy of a raster that has no CRS with a CRS and a transform.

    Usage: earthplat raster georef IN OUT --crs EPSG:N --bounds "[minx, miny, maxx, maxy]".

    Args:
        input: The raster without georeferencing (IN).
        output: The georeferenced copy to write (OUT).
        crs: Its CRS, e.g. EPSG:26918.
        bounds: Its extent [minx, miny, maxx, maxy] in --crs units.
        transform: Or its affine transform [a, b, c, d, e, f] (rasterio order).
        nodata: A nodata value to declare.
        overwrite: Replace an existing output.
    """
    from earthplat.data.georef import georeference

    path = georeference(
        input,
        output,
        crs=crs,
        bounds=tuple(bounds) if bounds else None,
        transform=transform,
        nodata=nodata,
        overwrite=overwrite,
    )
    print(f"georeferenced copy written to {path}")
    return str(path)


def sensors_list(name: str | None = None) -> list:
    """List the sensor registry, or show one modality's bands and statistics.

    Args:
        name: Show this modality in full (bands, GSD, statistics, band sets).
    """
    from earthplat.sensors import get_modality, modalities

    if name:
        m = get_modality(name)
        rows = [
            {
                "band": b.name,
                "common_name": b.common_name,
                "wavelength_um": b.wavelength_um,
                "gsd_m": b.gsd_m,
                "mean": b.mean,
                "std": b.std,
            }
            for b in m.bands
        ]
        print(
            json.dumps({"modality": m.name, "description": m.description, "bands": rows}, indent=1)
        )
        return rows
    listed = [
        {
            "name": m.name,
            "bands": len(m.bands),
            "decode_only": m.decode_only,
            "about": m.description,
        }
        for m in modalities()
    ]
    for row in listed:
        print(f"{row['name']:<16} {row['bands']:>3} bands  {row['about']}")
    return listed


def sensors_stats(
    paths: list[str],
    name: str,
    gsd_m: float,
    bands: list[str] | None = None,
    dtype: str | None = None,
    nodata: float | None = None,
    out: str | None = None,
    sample_pixels: int = 1_000_000,
) -> str:
    """Compute per-band statistics of rasters and write a custom sensor YAML from them.

    Register the YAML by listing it in EARTHPLAT_SENSORS (files or folders, os.pathsep-separated).

    Args:
        paths: Rasters (paths or globs) of the sensor, all with the same bands.
        name: Name of the new modality.
        gsd_m: Pixel size of the sensor in metres.
        bands: Band names in file order (default: the files' band descriptions).
        dtype: Storage dtype of materialised layers (default: the files' dtype).
        nodata: Nodata value of stored layers (integer dtypes need one outside the data).
        out: Write the YAML here (default: print it).
        sample_pixels: Pixels sampled from all files together.
    """
    from pathlib import Path

    import rasterio

    from earthplat.data.band_stats import band_stats, sensor_yaml
    from earthplat.data.sources.local import expand_paths

    files = expand_paths(paths)
    if dtype is None:
        with rasterio.open(files[0]) as src:
            dtype = src.dtypes[0]
    stats = band_stats(files, bands=bands, sample_pixels=sample_pixels)
    text = sensor_yaml(name, stats, gsd_m=gsd_m, dtype=dtype, nodata=nodata)
    if out:
        Path(out).write_text(text)
        print(f"sensor {name} written to {out}; add it to EARTHPLAT_SENSORS to use it")
    else:
        print(text)
    return text
