"""Sen1Floods11 water mapping: a fine-tuned segmentation model against per-pixel thresholds.

The real chip (Spain, Sept 2019 flood, 512 x 512 px) is cut into 64 px windows. Windows whose
centre lies in the west half train the model (every fifth one validates); the east half is held
out. The baseline is the per-pixel threshold a remote-sensing analyst would use: for each of VV,
VH (dB, water is dark), NDWI and MNDWI (S2, water is bright) the threshold with the best water IoU
on the training pixels, and the best of the four on the training pixels is the baseline. Both
are scored on exactly the same held-out labelled pixels.

    python -m bench.floods_vs_threshold [--steps 300] [--config ...]

Prints a table and writes bench/results/floods_vs_threshold.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "earthplat/configs/finetune/sen1floods11_nano_upernet_s2.yaml"
INPUTS = {"s2": "sentinel2_l1c", "s1": "sentinel1"}


def shared_real() -> Path:
    from tests.conftest import shared_data_dir

    return shared_data_dir() / "real"


def build_dataset(out: Path):
    """The recipe's dataset with a ``split`` window property: west train/val, east test."""
    from earthplat.data.labels import set_window_labels
    from earthplat.eval.recipes import sen1floods11_water

    ds, windows, classes = sen1floods11_water(shared_real() / "sen1floods11_spain", out, size=64)
    xs = {w.name: (w.bounds[0] + w.bounds[2]) / 2 for w in windows}
    middle = (min(w.bounds[0] for w in windows) + max(w.bounds[2] for w in windows)) / 2
    west = sorted(n for n, x in xs.items() if x < middle)
    split = {n: ("test" if x >= middle else "train") for n, x in xs.items()}
    for n in west[::5]:
        split[n] = "val"
    set_window_labels(ds, split, property="split")
    return ds, windows, classes, split


def pixels(ds, names: list[str], masks: dict | None = None) -> dict[str, np.ndarray]:
    """Label and the four baseline features over the named windows' labelled pixels (where
    S1, S2 and the label are all valid); ``masks`` receives each window's pixel mask."""
    from earthplat.data.layer import read_layer_arrays

    out: dict[str, list[np.ndarray]] = {k: [] for k in ("label", "VV", "VH", "NDWI", "MNDWI")}
    for n in names:
        label = read_layer_arrays(ds, n, "label")
        s1 = read_layer_arrays(ds, n, "s1")
        s2 = read_layer_arrays(ds, n, "s2")
        t1 = int(np.argmax(s1.valid.reshape(len(s1.valid), -1).mean(1)))
        t2 = int(np.argmax(s2.valid.reshape(len(s2.valid), -1).mean(1)))
        b = {name: s2.data[t2, i].astype(np.float64) for i, name in enumerate(s2.bands)}
        ok = label.valid[0] & s1.valid[t1] & s2.valid[t2]
        feats = {
            "VV": -s1.data[t1, s1.bands.index("VV")],
            "VH": -s1.data[t1, s1.bands.index("VH")],
            "NDWI": (b["B03"] - b["B08"]) / (b["B03"] + b["B08"] + 1e-6),
            "MNDWI": (b["B03"] - b["B11"]) / (b["B03"] + b["B11"] + 1e-6),
        }
        ok &= np.all([np.isfinite(f) for f in feats.values()], axis=0)
        if masks is not None:
            masks[n] = ok
        out["label"].append(label.data[0, 0][ok])
        for k, f in feats.items():
            out[k].append(f[ok])
    return {k: np.concatenate(v) for k, v in out.items()}


def water_iou(pred: np.ndarray, label: np.ndarray) -> float:
    water = label == 1
    return float((pred & water).sum() / max((pred | water).sum(), 1))


def model_predictions(
    model_dir: Path, ds, masks: dict[str, np.ndarray], inputs: dict
) -> np.ndarray:
    """The fine-tuned model's water mask over exactly the baseline's pixels, window by window
    (each window is one 64 px chip, the training chip size)."""
    import torch

    from earthplat.data.sample import load_sample
    from earthplat.eval.embeddings import model_inputs
    from earthplat.nn.task_model import load_task_model

    model = load_task_model(model_dir).eval()
    preds = []
    for name, ok in masks.items():
        sample = load_sample(ds, name, layers=inputs)
        batch = model_inputs([sample], tuple(sample.modalities))
        with torch.no_grad():
            logits = model(batch)[0]  # [K, H, W]
        preds.append((logits.argmax(0).numpy() == 1)[ok])
    return np.concatenate(preds)


def threshold_baseline(train: dict, test: dict) -> list[dict]:
    rows = []
    for name in ("VV", "VH", "NDWI", "MNDWI"):
        f = train[name]
        candidates = np.quantile(f, np.linspace(0.005, 0.995, 400))
        ious = [water_iou(f > th, train["label"]) for th in candidates]
        th = float(candidates[int(np.argmax(ious))])
        rows.append(
            {
                "feature": name,
                "threshold": th,
                "train_iou": float(max(ious)),
                "test_iou": water_iou(test[name] > th, test["label"]),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--inputs", default="s2,s1", help="layers the model reads")
    parser.add_argument("--lr", type=float, default=None, help="override the config's lr")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. model.head.pixel_skip=32 (value parsed as YAML)",
    )

    parser.add_argument("--work", default=None, help="work dir (default: a temp dir)")
    parser.add_argument("--out", default=str(REPO / "bench/results/floods_vs_threshold.md"))
    args = parser.parse_args(argv)

    import torch

    from earthplat.train.finetune import run_finetune

    torch.manual_seed(0)
    work = Path(args.work or tempfile.mkdtemp(prefix="floods-"))
    ds, _windows, _classes, split = build_dataset(work / "data")
    train_names = [n for n, s in split.items() if s in ("train", "val")]
    test_names = [n for n, s in split.items() if s == "test"]
    test_masks: dict[str, np.ndarray] = {}
    train_px, test_px = pixels(ds, train_names), pixels(ds, test_names, test_masks)
    baseline = threshold_baseline(train_px, test_px)
    best = max(baseline, key=lambda r: r["train_iou"])  # chosen on training pixels only

    inputs = {name: INPUTS[name] for name in args.inputs.split(",")}
    overrides = {}
    if args.lr is not None:
        overrides["model.optimizer.lr"] = args.lr
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            parser.error(f"--set {item!r}: write KEY=VALUE, e.g. model.head.pixel_skip=32")
        overrides[key] = yaml.safe_load(value)

    t0 = time.perf_counter()
    result = run_finetune(
        args.config,
        run_dir=work / "run",
        overrides={
            **overrides,
            "data.config.path": str(work / "data"),
            "data.config.inputs": inputs,
            "data.config.split": {"kind": "property", "property": "split"},
            "trainer.max_steps": args.steps,
            "trainer.val_check_interval": max(args.steps // 3, 1),
            "trainer.enable_progress_bar": False,
        },
    )
    minutes = (time.perf_counter() - t0) / 60
    pred = model_predictions(result.model_dir, ds, test_masks, inputs)
    model_iou = water_iou(pred, test_px["label"])
    report = {
        "model": {
            "config": Path(args.config).name,
            "inputs": sorted(inputs),
            "steps": args.steps,
            "minutes": round(minutes, 2),
            "test_iou_water": model_iou,
            "test_iou_water_all_labelled_pixels": float(result.metrics["test/iou_water"]),
            "test_miou": float(result.metrics.get("test/miou", float("nan"))),
        },
        "baseline": baseline,
        "baseline_chosen": best,
        "windows": {"train+val": len(train_names), "test": len(test_names)},
        "test_pixels": int(test_px["label"].size),
    }
    lines = [
        "# Sen1Floods11 water: fine-tuned model vs per-pixel threshold",
        "",
        f"Held-out east half of the chip: {len(test_names)} windows, "
        f"{report['test_pixels']:,} labelled pixels; trained on the west half "
        f"({len(train_names)} windows). Command: `python -m bench.floods_vs_threshold "
        f"--steps {args.steps}` (CPU, 2 threads, {minutes:.1f} min of training).",
        "",
        "| method | chosen on | water IoU (train) | water IoU (held-out) |",
        "|---|---|---:|---:|",
    ]
    for r in baseline:
        mark = " (baseline)" if r is best else ""
        lines.append(
            f"| threshold {r['feature']} > {r['threshold']:.3g}{mark} | train pixels "
            f"| {r['train_iou']:.3f} | {r['test_iou']:.3f} |"
        )
    lines.append(
        f"| **{Path(args.config).stem}**, {' + '.join(sorted(inputs))}, {args.steps} steps "
        "| train windows | "
        f"| **{model_iou:.3f}** |"
    )
    lines += [
        "",
        f"Model / baseline on held-out water IoU: {model_iou / best['test_iou']:.2f}x "
        f"({model_iou:.3f} vs {best['test_iou']:.3f}).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
