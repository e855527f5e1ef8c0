"""Pretrain on real data on CPU, then probe: does Latent MIM beat the same encoder at init?

    python -m bench.pretrain_probe [--encoder nano] [--steps 1500] [--minutes 25]

1. Ingest the real S2 L1C data of ../shared/data/real (EuroSAT 150 patches, the Slovenia tile,
   the Sen1Floods11 chip) into one dataset and pack it.
2. Pretrain (Latent MIM Lite, random masking) for ``--steps`` steps or ``--minutes`` minutes.
3. Embed with the pretrained encoder and with its own initial weights, and report kNN (k=20,
   cosine, similarity-weighted vote) and linear-probe accuracy on:
   * EuroSAT: 10 classes, one pooled embedding per patch, 10 train / 5 test patches per class
     (the patches are disjoint places);
   * Slovenia land cover: per 4x4-pixel patch, majority class, windows split west/east;
   * Sen1Floods11 water: per 8x8-pixel patch, water if most labelled pixels are, windows
     split north/south.
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


# --- probes ----------------------------------------------------------------------------------
def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 20, tau: float = 0.07) -> float:
    a = torch.nn.functional.normalize(torch.as_tensor(train_x), dim=1)
    b = torch.nn.functional.normalize(torch.as_tensor(test_x), dim=1)
    sim = b @ a.T  # [test, train]
    top, idx = sim.topk(min(k, a.shape[0]), dim=1)
    classes = int(max(train_y.max(), test_y.max())) + 1
    votes = torch.zeros(b.shape[0], classes)
    votes.scatter_add_(1, torch.as_tensor(train_y)[idx], (top / tau).exp())
    return float((votes.argmax(1).numpy() == test_y).mean())


def linear_probe_accuracy(train_x, train_y, test_x, test_y, weight_decay: float = 1e-3) -> float:
    torch.manual_seed(0)
    x, t = (
        torch.as_tensor(train_x, dtype=torch.float32),
        torch.as_tensor(test_x, dtype=torch.float32),
    )
    mean, std = x.mean(0), x.std(0) + 1e-6
    x, t = (x - mean) / std, (t - mean) / std
    classes = int(max(train_y.max(), test_y.max())) + 1
    head = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=200, line_search_fn="strong_wolfe")
    y = torch.as_tensor(train_y)

    def closure():
        opt.zero_grad()
        loss = (
            torch.nn.functional.cross_entropy(head(x), y)
            + weight_decay * head.weight.square().sum()
        )
        loss.backward()
        return loss

    opt.step(closure)
    return float((head(t).argmax(1).numpy() == test_y).mean())


# --- features --------------------------------------------------------------------------------
def _input(ld, device="cpu"):
    from earthplat.nn.encoder import ModalityInput
    from earthplat.sensors import normalize

    data = normalize(ld.data.astype(np.float32), "sentinel2_l1c", tuple(ld.bands))
    data = np.where(ld.valid[:, None], data, 0).astype(np.float32)
    stamps = np.array([[t.day, t.month - 1, t.year] for t in ld.times])
    return {
        "sentinel2_l1c": ModalityInput(
            torch.from_numpy(data)[None],
            torch.from_numpy(ld.valid)[None],
            torch.from_numpy(stamps)[None],
            tuple(ld.bands),
        )
    }


@torch.no_grad()
def eurosat_features(encoder, ds, windows):
    from earthplat.data.layer import read_layer_arrays

    xs = [
        encoder(_input(read_layer_arrays(ds, w, "s2")), patch_size=8).pooled[0].numpy()
        for w in windows
    ]
    return np.stack(xs), np.array([int(w.properties["class_id"]) for w in windows])


@torch.no_grad()
def patch_features(encoder, ds, windows, label_layer, patch, label_fn):
    from earthplat.data.layer import read_layer_arrays

    feats, labels, owner = [], [], []
    for i, w in enumerate(windows):
        fmap = encoder(_input(read_layer_arrays(ds, w, "s2")), patch_size=patch).feature_map()
        lab = read_layer_arrays(ds, w, label_layer)
        h, ww = fmap.shape[2:]
        for r in range(h):
            for c in range(ww):
                block = lab.data[0, 0, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch]
                ok = lab.valid[0, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch]
                y = label_fn(block[ok], ok.size)
                if y is not None:
                    feats.append(fmap[0, :, r, c].numpy())
                    labels.append(y)
                    owner.append(i)
    return np.stack(feats), np.array(labels), np.array(owner)


def majority(values, n):
    if values.size < n / 2:
        return None
    vals, counts = np.unique(values, return_counts=True)
    return int(vals[counts.argmax()])


def water(values, n):
    if values.size < n / 2:
        return None
    return int((values == 1).mean() > 0.5)


def evaluate(encoder, data) -> dict[str, tuple[float, float, str]]:
    out = {}
    ds_e, ws_e = data["eurosat"]
    x, y = eurosat_features(encoder, ds_e, ws_e)
    rank = np.zeros(len(y), dtype=int)
    for c in np.unique(y):
        rank[y == c] = np.arange((y == c).sum())
    tr, te = rank < 10, rank >= 10
    out["EuroSAT (10 classes)"] = (
        knn_accuracy(x[tr], y[tr], x[te], y[te]),
        linear_probe_accuracy(x[tr], y[tr], x[te], y[te]),
        f"{tr.sum()}/{te.sum()}",
    )
    for name, key, layer, patch, fn, axis in (
        ("Slovenia land cover (patch 4)", "slovenia", "lulc", 4, majority, 0),
        ("Sen1Floods11 water (patch 8)", "floods", "label", 8, water, 1),
    ):
        ds, ws = data[key]
        x, y, owner = patch_features(encoder, ds, ws, layer, patch, fn)
        coord = np.array([w.bounds[axis] for w in ws])[owner]  # col (west/east), row (N/S)
        tr = coord < np.median(coord)
        te = ~tr
        keep = np.isin(y, np.unique(y[tr]))  # classes seen in training only
        out[name] = (
            knn_accuracy(x[tr], y[tr], x[te & keep], y[te & keep]),
            linear_probe_accuracy(x[tr], y[tr], x[te & keep], y[te & keep]),
            f"{tr.sum()}/{(te & keep).sum()}",
        )
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
    from earthplat.data.recipes import ingest_eurosat, ingest_sen1floods11, ingest_slovenia
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
        ds_e, ws_e, _ = ingest_eurosat(real / "eurosat_ms_subset", tmp / "all")
        ds_s, ws_s = ingest_slovenia(real / "s2_slovenia_eolearn", tmp / "all")
        ds_f, ws_f = ingest_sen1floods11(real / "sen1floods11_spain", tmp / "all")
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
        sets = {"eurosat": (ds_e, ws_e), "slovenia": (ds_s, ws_s), "floods": (ds_f, ws_f)}
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
