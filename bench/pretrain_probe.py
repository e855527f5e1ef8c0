"""Pretrain on real data on CPU, then probe: does Latent MIM beat the same encoder at init?

    python -m bench.pretrain_probe [--encoder nano] [--steps 1500] [--minutes 25]

1. Ingest the real S2 L1C data of ../shared/data/real (EuroSAT 150 patches, the Slovenia tile,
   the Sen1Floods11 chip) into one dataset and pack it.
2. Pretrain (Latent MIM Lite, random masking) for ``--steps`` steps or ``--minutes`` minutes.
3. Embed with the pretrained encoder and with its own initial weights, and report kNN (k=20,
   cosine, temperature-weighted vote) and linear-probe accuracy on the ``earthplat.eval``
   benchmarks (leak-free spatial train/val/test splits; kNN uses train + val, the linear probe
   picks its weight decay on val and refits on train + val):
   * EuroSAT: 10 classes, one pooled embedding per patch, split per class;
   * Slovenia land cover: per 4x4-pixel patch, majority class;
   * Sen1Floods11 water: per 8x8-pixel patch, water if most labelled pixels are.
Writes bench/results/pretrain_probe.md and bench/results/pretrain_loss.png.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.report import publish

REPO = Path(__file__).resolve().parents[1]


def shared_real() -> Path:
    root = os.environ.get("EARTHPLAT_SHARED_DATA")
    return Path(root) / "real" if root else REPO.parent / "shared" / "data" / "real"


# --- probes (earthplat.eval) -------------------------------------------------------------------
PROBE_BENCHMARKS = {
    "eurosat": "EuroSAT (10 classes)",
    "slovenia_landcover": "Slovenia land cover (patch 4)",
    "sen1floods11_water": "Sen1Floods11 water (patch 8)",
}


def evaluate(encoder, data) -> dict[str, tuple[float, float, str]]:
    """kNN (k=20, cosine, temperature-weighted) and linear-probe accuracy of a frozen encoder
    on each benchmark's spatial test split (``earthplat.eval``); ``data``: name -> loaded
    ``BenchmarkData``."""
    from earthplat.eval.embeddings import Embedder
    from earthplat.eval.frozen import extract_features, run_knn, run_linear
    from earthplat.eval.metrics import confusion_matrix, scores

    embedder = Embedder(encoder.eval(), "bench")
    out = {}
    for name, title in PROBE_BENCHMARKS.items():
        bench = data[name]
        feats = extract_features(embedder, bench)
        k = len(bench.classes)
        acc = [
            scores(confusion_matrix(p.true, p.pred, k))["accuracy"]
            for p in (run_knn(feats, k), run_linear(feats, k))
        ]
        n_train = len(feats.y["train"]) + len(feats.y["val"])
        out[title] = (acc[0], acc[1], f"{n_train}/{len(feats.y['test'])}")
    return out


def loss_plot(run_dir: Path, out: Path) -> list[tuple[int, float]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from earthplat.traincore.metrics import read_metrics

    curve = [(s, m["train/mim"]) for s, m in read_metrics(run_dir).items() if "train/mim" in m]
    val = [(s, m["val/mim"]) for s, m in read_metrics(run_dir).items() if "val/mim" in m]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(*zip(*curve), label="train (patch discrimination)", lw=1)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="nano")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--minutes", type=float, default=25.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", default=str(REPO / "bench/results/pretrain_probe.md"))
    args = p.parse_args()

    from earthplat.data.pack import pack_dataset
    from earthplat.data.pretrain import PretrainDataConfig, PretrainDataModule
    from earthplat.data.pretrain import PretrainSamplingConfig as Sampling
    from earthplat.eval.recipes import ingest_eurosat, ingest_sen1floods11, ingest_slovenia
    from earthplat.nn.registry import ENCODER_PRESETS
    from earthplat.train.masking import MaskingConfig
    from earthplat.train.pretrain import LatentMIMModule
    from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
    from earthplat.traincore.trainer import TrainerConfig, fit

    real = shared_real()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        # one dataset directory for all three (window names do not collide)
        ds_e, _, _ = ingest_eurosat(real / "eurosat_ms_subset", tmp / "all")
        ingest_slovenia(real / "s2_slovenia_eolearn", tmp / "all")
        ingest_sen1floods11(real / "sen1floods11_spain", tmp / "all")
        info = pack_dataset(ds_e, tmp / "all.h5", layers={"s2": "sentinel2_l1c"})
        prep_s = time.perf_counter() - t0

        torch.manual_seed(0)
        enc_cfg = ENCODER_PRESETS[args.encoder](modalities=("sentinel2_l1c",))
        module = LatentMIMModule(
            encoder=enc_cfg,
            masking=MaskingConfig("random"),
            optimizer=OptimizerConfig(lr=2e-3, weight_decay=0.02),
            scheduler=SchedulerConfig(warmup_steps=50),
        )
        initial = copy.deepcopy(module.encoder).eval()
        data = PretrainDataModule(
            PretrainDataConfig(
                path=str(tmp / "all.h5"),
                batch_size=args.batch_size,
                num_workers=1,
                val_fraction=0.05,
                sampling=Sampling(
                    min_patch_size=2, max_patch_size=8, token_budget=512, max_periods=3
                ),
            )
        )
        run_dir = tmp / "run"
        cfg = TrainerConfig(
            run_dir=str(run_dir),
            accelerator="cpu",
            devices=1,
            max_steps=args.steps,
            val_check_interval=100,
            limit_val_batches=4,
            log_every_n_steps=10,
            enable_progress_bar=False,
        )
        t0 = time.perf_counter()
        fit(cfg, module, data, max_time={"minutes": args.minutes})
        train_s = time.perf_counter() - t0
        png = Path(args.out).with_name("pretrain_loss.png")
        curve = loss_plot(run_dir, png)
        import json

        throughput = json.loads((run_dir / "throughput.json").read_text())
        trained = module.encoder.eval()
        from earthplat.eval.benchmarks import load_benchmark

        sets = {
            n: load_benchmark(n, cache_dir=tmp / "bench", data_root=real) for n in PROBE_BENCHMARKS
        }
        before, after = evaluate(initial, sets), evaluate(trained, sets)

    first = np.mean([v for _, v in curve[:5]])
    last = np.mean([v for _, v in curve[-5:]])
    lines = [
        f"encoder {args.encoder} (S2 L1C only), {len(curve) and curve[-1][0] + 1} steps in "
        f"{train_s / 60:.1f} min on CPU ({throughput.get('tokens_per_sec', 0):.0f} tokens/s); "
        f"pack: {info.num_windows} windows, data prep "
        f"{prep_s:.0f} s",
        f"train loss (patch discrimination): first 5 logs {first:.3f} -> last 5 logs {last:.3f}",
        "",
        "| task | train/test | kNN init | kNN pretrained | linear init | linear pretrained |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for task in before:
        kb, lb, split = before[task]
        ka, la, _ = after[task]
        lines.append(f"| {task} | {split} | {kb:.3f} | {ka:.3f} | {lb:.3f} | {la:.3f} |")
    lines += ["", f"loss curve: {png.name}"]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
