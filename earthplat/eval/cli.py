"""``earthplat evaluate``: the thin CLI over :func:`earthplat.eval.evaluate.evaluate_model`.

    earthplat evaluate --model random:nano --benchmarks eurosat,sen1floods11_water \
        --protocols knn,linear,finetune --out eval/nano_random

Importing this module does not import torch.
"""

from __future__ import annotations


def evaluate(
    model: str,
    out: str,
    benchmarks: str = "eurosat",
    protocols: str = "knn,linear",
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
) -> dict:
    """Evaluate a model on named benchmarks and write results.md, results.json and PNGs.

    Args:
        model: ``random:<preset>`` (seeded random init, the baseline), an encoder export dir,
            a pretrain checkpoint, or a fine-tune run dir / task-model export.
        out: Output directory.
        benchmarks: Comma-separated: eurosat, slovenia_landcover, sen1floods11_water.
        protocols: Comma-separated: knn, linear, finetune.
        k: kNN neighbours.
        temperature: kNN vote temperature (weights exp(cosine / T)).
        weight_decays: Linear-probe L2 penalties to choose from on validation.
        patch_size: Encoder patch size (default: the model's, else each benchmark's).
        seed: Seeds the random init, the splits and the probes.
        cache_dir: Where benchmark data is ingested once (default OUT/benchmark_data).
        data_root: The real-data folder (default $EARTHPLAT_SHARED_DATA/real or ../shared).
        limit: EuroSAT patches per class (quick runs).
        batch_size: Windows per encoder batch.
        finetune_steps: Override the fine-tune configs' max_steps.
        plots: Write the confusion-matrix and prediction PNGs.
    """
    import json

    from earthplat.eval.evaluate import evaluate_model
    from earthplat.eval.linear_probe import LinearProbeConfig

    probe = LinearProbeConfig(seed=seed)
    if weight_decays:
        probe = LinearProbeConfig(weight_decays=tuple(weight_decays), seed=seed)
    overrides = {"trainer.max_steps": finetune_steps} if finetune_steps else None
    report = evaluate_model(
        model,
        benchmarks,
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
    summary = {f"{r.benchmark}/{r.protocol}/{r.primary}": round(r.value, 4) for r in report.results}
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}/results.md and {out}/results.json")
    return summary
