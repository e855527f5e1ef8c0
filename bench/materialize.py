"""Materialisation speed: a 12-period Sentinel-2 stack from local COGs into UTM windows.

    python -m bench.materialize [--windows 36] [--size 64]

Inputs: the real Sen1Floods11 Sentinel-2 L1C chip (13 bands, 512 x 512 px, EPSG:4326) written
as 12 tiled COGs, one per month. The pixels are real; the 12 dates are assigned by this
benchmark (the source has one acquisition) so that every window has a 12-period series.

Compared on the same windows, each producing [12, 13, size, size] uint16 in the window's UTM
grid:
  * baseline: plain rasterio, per window and file: read the whole file, ``reproject`` it
    into the window grid, write a GeoTIFF;
  * earthplat arrays: ``materialize_arrays`` (WarpedVRT windowed reads + compositing), no write;
  * earthplat ingest: the full ``ingest`` (prepare + materialise + COG/mask/JSON), 2 threads.
Prints a table and writes bench/results/materialize.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from bench.report import publish

REPO = Path(__file__).resolve().parents[1]


def shared_real() -> Path:
    root = os.environ.get("EARTHPLAT_SHARED_DATA")
    return Path(root) / "real" if root else REPO.parent / "shared" / "data" / "real"


def make_monthly_cogs(src_path: Path, out_dir: Path, months: int = 12) -> list[Path]:
    import rasterio
    from rasterio.shutil import copy as rio_copy

    paths = []
    with rasterio.open(src_path) as src:
        data, profile = src.read(), src.profile
        descriptions = src.descriptions
    for k in range(months):
        day = date(2019, 1, 15) + timedelta(days=30 * k)
        tmp = out_dir / f"plain_{k}.tif"
        with rasterio.open(tmp, "w", **{**profile, "driver": "GTiff"}) as dst:
            dst.write(data)
            dst.descriptions = descriptions
            dst.update_tags(DATE=day.isoformat())
        path = out_dir / f"S2_{day:%Y%m%d}.tif"
        rio_copy(tmp, path, driver="COG", compress="DEFLATE", blocksize=256)
        tmp.unlink()
        paths.append(path)
    return paths


def baseline(windows, files, out_dir: Path) -> float:
    import rasterio
    from rasterio.warp import Resampling, reproject

    t0 = time.perf_counter()
    for w in windows:
        stack = np.zeros((len(files), 13, w.height, w.width), dtype=np.uint16)
        for t, path in enumerate(files):
            with rasterio.open(path) as src:
                full = src.read()
                reproject(
                    full,
                    stack[t],
                    src_transform=src.transform,
                    src_crs=src.crs,
                    dst_transform=w.transform,
                    dst_crs=w.crs,
                    src_nodata=0,
                    dst_nodata=0,
                    resampling=Resampling.bilinear,
                )
        with rasterio.open(
            out_dir / f"{w.name}.tif",
            "w",
            driver="GTiff",
            width=w.width,
            height=w.height,
            count=stack.shape[0] * 13,
            dtype="uint16",
            crs=w.crs,
            transform=w.transform,
            compress="deflate",
        ) as dst:
            dst.write(stack.reshape(-1, w.height, w.width))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=36)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--out", default=str(REPO / "bench/results/materialize.md"))
    args = p.parse_args()

    from earthplat.data.dataset import Dataset
    from earthplat.data.ingest import IngestConfig, ingest
    from earthplat.data.materialize import LayerSpec, materialize_arrays
    from earthplat.data.sources import LocalSource
    from earthplat.data.window import windows_from_aoi

    chip = shared_real() / "sen1floods11_spain" / "Spain_7370579_S2Hand.tif"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "cogs").mkdir()
        files = make_monthly_cogs(chip, tmp / "cogs")
        windows = windows_from_aoi(
            (-0.775, 38.088, -0.745, 38.122), start="2019-01-01", end="2019-12-27", size=args.size
        )[: args.windows]
        layer = LayerSpec("s2", "sentinel2_l1c", period="30d", max_periods=12)
        source = LocalSource([str(f) for f in files], "sentinel2_l1c")
        source.items()  # scan once, outside the timings (both sides open files anyway)
        out_mb = len(windows) * 12 * 13 * args.size**2 * 2 / 1e6

        rows = []
        (tmp / "base").mkdir()
        t_base = baseline(windows, files, tmp / "base")
        rows.append(("baseline: rasterio read whole file + reproject + write GTiff", t_base))
        t0 = time.perf_counter()
        for w in windows:
            arrays = materialize_arrays(w, source.search(w), layer)
            assert arrays.data.shape == (12, 13, args.size, args.size)
        rows.append(("earthplat materialize_arrays (1 thread, no write)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        report = ingest(
            Dataset(tmp / "ds"), windows, layer, source, IngestConfig(workers=2, progress=False)
        )
        assert len(report.done) == len(windows), report.summary()
        rows.append(("earthplat ingest (2 threads, COG + mask + JSON)", time.perf_counter() - t0))

    lines = [
        f"{len(windows)} windows of {args.size}x{args.size} px at 10 m (UTM 30N) x 12 "
        f"periods x 13 bands from 12 local COGs (EPSG:4326, 512x512); "
        f"{out_mb:.1f} MB of output arrays",
        "",
        "| method | seconds | windows/s | MB/s | vs baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, secs in rows:
        lines.append(
            f"| {name} | {secs:.2f} | {len(windows) / secs:.1f} | {out_mb / secs:.1f} "
            f"| {t_base / secs:.2f}x |"
        )
    publish(lines, args.out)


if __name__ == "__main__":
    main()
