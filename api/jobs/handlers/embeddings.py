"""``embeddings``: one pooled encoder embedding per window, for similarity search.

Payload::

    {"model_id": 3 | "model_path": "models/encoder",   # an encoder export or any task model
     "dataset": "default", "windows": [ids] | null,
     "layers": {"s2": "sentinel2_l1c"} | null,          # default: layers matching the model
     "name": "index name" (default "job-ID"), "batch_size": 16}

Each window is tiled into the model's chips (``FinetuneDataset`` in predict mode: the same
normalisation and band order as training); the per-patch features ([B, D, h, w]) are averaged
over the chip's patches that hold valid pixels (weighted by their valid share), then over the
window's chips: an all-invalid period or chip (a cloudy scene, a missing date) would otherwise
pull every embedding towards the same vector. The index (``labeling.similarity``) goes to
``DATA_DIR/projects/ID/embeddings/NAME/``. Windows without the input layers or without a valid
pixel are skipped and logged. Torch is imported here, inside the worker, never in the API.
"""

from __future__ import annotations

from typing import Any

from api.jobs.context import JobContext, PermanentJobError
from api.jobs.handlers.common import input_layers, model_path, project_windows


def run(ctx: JobContext) -> dict[str, Any]:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from earthplat.data.dataset import Dataset
    from earthplat.data.finetune import (
        FinetuneDataConfig,
        FinetuneDataset,
        collate_finetune,
        inputs_from_batch,
    )
    from earthplat.nn.task_model import load_task_model
    from labeling.similarity import write_index

    torch.manual_seed(0)
    root, rows = project_windows(ctx, ctx.payload)
    path, entry = model_path(ctx, ctx.payload)
    model = load_task_model(path).eval()
    spec = model.spec
    ds = Dataset(root)
    layers: dict[str, str] = {}
    for r in rows:  # the first window holding every modality the model reads names the layers
        layers = input_layers(ds, r.name, spec.inputs, ctx.payload.get("layers"))
        if set(layers.values()) == set(spec.inputs):
            break
    else:
        raise PermanentJobError(
            f"the model reads {sorted(spec.inputs)}; no window has layers of all of them; "
            "materialise them first (or name them: payload layers={layer: modality})"
        )
    usable = [r for r in rows if all(ds.layer_done(r.name, layer) for layer in layers)]
    for r in rows:
        if r not in usable:
            ctx.log(f"window {r.name}: skipped (lacks {sorted(layers)})", "warning")
    if not usable:
        raise PermanentJobError("no window holds the model's input layers")
    cfg = FinetuneDataConfig(
        path=root,
        task="embedding",
        inputs=layers,
        bands={layer: spec.inputs[m] for layer, m in layers.items()},
        chip_size=spec.chip_size,
        num_periods=spec.num_periods,
        batch_size=int(ctx.payload.get("batch_size", 16)),
        split={"kind": "property"},
    )
    data = FinetuneDataset(ds, [r.to_window() for r in usable], cfg, "predict")
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}
    n, bs = len(data), cfg.batch_size
    ctx.log(f"embedding {len(usable)} window(s), {n} chip(s) with {path}")
    with torch.inference_mode():
        for start in range(0, n, bs):
            ctx.check()
            batch = collate_finetune([data[i] for i in range(start, min(start + bs, n))])
            out = model(inputs_from_batch(batch)).float()  # [B, D, h, w] per-patch features
            # pool over patches holding valid pixels only (any period, any modality)
            valid = torch.stack([m["valid"].any(dim=1) for m in batch["modalities"].values()]).any(
                dim=0
            )  # [B, H, W]
            if out.ndim == 4:
                weight = F.adaptive_avg_pool2d(valid[:, None].float(), out.shape[-2:])  # [B,1,h,w]
                total = weight.sum(dim=(-2, -1))  # [B, 1]
                pooled = (out * weight).sum(dim=(-2, -1)) / total.clamp_min(1e-6)
            else:
                total = valid.flatten(1).any(dim=1, keepdim=True).float()
                pooled = out
            for name, vec, w in zip(batch["window"], pooled.numpy(), total[:, 0].numpy()):
                if w <= 0:
                    continue  # an all-invalid chip says nothing about the window
                sums[name] = sums.get(name, 0) + vec * w
                counts[name] = counts.get(name, 0) + w
            ctx.progress(min(start + bs, n) / n, f"{min(start + bs, n)}/{n} chips")
    order = [r for r in usable if r.name in sums]
    for r in usable:
        if r.name not in sums:
            ctx.log(f"window {r.name}: skipped (no valid pixel in its input layers)", "warning")
    if not order:
        raise PermanentJobError("no window holds a valid input pixel")
    vectors = np.stack([sums[r.name] / counts[r.name] for r in order]).astype(np.float32)
    name = ctx.payload.get("name") or f"job-{ctx.job_id}"
    out_dir = ctx.project_dir() / "embeddings" / name
    write_index(
        out_dir,
        vectors,
        [{"id": r.id, "name": r.name} for r in order],
        {
            "model": str(path),
            "model_id": entry.id if entry else None,
            "layers": layers,
            "job_id": ctx.job_id,
        },
    )
    return {
        "index": str(out_dir),
        "windows": len(order),
        "dim": int(vectors.shape[1]),
        "artifacts": {"vectors.npy": str(out_dir / "vectors.npy")},
    }
