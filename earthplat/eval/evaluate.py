"""``evaluate_model``: run protocols on benchmarks and write the report and figures.

    report = evaluate_model("random:nano", ["eurosat"], ["knn", "linear"], "out/")
    report.value("eurosat", "knn")   # accuracy

Frozen protocols (``knn``, ``linear``) embed each benchmark once and share the features; the
``finetune`` protocol trains a task model through ``earthplat.train.finetune.run_finetune``
(see ``earthplat.eval.finetune``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from earthplat.errors import EarthplatError
from earthplat.eval.benchmarks import BenchmarkData, get_benchmark, load_benchmark
from earthplat.eval.embeddings import Embedder
from earthplat.eval.linear_probe import LinearProbeConfig
from earthplat.eval.metrics import confusion_matrix, per_class, scores
from earthplat.eval.report import EvalReport, EvalResult

PROTOCOLS = ("knn", "linear", "finetune")
FROZEN = ("knn", "linear")


def _names(value: str | list[str] | tuple[str, ...]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [v.strip() for v in items if v.strip()]


def primary_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "miou"


def _figures(data: BenchmarkData, protocol: str, preds, cm, out: Path, max_items: int) -> dict:
    from earthplat.eval import plots

    name = _slug(data.benchmark.name)
    layer = next(iter(data.benchmark.layers))
    labels = [c["label"] for c in data.classes]
    files = {"confusion": f"{name}_{protocol}_confusion.png"}
    plots.confusion_png(cm, labels, out / files["confusion"], f"{name} / {protocol}")
    test = data.windows["test"]
    files["predictions"] = f"{name}_{protocol}_predictions.png"
    title = f"{name} / {protocol}: test windows"
    if data.benchmark.task == "classification":
        # round-robin over the classes so every class shows
        rank = np.zeros(len(preds.true), dtype=int)
        for c in np.unique(preds.true):
            rank[preds.true == c] = np.arange((preds.true == c).sum())
        order = np.lexsort((preds.true, rank))[: max_items * 6]
        images = [plots.true_color(data.dataset, test[i], layer) for i in order]
        plots.chips_png(
            images, preds.true[order], preds.pred[order], labels, out / files["predictions"], title
        )
    else:
        # the windows with the most labelled pixels show the most
        order = np.argsort(-(data.labels["test"] >= 0).sum((1, 2)), kind="stable")[:max_items]
        images = [plots.true_color(data.dataset, test[i], layer) for i in order]
        h, w = data.labels["test"].shape[1:]
        maps = [
            np.pad(
                preds.maps[i],
                ((0, h - preds.maps.shape[1]), (0, w - preds.maps.shape[2])),
                constant_values=-1,
            )
            for i in order
        ]
        truth = [data.labels["test"][i] for i in order]
        plots.segmentation_png(images, truth, maps, data.classes, out / files["predictions"], title)
    return files


def _result(data: BenchmarkData, name: str, protocol: str, preds, cm, n_train: int, unit: str):
    """One report row: scores, per-class scores and the confusion matrix of ``preds``."""
    return EvalResult(
        benchmark=name,
        protocol=protocol,
        metrics=scores(cm),
        primary=primary_metric(data.benchmark.task),
        n_train=n_train,
        n_test=len(preds.true),
        unit=unit,
        settings=preds.settings,
        confusion=cm.tolist(),
        per_class=per_class(cm, [c["label"] for c in data.classes]),
    )


def _probe(data: BenchmarkData, feats, method: str, patch: int, *, k, temperature, probe):
    """kNN (``knn``) or the linear probe (``linear``) on frozen features: (predictions,
    training units)."""
    from earthplat.eval import frozen

    unit_patch = patch if data.benchmark.task == "segmentation" else 1
    if method == "knn":
        preds = frozen.run_knn(
            feats, len(data.classes), k=k, temperature=temperature, patch=unit_patch
        )
    else:
        preds = frozen.run_linear(feats, len(data.classes), config=probe, patch=unit_patch)
    return preds, len(feats.y["train"]) + len(feats.y["val"])


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def evaluate_model(
    model: str | Embedder,
    benchmarks: str | list[str | BenchmarkData] = "eurosat",
    protocols: str | list[str] = ("knn", "linear"),
    out_dir: str | Path | None = None,
    *,
    k: int = 20,
    temperature: float = 0.07,
    probe: LinearProbeConfig | None = None,
    patch_size: int | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    limit: int | None = None,
    batch_size: int = 32,
    finetune_overrides: dict | None = None,
    plots: bool = True,
    max_plot_items: int = 4,
    baseline: bool = True,
) -> EvalReport:
    """Evaluate ``model`` (``random:<preset>``, an encoder export dir, a pretrain checkpoint, a
    fine-tune run / task-model dir, or an already loaded ``Embedder``) on ``benchmarks`` with
    ``protocols``.

    ``k``/``temperature``: kNN; ``probe``: linear-probe settings; ``patch_size``: encoder patch
    size (default: the task model's, else each benchmark's); ``cache_dir``: where benchmark
    data is ingested once (default ``out_dir/benchmark_data``); ``limit``: EuroSAT patches per
    class; ``finetune_overrides``: dotted overrides for every fine-tune run (e.g. ``{"trainer.
    max_steps": 20}``). ``benchmarks`` may also hold loaded ``BenchmarkData`` (a user's
    datasets: ``earthplat.eval.custom.dataset_benchmark``). ``baseline`` adds the band-statistics
    rows (``earthplat.eval.baseline``) to every benchmark. Writes results.md, results.json and
    PNGs into ``out_dir`` when given.
    """
    import torch

    items = (
        _names(benchmarks)
        if isinstance(benchmarks, str)
        else [b if isinstance(b, BenchmarkData) else str(b).strip() for b in benchmarks]
    )
    proto_names = _names(protocols)
    unknown = [p for p in proto_names if p not in PROTOCOLS]
    if unknown or not proto_names:
        raise EarthplatError(
            f"unknown protocols {unknown}; choose from {', '.join(PROTOCOLS)} (--protocols)"
        )
    for b in items:
        if isinstance(b, str):
            get_benchmark(b)  # fail on a typo before any work
    if not items:
        raise EarthplatError("give at least one benchmark (--benchmarks) or dataset (--train)")
    bench_names = [b if isinstance(b, str) else b.benchmark.name for b in items]
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else (out or Path(".")) / "benchmark_data"
    probe = probe or LinearProbeConfig(seed=seed)
    torch.manual_seed(seed)

    embedder = None
    if any(p in FROZEN for p in proto_names) or isinstance(model, Embedder):
        from earthplat.eval.embeddings import load_embedder

        extra = sorted(
            {m for b in items if isinstance(b, BenchmarkData) for m in b.benchmark.layers.values()}
        )
        embedder = (
            model
            if isinstance(model, Embedder)
            else load_embedder(model, seed=seed, extra_modalities=extra)
        )
    report = EvalReport(
        model.name if isinstance(model, Embedder) else model,
        settings={
            "seed": seed,
            "benchmarks": bench_names,
            "protocols": proto_names,
            "limit_per_class": limit,
            "encoder": asdict(embedder.encoder.config) if embedder else None,
        },
        out_dir=str(out) if out else None,
    )
    for item in items:
        t0 = time.perf_counter()
        if isinstance(item, BenchmarkData):
            data, name = item, item.benchmark.name
        else:
            name = item
            data = load_benchmark(
                name, cache_dir=cache, data_root=data_root, limit=limit, seed=seed
            )
        bench = data.benchmark
        report.settings[f"{name}_split"] = {s: data.count(s) for s in ("train", "val", "test")}
        if data.notes:
            report.settings[f"{name}_data"] = data.notes

        def add(protocol: str, preds, n_train: int, unit: str, data=data, name=name) -> None:
            cm = confusion_matrix(preds.true, preds.pred, len(data.classes))
            result = _result(data, name, protocol, preds, cm, int(n_train), unit)
            if out is not None and plots:
                result.plots = _figures(data, protocol, preds, cm, out, max_plot_items)
            report.results.append(result)

        knobs = dict(k=k, temperature=temperature, probe=probe)
        if baseline:
            from earthplat.eval.baseline import band_stat_features

            stats = band_stat_features(data)
            for protocol, method in (("baseline_knn", "knn"), ("baseline_logreg", "linear")):
                preds, n_train = _probe(data, stats, method, bench.patch_size, **knobs)
                preds.settings["features"] = "per-band mean and std of valid pixels"
                add(protocol, preds, n_train, stats.unit)
        feats = None
        for protocol in proto_names:
            if protocol in FROZEN:
                from earthplat.eval import frozen

                p = patch_size or embedder.patch_size or bench.patch_size
                if feats is None:
                    feats = frozen.extract_features(
                        embedder, data, patch_size=p, batch_size=batch_size
                    )
                preds, n_train = _probe(data, feats, protocol, p, **knobs)
                preds.settings["patch_size"] = p
                add(protocol, preds, n_train, feats.unit)
            else:
                from earthplat.eval.finetune import run_finetune_protocol

                preds, n_train, unit = run_finetune_protocol(
                    model,
                    data,
                    out=(out or cache) / "finetune" / _slug(name),
                    seed=seed,
                    overrides=finetune_overrides,
                )
                add(protocol, preds, n_train, unit)
        report.settings[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        report.write(out)
    return report
