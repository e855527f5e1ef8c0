"""``earthplat evaluate``: the thin CLI over :func:`earthplat.eval.evaluate.evaluate_model`.

    earthplat evaluate --model random:nano --benchmarks eurosat,sen1floods11_water \
        --protocols knn,linear,finetune --out eval/nano_random
    earthplat evaluate --model olmoearth:weights/OlmoEarth-v1-Nano --benchmarks eurosat \
        --extra_inputs sentinel2_l1c --out eval/olmoearth_nano   # L1C for its L2A projections

Importing this module does not import torch.
"""

from __future__ import annotations


def evaluate(
    model: str,
    out: str,
    benchmarks: str | None = None,
    protocols: str = "knn,linear",
    train: str | None = None,
    test: str | None = None,
    label: str | None = None,
    layers: dict[str, str] | None = None,
    split_by: str = "grid",
    cell_size_m: float | None = None,
    k: int = 20,
    temperature: float = 0.07,
    weight_decays: list[float] | None = None,
    patch_size: int | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
    data_root: str | None = None,
    limit: int | None = None,
    batch_size: int = 32,
    finetune_steps: int | None = None,
    plots: bool = True,
    extra_inputs: list[str] | None = None,
) -> dict:
    """Evaluate a model on named benchmarks or on your own labelled datasets.

    Writes results.md, results.json and PNGs; every benchmark also gets the baseline rows
    (per-band mean and std with k-NN and logistic regression).

    Args:
        model: random:<preset> (seeded random init), an encoder export dir, a pretrain
            checkpoint, a fine-tune run dir or task-model export, or olmoearth:PATH for
            published OlmoEarth weights (a directory with config.json + weights.pth, or
            olmoearth:hf://allenai/OlmoEarth-v1-Base from the Hugging Face cache).
        out: Output directory.
        benchmarks: Comma-separated named benchmarks: eurosat, slovenia_landcover,
            sen1floods11_water (default: eurosat, unless --train is given).
        protocols: Comma-separated: knn, linear, finetune.
        train: A labelled dataset to train on (instead of named benchmarks).
        test: A labelled dataset to score on (default: a split of --train).
        label: The window property or label layer holding the labels (default: the dataset's
            only class schema, else label).
        layers: Input layers as layer -> modality (default: the dataset's recorded inputs).
        split_by: How --train is split: grid (whole spatial cells) or property (the windows'
            split property says train, val or test).
        cell_size_m: Grid cell size in metres for --split_by grid (default 10000).
        k: kNN neighbours.
        temperature: kNN vote temperature (weights exp(cosine / T)).
        weight_decays: Linear-probe L2 penalties to choose from on validation.
        patch_size: Encoder patch size (default: the model's, else each benchmark's).
        seed: Seeds the random init, the splits and the probes.
        cache_dir: Where benchmark data are ingested once (default OUT/benchmark_data).
        data_root: The real-data folder (default $EARTHPLAT_SHARED_DATA/real or ../shared).
        limit: EuroSAT patches per class (quick runs).
        batch_size: Windows per encoder batch.
        finetune_steps: Override the fine-tune configs' max_steps.
        plots: Write the confusion-matrix and prediction PNGs.
        extra_inputs: Modalities to encode although the weights were not trained on them
            (the encoder's extra_inputs), e.g. sentinel2_l1c for published OlmoEarth weights,
            trained on L2A, on the L1C benchmarks: L1C then runs through the L2A projections,
            which lowers accuracy against the published numbers. Recorded in results.json
            (settings.extra_inputs). Only for trained weights (olmoearth:PATH, an encoder
            export).
    """
    import json
    from pathlib import Path

    from earthplat.errors import EarthplatError
    from earthplat.eval.evaluate import evaluate_model
    from earthplat.eval.linear_probe import LinearProbeConfig

    if test and not train:
        raise EarthplatError("--test needs --train (the labelled dataset to train on)")
    if train and benchmarks:
        raise EarthplatError("give either --benchmarks or --train/--test, not both")
    probe = LinearProbeConfig(seed=seed)
    if weight_decays:
        probe = LinearProbeConfig(weight_decays=tuple(weight_decays), seed=seed)
    overrides = {"trainer.max_steps": finetune_steps} if finetune_steps else None
    chosen: str | list = benchmarks or "eurosat"
    subject = _with_extra_inputs(model, extra_inputs) if extra_inputs else model
    if train:
        from earthplat.eval.custom import dataset_benchmark

        cache = Path(cache_dir) if cache_dir else Path(out) / "benchmark_data"
        chosen = [
            dataset_benchmark(
                train,
                test,
                out_dir=cache / "datasets" / Path(train).name,
                label=label,
                layers=layers,
                split_by=split_by,
                cell_size_m=cell_size_m,
                patch_size=patch_size or 8,
                seed=seed,
            )
        ]
    report = evaluate_model(
        subject,
        chosen,
        protocols,
        out,
        k=k,
        temperature=temperature,
        probe=probe,
        patch_size=patch_size,
        seed=seed,
        cache_dir=cache_dir,
        data_root=data_root,
        limit=limit,
        batch_size=batch_size,
        finetune_overrides=overrides,
        plots=plots,
    )
    if extra_inputs:  # said in the results, beside the encoder config that holds them too
        report.settings["extra_inputs"] = list(subject.encoder.config.extra_inputs)
        report.settings["extra_inputs_note"] = (
            "modalities encoded although the weights were not trained on them: numbers are not "
            "comparable with ones measured on the trained inputs"
        )
        report.write(out)
    summary = {f"{r.benchmark}/{r.protocol}/{r.primary}": round(r.value, 4) for r in report.results}
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}/results.md and {out}/results.json")
    return summary


def _with_extra_inputs(model: str, extra_inputs: list[str]):
    """The ``Embedder`` of trained weights (``olmoearth:PATH``, a published directory or an
    encoder export) that also encodes ``extra_inputs``."""
    from earthplat.errors import EarthplatError
    from earthplat.eval.embeddings import Embedder
    from earthplat.nn.export import load_encoder

    if model.startswith("random:"):
        raise EarthplatError(
            "--extra_inputs is for trained weights (olmoearth:PATH or an encoder export); a "
            "random:<preset> encoder already encodes the benchmarks' inputs"
        )
    encoder = load_encoder(model.removeprefix("olmoearth:"), extra_inputs=tuple(extra_inputs))
    return Embedder(encoder.eval(), model)
