"""Packed dataset vs reading the COG layers directly: random-read samples/s with 2 workers.

    python -m bench.packed_dataset [--workers 2] [--epochs 6] [--out FILE.md]

Real data: the 150 EuroSAT-MS Sentinel-2 L1C patches under ``shared/data/real/eurosat_ms_subset``
(override the ``shared/data`` folder with ``EARTHPLAT_SHARED_DATA``). Each patch becomes one
64 x 64 window at 10 m centred on the patch (``window_around``), ingested through the real path
(``LocalSource`` modality ``sentinel2_l1c``, datetime 2018-06-01, ``materialize``) into a temporary
``Dataset`` of COG layers, then packed with ``pack_dataset`` (uncompressed, the default, and lzf).

Readers (one sample = one window's S2 data [1, 13, 64, 64] uint16, validity mask and timestamps):

- ``COG layers``: ``read_layer_arrays`` per sample (metadata JSON + data COG + mask COG), what a
  training loader does without a pack;
- ``pack``: ``PackedDataset.read`` (one HDF5 handle per worker).

Each runs in a ``DataLoader`` (``--workers`` workers, batch 8, shuffled, persistent workers) for
``--epochs`` epochs over the 150 windows: epoch 1 starts with the files evicted from the page cache
(``posix_fadvise(DONTNEED)``) and includes worker start-up; the warm figure is the median of the
other epochs. Single-process latency is the median of 300 random warm reads. Prints a markdown
table and writes it to ``bench/results/packed_dataset.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.pack_formats import disk_bytes, evict_page_cache
from bench.report import publish

REPO = Path(__file__).resolve().parents[1]
DATETIME = "2018-06-01"


def shared_real() -> Path:
    env = os.environ.get("EARTHPLAT_SHARED_DATA")
    base = Path(env) if env else REPO.parent / "shared" / "data"
    return base / "real"


def ingest_eurosat(root: Path, files: list[Path]):
    """One 64 x 64 window per patch, materialised from the patch itself."""
    import rasterio
    from rasterio.warp import transform

    from earthplat.data.dataset import Dataset
    from earthplat.data.materialize import LayerSpec, materialize
    from earthplat.data.sources.local import LocalSource
    from earthplat.data.window import window_around

    windows, sources = [], {}
    for f in files:
        with rasterio.open(f) as src:
            left, bottom, right, top = src.bounds
            xs, ys = transform(src.crs, "EPSG:4326", [(left + right) / 2], [(bottom + top) / 2])
        w = window_around(
            xs[0], ys[0], name=f.stem, start=DATETIME, end="2018-07-01", size=64, resolution=10
        )
        windows.append(w)
        sources[w.name] = LocalSource([str(f)], "sentinel2_l1c", datetime=DATETIME)
    ds = Dataset(root)
    ds.write_windows(windows)
    spec = LayerSpec("s2", "sentinel2_l1c")
    for w in windows:
        materialize(ds, w, spec, sources[w.name])
    return ds


class CogReader:
    """A window's layer read from its COGs, as a training loader without a pack would."""

    def __init__(self, root: str, names: list[str]) -> None:
        self.root, self.names = root, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        from earthplat.batch import timestamps_of
        from earthplat.data.dataset import Dataset
        from earthplat.data.layer import read_layer_arrays

        ld = read_layer_arrays(Dataset(self.root), self.names[i], "s2")
        return {"data": ld.data, "valid": ld.valid, "timestamps": timestamps_of(ld.times)}


class PackReader:
    def __init__(self, path: str) -> None:
        from earthplat.data.pack import PackedDataset

        self.packed = PackedDataset(path)

    def __len__(self) -> int:
        return len(self.packed)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        d = self.packed.read(i)["modalities"]["sentinel2_l1c"]
        return {"data": d["data"], "valid": d["valid"], "timestamps": d["timestamps"]}


def loader_rates(reader: Any, paths: list[str], workers: int, epochs: int) -> tuple[float, float]:
    """(cold epoch samples/s, median warm epoch samples/s)."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    for p in paths:
        evict_page_cache(p)
    sampler = RandomSampler(reader, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(
        reader,
        batch_size=8,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        multiprocessing_context="fork",
    )
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        count = sum(len(b["data"]) for b in loader)
        rates.append(count / (time.perf_counter() - t0))
    return rates[0], statistics.median(rates[1:])


def latency_ms(reader: Any, reads: int = 300) -> float:
    rng = np.random.default_rng(1)
    reader[0]
    times = []
    for i in rng.integers(0, len(reader), reads):
        t0 = time.perf_counter()
        reader[int(i)]
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out", default=str(REPO / "bench/results/packed_dataset.md"))
    args = p.parse_args()
    from earthplat.data.pack import pack_dataset

    folder = shared_real() / "eurosat_ms_subset"
    files = sorted(folder.glob("*/*.tif"))
    if not files:
        raise SystemExit(
            f"no EuroSAT patches under {folder}; set EARTHPLAT_SHARED_DATA to the "
            "folder holding real/eurosat_ms_subset"
        )
    rows = []
    with tempfile.TemporaryDirectory(prefix="earthplat-packedbench-") as tmp:
        t0 = time.perf_counter()
        ds = ingest_eurosat(Path(tmp) / "dataset", files)
        ingest_s = time.perf_counter() - t0
        names = [w.name for w in ds.windows()]
        layer_files = [
            ds.layer_path(n, "s2", s) for n in names for s in (".tif", ".mask.tif", ".json")
        ]
        cog_bytes = sum(os.path.getsize(f) for f in layer_files)
        print(f"ingested {len(names)} EuroSAT windows in {ingest_s:.1f}s", flush=True)
        cog = CogReader(ds.root, names)
        cold, warm = loader_rates(cog, layer_files, args.workers, args.epochs)
        rows.append(("COG layers (read_layer_arrays)", "-", cog_bytes, cold, warm, latency_ms(cog)))
        for compression in (None, "lzf"):
            out = f"{tmp}/pack-{compression or 'none'}.h5"
            t0 = time.perf_counter()
            info = pack_dataset(ds, out, compression=compression)
            pack_s = time.perf_counter() - t0
            assert info.num_windows == len(names) and not info.skipped
            reader = PackReader(out)
            cold, warm = loader_rates(reader, [out], args.workers, args.epochs)
            rows.append(
                (
                    f"pack, HDF5 {compression or 'uncompressed'}",
                    f"{pack_s:.1f}",
                    disk_bytes(out),
                    cold,
                    warm,
                    latency_ms(reader),
                )
            )
            print(rows[-1], flush=True)

    base_warm, base_cold = rows[0][4], rows[0][3]
    lines = [
        f"data: {len(names)} real EuroSAT-MS Sentinel-2 L1C patches -> windows of [T=1, C=13, 64, "
        f"64] uint16 + mask; DataLoader num_workers={args.workers}, batch 8, shuffled, "
        f"{args.epochs} epochs; {os.cpu_count()} CPU cores; ingest (materialize) took "
        f"{ingest_s:.1f}s",
        "",
        "| reader | pack s | size MiB | cold epoch samples/s | warm samples/s (median) "
        "| warm vs COG | 1-proc latency ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, pack_s, size, cold, warm, lat in rows:
        lines.append(
            f"| {name} | {pack_s} | {size / 2**20:.1f} | {cold:.0f} | {warm:.0f} | "
            f"{warm / base_warm:.1f}x | {lat:.2f} |"
        )
    lines += [
        "",
        f"cold epoch vs COG: {rows[1][3] / base_cold:.1f}x (uncompressed pack). Cold "
        "epoch: files evicted from the page cache, worker start-up included; warm: median "
        "of the later epochs with the same persistent workers.",
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
