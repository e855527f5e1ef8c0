"""Materialisation: read the items of a window into its pixel grid, composite per period, and
write the layer (COG + validity-mask COG + metadata JSON).

Only the window's part of each source is read: a ``WarpedVRT`` in the window's CRS and grid
asks GDAL for just the source blocks it needs, which on a remote COG are HTTP range requests.
Missing periods and nodata are recorded in the mask and the metadata, never as silent zeros.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import earthplat
from earthplat.data.dataset import Dataset
from earthplat.data.sources.base import SCL_INVALID, Item
from earthplat.data.timeseries import composite, make_periods
from earthplat.data.warp import read_warped
from earthplat.data.window import Window
from earthplat.errors import DataError, NoDataError
from earthplat.sensors import Modality, get_modality

if TYPE_CHECKING:
    from earthplat.data.context import ContextConfig


@dataclass
class LayerSpec:
    """What to materialise into a window layer."""

    name: str
    """Layer name (``s2``, ``s1``, ``label`` ...)."""
    modality: str
    bands: list[str] | None = None
    """Bands to keep (default: all the modality's bands the items provide)."""
    period: str = "30d"
    """Length of one time step."""
    max_periods: int | None = None
    """Cap on the number of periods (T)."""
    method: str = "first"
    """Compositing within a period: ``first``, ``median`` or ``least_cloudy``."""
    resampling: str | None = None
    """GDAL resampling; default bilinear for continuous data, nearest for classes."""

    @property
    def spec(self) -> Modality:
        return get_modality(self.modality)


@dataclass
class LayerArrays:
    data: np.ndarray
    """[T, C, H, W] in the modality's dtype (nodata where invalid)."""
    valid: np.ndarray
    """[T, H, W] bool."""
    bands: list[str]
    periods: list[tuple[datetime, datetime]]
    items_per_period: list[list[str]]


def _resampling(spec: Modality, name: str | None):
    from rasterio.enums import Resampling

    return (
        Resampling[name]
        if name
        else (Resampling.nearest if spec.categorical else Resampling.bilinear)
    )


_local = threading.local()
_MAX_OPEN = 64


def _open_raster(href: str):
    """A per-thread LRU of open datasets. GDAL's block cache lives with the dataset handle, so
    windows that share source files (the common case: many windows per scene) decompress each
    source block once instead of once per window. Handles are never shared across threads."""
    import rasterio
    from rasterio.errors import RasterioIOError

    cache: OrderedDict | None = getattr(_local, "datasets", None)
    if cache is None:
        cache = _local.datasets = OrderedDict()
    src = cache.get(href)
    if src is not None and not src.closed:
        cache.move_to_end(href)
        return src
    try:
        src = rasterio.open(href)
    except RasterioIOError as e:
        raise DataError(
            f"cannot read {href} ({e}); check that the file or URL exists and is a raster"
        ) from None
    if src.crs is None:
        src.close()
        raise DataError(f"{href} has no CRS; georeference it before ingesting")
    cache[href] = src
    while len(cache) > _MAX_OPEN:
        cache.popitem(last=False)[1].close()
    return src


def close_open_rasters() -> None:
    """Close this thread's cached dataset handles (e.g. before files are replaced)."""
    for src in getattr(_local, "datasets", {}).values():
        src.close()
    _local.datasets = OrderedDict()


def read_item(
    item: Item, window: Window, bands: list[str], spec: Modality, resampling: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One item in the window grid: ([C, H, W] float64 values, [H, W] validity).

    A pixel is valid where every band is inside the item's footprint, not nodata, finite
    (``earthplat.data.warp``) and, with a quality layer, not cloud."""
    shape = (window.height, window.width)
    out = np.zeros((len(bands), *shape), dtype=np.float64)
    valid = np.ones(shape, dtype=bool)
    missing = [b for b in bands if b not in item.assets]
    if missing:
        raise DataError(
            f"item {item.id} has no asset for band(s) {', '.join(missing)} (it has "
            f"{', '.join(item.assets) or 'none'}); choose bands the source provides (--bands) "
            "or fix the asset mapping"
        )
    by_href: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for c, band in enumerate(bands):
        by_href[item.assets[band].href].append((c, item.assets[band]))
    resample = _resampling(spec, resampling)
    nodata_override = item.properties.get("nodata")
    for href, entries in by_href.items():
        raw, ok = read_warped(
            _open_raster(href),
            window,
            [a.band_index for _, a in entries],
            resampling=resample,
            nodata=nodata_override,
        )
        for k, (c, asset) in enumerate(entries):
            values = raw[k] * asset.scale + asset.offset
            band_ok = ok[k]
            if asset.to_db:
                with np.errstate(divide="ignore", invalid="ignore"):
                    values = 10.0 * np.log10(values)
                band_ok = band_ok & np.isfinite(values)
            valid &= band_ok
            out[c] = np.where(band_ok, values, 0)
    if item.quality is not None:
        valid &= ~_cloud_mask(item, window)
    return out, valid


def _cloud_mask(item: Item, window: Window) -> np.ndarray:
    """[H, W] True where the item's quality layer says cloud (outside it: not known, clear)."""
    from rasterio.enums import Resampling

    q = item.quality
    values, ok = read_warped(
        _open_raster(q.href), window, [q.band_index], resampling=Resampling.nearest
    )
    if q.kind == "scl":
        return np.isin(values[0], SCL_INVALID) & ok[0]
    return (values[0] != 0) & ok[0]


def _to_storage(values: np.ndarray, valid: np.ndarray, spec: Modality) -> np.ndarray:
    dtype = np.dtype(spec.dtype)
    if np.issubdtype(dtype, np.floating):
        nodata = np.nan if spec.nodata is None else spec.nodata
        return np.where(valid[None], values, nodata).astype(dtype)
    info = np.iinfo(dtype)
    nodata = spec.nodata if spec.nodata is not None else 0
    # a valid pixel must never read as nodata: clip it off the nodata value at either end
    lo = info.min + 1 if nodata == info.min else info.min
    hi = info.max - 1 if nodata == info.max else info.max
    stored = np.clip(np.rint(values), lo, hi)
    return np.where(valid[None], stored, nodata).astype(dtype)


def materialize_arrays(window: Window, items: list[Item], layer: LayerSpec) -> LayerArrays:
    """Composite ``items`` into [T, C, H, W] for ``window`` (no writing)."""
    spec = layer.spec
    items = sorted(items, key=lambda it: (it.datetime, it.id))
    if layer.bands:
        bands = list(spec.canonical(layer.bands))
    else:
        provided = set.intersection(*(set(it.assets) for it in items)) if items else set()
        bands = [b for b in spec.band_names if b in provided] or list(spec.band_names)
    if spec.multitemporal:
        periods = make_periods(window.start, window.end, layer.period, layer.max_periods)
    else:
        periods = [(window.start, window.end)]
    t, h, w = len(periods), window.height, window.width
    values = np.zeros((t, len(bands), h, w), dtype=np.float64)
    valid = np.zeros((t, h, w), dtype=bool)
    used: list[list[str]] = [[] for _ in periods]
    for p, (p0, p1) in enumerate(periods):
        members = (
            items if not spec.multitemporal else [it for it in items if p0 <= it.datetime < p1]
        )
        if not members:
            continue
        stack, masks = [], []
        for it in members:
            v, m = read_item(it, window, bands, spec, layer.resampling)
            stack.append(v)
            masks.append(m)
        cloud = [
            float(it.properties["cloud_cover"]) / 100
            if "cloud_cover" in it.properties
            else 1.0 - float(m.mean())
            for it, m in zip(members, masks)
        ]
        values[p], valid[p] = composite(np.stack(stack), np.stack(masks), layer.method, cloud)
        used[p] = [it.id for it, m in zip(members, masks) if m.any()]
    return LayerArrays(_to_storage_all(values, valid, spec), valid, bands, periods, used)


def _to_storage_all(values: np.ndarray, valid: np.ndarray, spec: Modality) -> np.ndarray:
    return np.stack([_to_storage(values[t], valid[t], spec) for t in range(values.shape[0])])


def write_layer(
    dataset: Dataset,
    window: Window,
    layer: LayerSpec,
    arrays: LayerArrays,
    items: list[Item],
    source: dict[str, Any],
    *,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write data COG, mask COG, then the metadata JSON (last: it marks the layer finished);
    ``extra`` adds fields to the JSON."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    spec = layer.spec
    t, c = arrays.data.shape[:2]
    nodata = (
        spec.nodata
        if spec.nodata is not None
        else (float("nan") if np.issubdtype(np.dtype(spec.dtype), np.floating) else None)
    )
    descriptions = [f"{p0:%Y-%m-%d}_{b}" for p0, _ in arrays.periods for b in arrays.bands]
    profile = dict(
        driver="GTiff",
        width=window.width,
        height=window.height,
        crs=window.crs,
        transform=window.transform,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    with tempfile.TemporaryDirectory(prefix="earthplat-layer-") as tmp:
        outputs = {}
        for kind, array, dtype, nd, descs in (
            (
                "data",
                arrays.data.reshape(t * c, window.height, window.width),
                spec.dtype,
                nodata,
                descriptions,
            ),
            (
                "mask",
                arrays.valid.astype(np.uint8),
                "uint8",
                None,
                [f"{p0:%Y-%m-%d}_valid" for p0, _ in arrays.periods],
            ),
        ):
            plain = Path(tmp) / f"{kind}.tif"
            with rasterio.open(
                plain, "w", count=array.shape[0], dtype=dtype, nodata=nd, **profile
            ) as dst:
                dst.write(array)
                for i, d in enumerate(descs, start=1):
                    dst.set_band_description(i, d)
                dst.update_tags(
                    MODALITY=spec.name,
                    LAYER=layer.name,
                    WINDOW=window.name,
                    BANDS=",".join(arrays.bands),
                    PERIODS=",".join(f"{p0:%Y-%m-%d}" for p0, _ in arrays.periods),
                )
            cog = Path(tmp) / f"{kind}.cog.tif"
            rio_copy(
                plain,
                cog,
                driver="COG",
                compress="DEFLATE",
                predictor=3 if np.issubdtype(np.dtype(dtype), np.floating) else 2,
                overviews="AUTO",
                blocksize=256,
                resampling="NEAREST" if spec.categorical or kind == "mask" else "AVERAGE",
            )
            outputs[kind] = cog
        dataset.put_file(outputs["data"], dataset.layer_path(window, layer.name, ".tif"))
        dataset.put_file(outputs["mask"], dataset.layer_path(window, layer.name, ".mask.tif"))
    valid_fraction = [float(arrays.valid[i].mean()) for i in range(t)]
    meta = {
        "window": window.name,
        "layer": layer.name,
        "modality": spec.name,
        "bands": arrays.bands,
        "dtype": spec.dtype,
        "nodata": None if nodata is None or nodata != nodata else nodata,
        "crs": window.crs,
        "transform": list(window.transform)[:6],
        "shape": [t, c, window.height, window.width],
        "periods": [[p0.isoformat(), p1.isoformat()] for p0, p1 in arrays.periods],
        "missing_periods": [i for i, f in enumerate(valid_fraction) if f == 0.0],
        "valid_fraction": valid_fraction,
        "items": arrays.items_per_period,
        "acquired": sorted({it.datetime.isoformat() for it in items}),
        "substitutions": _substitutions(items),
        "method": layer.method,
        "resampling": layer.resampling or ("nearest" if spec.categorical else "bilinear"),
        "source": source,
        "prepared_items": [it.id for it in items],
        "created": datetime.now(UTC).isoformat(),
        "earthplat_version": earthplat.__version__,
        **(extra or {}),
    }
    dataset.write_json(dataset.layer_path(window, layer.name, ".json"), meta)
    return meta


def _substitutions(items: list[Item]) -> list[dict[str, Any]]:
    """The product substitutions the user accepted for these items (one per source file)."""
    seen: dict[str, dict[str, Any]] = {}
    for it in items:
        sub = it.properties.get("substitution")
        if sub:
            seen.setdefault(str(sub.get("where")), sub)
    return list(seen.values())


def prepare(
    dataset: Dataset, window: Window, layer: LayerSpec, source, *, force: bool = False
) -> list[Item]:
    """Find the items for a window layer and record them in ``LAYER.prepare.json``."""
    path = dataset.layer_path(window, layer.name, ".prepare.json")
    if not force and dataset.fs.exists(path):
        return [Item.from_json(d) for d in dataset.read_json(path)["items"]]
    items = source.search(window)
    dataset.fs.makedirs(dataset.window_dir(window), exist_ok=True)
    dataset.write_json(
        path,
        {
            "window": window.name,
            "layer": layer.name,
            "source": source.describe(),
            "items": [it.to_json() for it in items],
        },
    )
    return items


def materialize(
    dataset: Dataset,
    window: Window,
    layer: LayerSpec,
    source,
    *,
    force: bool = False,
    context: bool | ContextConfig = True,
) -> dict[str, Any]:
    """Prepare + materialise one window layer; a finished layer is skipped unless ``force``.

    ``context`` (on by default; a ``ContextConfig`` to size it, ``False`` for none) also builds
    the layer's low-resolution overview around the window (``earthplat.data.context``); a
    failure there is logged and leaves the layer standing."""
    if not force and dataset.layer_done(window, layer.name):
        return dataset.layer_metadata(window, layer.name)
    items = prepare(dataset, window, layer, source, force=force)
    if not items:
        raise NoDataError(
            f"window {window.name}: no {layer.spec.name} item of the source covers it between "
            f"{window.start:%Y-%m-%d} and {window.end:%Y-%m-%d} (every period is missing); widen "
            "the time range or check the source's footprint"
        )
    arrays = materialize_arrays(window, items, layer)
    if not arrays.valid.any():
        raise NoDataError(
            f"window {window.name}: the {len(items)} matching {layer.spec.name} item(s) hold no "
            "valid pixel inside the window (outside their footprint, nodata or cloud: every "
            "period is missing)"
        )
    meta = write_layer(dataset, window, layer, arrays, items, source.describe())
    if context is not False:
        from earthplat.data.context import ContextConfig, build_context_quietly

        config = context if isinstance(context, ContextConfig) else ContextConfig()
        build_context_quietly(dataset, window, layer, items, source.describe(), config)
    return meta
