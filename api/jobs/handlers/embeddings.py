"""``embeddings``: one pooled encoder embedding per window, for similarity search.

Payload::

    {"model_id": 3 | "model_path": "models/encoder",   # an encoder export or any task model
     "dataset": "default", "windows": [ids] | null,
     "layers": {"sentinel2_l1c": "s2"} | null,          # modality -> layer (default: as
                                                        #   earthplat.inference.model_layers)
     "name": "index name" (default "job-ID"), "batch_size": 16}

Each window gets one vector from ``earthplat.inference.embeddings.embed_windows`` (chips in the
model's training geometry, per-patch features pooled over valid pixels only). The index
(``labeling.similarity``) goes to ``DATA_DIR/projects/ID/embeddings/NAME/``. Windows without the
input layers or without a valid pixel are skipped and logged. Torch is imported here, inside
the worker, never in the API.
"""

from __future__ import annotations

from typing import Any

from api.jobs.context import JobContext, PermanentJobError
from api.jobs.handlers.common import model_path, project_windows


def run(ctx: JobContext) -> dict[str, Any]:
    import torch

    from earthplat.data.dataset import Dataset
    from earthplat.errors import DataError
    from earthplat.inference import model_layers
    from earthplat.inference.embeddings import embed_windows
    from earthplat.nn.task_model import load_task_model
    from labeling.similarity import write_index

    torch.manual_seed(0)
    params = ctx.params
    root, rows = project_windows(ctx, params)
    path, entry = model_path(ctx, params)
    model = load_task_model(path).eval()
    spec = model.spec
    ds = Dataset(root)
    found = None  # the first window holding what the model reads names the layers
    for r in rows:
        try:
            chosen = model_layers(spec, ds, r.to_window(), layers=params.layers)
        except DataError as e:  # not materialised (yet) in this window, or not all of them
            found = found or e
            continue
        layers = {layer: modality for modality, (layer, _) in chosen.items()}
        break
    else:
        raise PermanentJobError(
            f"no window holds the layers the model reads ({found}); materialise them first "
            "(or name them: payload layers={modality: layer})"
        )
    usable = [r for r in rows if all(ds.layer_done(r.name, layer) for layer in layers)]
    for r in rows:
        if r not in usable:
            ctx.log(f"window {r.name}: skipped (lacks {sorted(layers)})", "warning")
    if not usable:
        raise PermanentJobError("no window holds the model's input layers")
    ctx.log(f"embedding {len(usable)} window(s) with {path}")

    def progress(done: int, total: int) -> None:
        ctx.check()
        ctx.progress(done / total, f"{done}/{total} chips")

    result = embed_windows(
        model,
        ds,
        [r.to_window() for r in usable],
        layers,
        batch_size=params.batch_size,
        progress=progress,
    )
    for name in result.empty:
        ctx.log(f"window {name}: skipped (no valid pixel in its input layers)", "warning")
    if not result.names:
        raise PermanentJobError("no window holds a valid input pixel")
    by_name = {r.name: r for r in usable}
    order = [by_name[n] for n in result.names]
    name = params.name or f"job-{ctx.job_id}"
    out_dir = ctx.project_dir() / "embeddings" / name
    write_index(
        out_dir,
        result.vectors,
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
        "dim": int(result.vectors.shape[1]),
        "artifacts": {"vectors.npy": str(out_dir / "vectors.npy")},
    }
