"""Inference throughput and memory scaling of ``earthplat predict`` on CPU (2 threads).

    python -m bench.inference [--quick]

1. Throughput: the nano and tiny encoders with a UPerNet segmentation head (random init: speed
   does not depend on the weights) over the real Sen1Floods11 S2 chip (512 x 512 px, 13 L1C
   bands): km^2/s at 10 m, pixels/s and the peak RSS of the process.
2. Memory scaling: peak RSS at 1x, 4x and 16x the area, streamed (``predict``, 512 px chunks)
   against a naive baseline in the same run that loads the whole raster and predicts it in one
   go (all tiles at once, full-size accumulators). The larger inputs are real GeoTIFFs with the
   chip's CRS, built by mirroring the chip into 2x2 and 4x4 mosaics in a temp dir.

Each case runs in a fresh subprocess, which reports its own peak RSS (``ru_maxrss``).
Writes bench/results/inference.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.report import publish

REPO = Path(__file__).resolve().parents[1]
CHIP = "sen1floods11_spain/Spain_7370579_S2Hand.tif"
S2_DATE = "2019-09-18"
"""Acquisition date of the chip (its README; the file names none)."""


def shared_real() -> Path:
    root = os.environ.get("EARTHPLAT_SHARED_DATA")
    return Path(root) / "real" if root else REPO.parent / "shared" / "data" / "real"


MODELS = {  # name -> (encoder preset, head, patch size)
    "nano": ("nano", "upernet", 4),
    "tiny": ("tiny", "upernet", 4),
    "pico-linear": ("pico", "linear", 8),
}


def build_model(name: str, chip: int):
    import torch

    from earthplat.nn.task_model import TaskModel, TaskSpec
    from earthplat.sensors import S2_L1C_ORDER

    torch.manual_seed(0)
    encoder, head, patch = MODELS[name]
    spec = TaskSpec(
        task="segmentation",
        inputs={"sentinel2_l1c": list(S2_L1C_ORDER)},
        num_outputs=2,
        classes=[
            {"value": 0, "label": "land", "color": "#a08050"},
            {"value": 1, "label": "water", "color": "#1f5fff"},
        ],
        patch_size=patch,
        chip_size=chip,
        backbone={
            "name": "earthplat",
            "encoder": {"preset": encoder, "modalities": ["sentinel2_l1c"]},
        },
        head={"name": head},
    )
    return TaskModel(spec).eval()


def mosaic(src: Path, k: int, out: Path) -> Path:
    """A k x k mosaic of the chip, alternate copies mirrored so edges stay continuous; same
    CRS, origin and pixel size, tiled 256 px blocks."""
    import rasterio

    with rasterio.open(src) as ds:
        data, profile, descriptions = ds.read(), ds.profile, ds.descriptions
    rows = []
    for i in range(k):
        row = [data[:, :: -1 if i % 2 else 1, :: -1 if j % 2 else 1] for j in range(k)]
        rows.append(np.concatenate(row, axis=2))
    big = np.concatenate(rows, axis=1)
    profile.update(
        width=big.shape[2],
        height=big.shape[1],
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    )
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(big)
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
    return out


# --- one case, in its own process ---------------------------------------------------------------
def run_stream(
    encoder: str, raster: str, out: str, chip: int, overlap: int, bbox: list | None = None
) -> dict:
    from earthplat.inference import predict

    model = build_model(encoder, chip)
    t0, c0 = time.perf_counter(), time.process_time()
    predict(
        model, raster, out, overlap=overlap, chunk_size=512, batch_size=8, outputs=["cog"],
        bbox=bbox, date=S2_DATE,
    )  # fmt: skip
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def run_naive(encoder: str, raster: str, out: str, chip: int, overlap: int, bbox=None) -> dict:
    """The whole raster in memory: read it all, cut every tile at once, keep full-size
    accumulators, write the class map in one go."""
    import rasterio
    import torch

    from earthplat.inference.tiling import TilePlan
    from earthplat.nn.encoder import ModalityInput
    from earthplat.sensors import normalize

    model = build_model(encoder, chip)
    t0, c0 = time.perf_counter(), time.process_time()
    with rasterio.open(raster) as ds:
        raw, profile = ds.read().astype(np.float32), ds.profile
    bands = tuple(model.spec.inputs["sentinel2_l1c"])
    valid = (raw != 0).any(0)
    data = np.where(valid, normalize(raw, "sentinel2_l1c", bands), 0).astype(np.float32)
    h, w = valid.shape
    plan = TilePlan(h, w, chip, overlap, max(h, w))
    tiles = [(r, c) for r in plan.starts(h) for c in plan.starts(w)]
    pad = np.zeros((data.shape[0], h + chip, w + chip), np.float32)
    pad[:, :h, :w] = data
    vpad = np.zeros((h + chip, w + chip), bool)
    vpad[:h, :w] = valid
    x = torch.from_numpy(np.stack([pad[:, r : r + chip, c : c + chip] for r, c in tiles]))
    v = torch.from_numpy(np.stack([vpad[r : r + chip, c : c + chip] for r, c in tiles]))
    acc = np.zeros((2, h + chip, w + chip), np.float64)
    wsum = np.zeros((h + chip, w + chip), np.float64)
    weight = plan.weights()
    stamps = torch.tensor([[[18, 8, 2019]]])
    with torch.inference_mode():
        for i in range(0, len(tiles), 8):
            xb, vb = x[i : i + 8, None], v[i : i + 8, None]
            inp = ModalityInput(xb, vb, stamps.expand(len(xb), 1, 3), bands)
            probs = torch.softmax(model({"sentinel2_l1c": inp}), 1).numpy()
            for (r, c), p in zip(tiles[i : i + 8], probs):
                acc[:, r : r + chip, c : c + chip] += p * weight
                wsum[r : r + chip, c : c + chip] += weight
    classes = (acc[:, :h, :w] / wsum[:h, :w]).argmax(0).astype(np.uint8)
    classes[~valid] = 255
    profile.update(count=1, dtype="uint8", nodata=255)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(classes[None])
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(2)
    fn = run_stream if args.case == "stream" else run_naive
    bbox = json.loads(args.bbox) if args.bbox else None
    result = fn(args.encoder, args.raster, args.out, args.chip, args.overlap, bbox)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # whole process, imports included
    print("RESULT " + json.dumps(result))


def measure(
    case: str, encoder: str, raster: Path, tmp: Path, chip: int, overlap: int, bbox=None
) -> dict:
    cmd = [
        sys.executable, "-m", "bench.inference", "--child", case, "--encoder", encoder,
        "--raster", str(raster), "--out", str(tmp / f"{case}_{encoder}_{raster.stem}.tif"),
        "--chip", str(chip), "--overlap", str(overlap), "--bbox", json.dumps(bbox) if bbox else "",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1x and 4x only, nano only")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "inference.md"))
    parser.add_argument("--child", choices=("stream", "naive"))
    parser.add_argument("--encoder", default="nano")
    parser.add_argument("--raster")
    parser.add_argument("--chip", type=int, default=64)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--bbox", default="")
    args = parser.parse_args()
    if args.child:
        args.case = args.child
        child(args)
        return

    import rasterio

    chip_path = shared_real() / CHIP
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp_dir:
        tmp = Path(tmp_dir)
        scales = (1, 2) if args.quick else (1, 2, 4)
        rasters = {k: mosaic(chip_path, k, tmp / f"mosaic_{k}x{k}.tif") for k in scales}
        px1 = 512 * 512
        side = 256  # throughput over the chip's top-left 256 x 256 px (25 tiles)
        with rasterio.open(chip_path) as ds:
            x0, y1 = ds.transform @ (0, 0)
            x1, y0 = ds.transform @ (side, side)
        bbox = [x0, y0, x1, y1]
        rows = [
            f"## Throughput ({side} x {side} px of the Sen1Floods11 S2 chip, 13 L1C bands, "
            "64 px tiles, overlap 16 (25 tiles); 2 threads)",
            "",
            "| model | wall s | CPU s | km²/s at 10 m | pixels/s | km²/s per CPU-s | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for encoder in ("nano",) if args.quick else ("nano", "tiny"):
            r = measure("stream", encoder, rasters[1], tmp, 64, 16, bbox)
            px = side * side
            km2 = px * 100 / 1e6
            rows.append(
                f"| {encoder} + UPerNet (patch 4) | {r['seconds']:.1f} | {r['cpu']:.1f} | "
                f"{km2 / r['seconds']:.4f} | {px / r['seconds']:,.0f} | {km2 / r['cpu']:.4f} | "
                f"{r['peak_rss_mb']:.0f} |"
            )
        rows += [
            "",
            "## Memory scaling (pico encoder + linear head, patch 8, 64 px tiles, no overlap; "
            "2 threads)",
            "",
            "| area | pixels | km² | streamed: wall s (CPU s) | streamed: peak RSS MB | "
            "naive: whole raster in memory: wall s (CPU s) | naive: peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for k in scales:
            stream = measure("stream", "pico-linear", rasters[k], tmp, 64, 0)
            naive = measure("naive", "pico-linear", rasters[k], tmp, 64, 0)
            px = px1 * k * k
            rows.append(
                f"| {k * k}x ({512 * k} x {512 * k}) | {px:,} | {px * 100 / 1e6:.1f} | "
                f"{stream['seconds']:.1f} ({stream['cpu']:.1f}) | {stream['peak_rss_mb']:.0f} | "
                f"{naive['seconds']:.1f} ({naive['cpu']:.1f}) | {naive['peak_rss_mb']:.0f} |"
            )
    rows += [
        "",
        "Notes: random-init models (throughput does not depend on the weights); the memory "
        "scaling uses the smallest model so the 16x case fits the time budget (the streamed "
        "path's memory is set by the chunk and batch size, not by the model's depth); each "
        "case in a fresh subprocess, peak RSS = its ru_maxrss (includes Python, torch and the "
        "model). "
        "The 4x and 16x inputs are real GeoTIFFs (EPSG:4326, the chip's grid) made by mirroring "
        "the real Sen1Floods11 S2 chip into 2x2 and 4x4 mosaics in a temp dir. Streamed = "
        "`earthplat.inference.predict` (512 px chunks, parts on disk, COG with overviews); "
        "naive = read the whole raster, cut all tiles at once, full-size accumulators, plain "
        f"GeoTIFF. Machine: {os.cpu_count()} CPU cores shared with other jobs (load average "
        f"{os.getloadavg()[0]:.0f} at the end of the run), so wall times are inflated; CPU "
        "seconds (user + sys of the predicting code, both threads) are the steadier measure "
        "(on an idle machine wall ~ CPU / 2). Memory is not affected.",
    ]
    publish(rows, args.out)


if __name__ == "__main__":
    main()
