"""The fine-tuning protocol: train a task model on a benchmark through
``earthplat.train.finetune.run_finetune`` and score it on the benchmark's test windows.

The run uses the benchmark's config (``earthplat/configs/eval/finetune_NAME.yaml``) on the
benchmark's own cache dataset, with the *same* train/val/test windows as the frozen protocols:
each window gets a ``split`` property and the run reads its split from it. The model to
evaluate initialises the backbone (``random:<preset>`` = that preset at random init).

The test score is computed here, on whole test windows (classification: the centred chip the
model was trained on), so every protocol is scored on the same windows; the run's own
``metrics.json`` is kept in the row's settings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from earthplat.errors import EarthplatError
from earthplat.eval.benchmarks import BenchmarkData
from earthplat.eval.embeddings import Embedder
from earthplat.eval.frozen import Predictions


def finetune_config_path(data: BenchmarkData) -> Path:
    from earthplat.configs import config_path

    name = data.benchmark.finetune_config
    if not name:
        raise EarthplatError(f"benchmark {data.benchmark.name} has no fine-tune config")
    return config_path("eval", name)


def mark_splits(data: BenchmarkData) -> None:
    """Write each window's split as its ``split`` property into the cache dataset."""
    from dataclasses import replace

    marked = [
        replace(w, properties={**w.properties, "split": s})
        for s, ws in data.windows.items()
        for w in ws
    ]
    data.dataset.write_windows(marked, mode="merge")


def initial_encoder(model: str | Embedder, seed: int, out: Path) -> str:
    """The run's backbone: the evaluated model's encoder, exported to ``out/init_encoder`` and
    loaded as ``pretrained`` (so ``random:<preset>`` starts from exactly the seeded random
    weights the frozen protocols embed with, and a fine-tuned model from its encoder)."""
    from earthplat.eval.embeddings import load_embedder
    from earthplat.nn.export import export_encoder

    embedder = model if isinstance(model, Embedder) else load_embedder(model, seed=seed)
    extra = {"source": embedder.name, "seed": seed}
    path = export_encoder(embedder.encoder, out / "init_encoder", extra=extra)
    return str(path)


def _window_inputs(model, samples: list, chip: int | None) -> dict:
    """Samples as the model's inputs: its bands in its order, its period count, optionally the
    centred ``chip`` x ``chip`` crop."""
    from earthplat.batch import ModalityData, Sample, collate, to_model_inputs

    spec = model.spec
    cropped = []
    for s in samples:
        mods = {}
        for name, m in s.modalities.items():
            d, v = m.data, m.valid
            if chip is not None:
                h, w = d.shape[-2:]
                r0, c0 = max(0, (h - chip) // 2), max(0, (w - chip) // 2)
                d, v = (
                    d[..., r0 : r0 + chip, c0 : c0 + chip],
                    v[..., r0 : r0 + chip, c0 : c0 + chip],
                )
            mods[name] = ModalityData(d, v, m.bands, m.timestamps)
        cropped.append(Sample(s.window, mods))
    missing = [m for m in spec.inputs if m not in cropped[0].modalities]
    if missing:
        raise EarthplatError(f"the benchmark has no {missing[0]} input, which the model needs")
    return to_model_inputs(collate(cropped), spec.inputs, spec.num_periods)


def predict_windows(model, data: BenchmarkData, split: str = "test", batch_size: int = 16):
    """Class per test window ([N]) or per pixel ([N, H, W]) from a task model."""
    import torch

    samples = data.samples[split]
    chip = model.spec.chip_size if data.benchmark.task == "classification" else None
    out = []
    with torch.no_grad():
        for i in range(0, len(samples), batch_size):
            logits = model(_window_inputs(model, samples[i : i + batch_size], chip))
            out.append(logits.argmax(1).numpy())
    return np.concatenate(out).astype(np.int64)


def run_finetune_protocol(
    model: str | Embedder,
    data: BenchmarkData,
    *,
    out: Path,
    seed: int = 0,
    overrides: dict | None = None,
) -> tuple[Predictions, int, str]:
    """Fine-tune on ``data`` and predict its test windows; returns the predictions, the number
    of training units (train + val windows, or their labelled pixels) and the unit."""
    try:
        from earthplat.train.finetune import run_finetune
    except ImportError as e:
        raise EarthplatError(
            f"the finetune protocol needs earthplat.train.finetune.run_finetune ({e})"
        ) from e
    from earthplat.nn.task_model import load_task_model

    config = finetune_config_path(data)
    mark_splits(data)
    run_overrides = {
        "data.config.path": str(data.dataset.root),
        "data.config.classes": data.classes,
        "data.config.split": {"kind": "property", "property": "split"},
        "seed_everything": seed,
        "trainer.seed": seed,
        **data.benchmark.finetune_overrides,
        **(overrides or {}),
    }
    # one run dir per (model, seed): a re-run resumes its own run, never another model's
    import hashlib

    ref = model.name if isinstance(model, Embedder) else model
    tag = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(ref).name or ref)
    digest = hashlib.sha1(str(Path(ref).resolve() if Path(ref).exists() else ref).encode())
    run_dir = Path(out) / f"{tag}_{digest.hexdigest()[:8]}_seed{seed}"
    run_overrides["model.backbone.pretrained"] = initial_encoder(model, seed, run_dir)
    result = run_finetune(str(config), str(run_dir), run_overrides)
    task_model = load_task_model(result.model_dir or result.run_dir).eval()
    pred = predict_windows(task_model, data)
    settings = {
        "config": config.name,
        "run_dir": str(result.run_dir),
        "run_metrics": {k: round(float(v), 4) for k, v in (result.metrics or {}).items()},
        "chip_size": task_model.spec.chip_size,
    }
    if data.benchmark.task == "classification":
        n_train = data.count("train") + data.count("val")
        return Predictions(data.labels["test"], pred, None, settings), n_train, "window"
    truth = data.labels["test"]
    keep = truth >= 0
    n_train = int((data.labels["train"] >= 0).sum() + (data.labels["val"] >= 0).sum())
    return Predictions(truth[keep], pred[keep], pred, settings), n_train, "pixel"
