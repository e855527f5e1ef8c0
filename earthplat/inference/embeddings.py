"""One embedding per dataset window: what similarity search and clustering index.

``embed_windows`` tiles each window into the model's chips (``FinetuneDataset`` in predict
mode, so normalisation and band order are the training ones), runs the model, and pools its
per-patch features ([B, D, h, w]) with ``pool_valid``: patches are weighted by the share of
their pixels that are valid in any period of any modality, then chips by their total weight.
An all-invalid period or chip (a cloudy scene, a missing date, the padding past a window's
edge) would otherwise pull every embedding towards the same vector. A model with window
outputs ([B, D]) counts each chip that holds a valid pixel once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from earthplat.errors import EarthplatError


def pool_valid(features: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``features`` [B, D, h, w] (or [B, D]) and ``valid`` [B, H, W] -> (pooled [B, D],
    weight [B]): the valid-share-weighted mean over patches and each sample's total weight
    (0 when it has no valid pixel; its pooled vector is then meaningless)."""
    if features.ndim == 2:
        return features, valid.flatten(1).any(dim=1).float()
    weight = F.adaptive_avg_pool2d(valid[:, None].float(), features.shape[-2:])  # [B,1,h,w]
    total = weight.sum(dim=(-2, -1))  # [B, 1]
    pooled = (features * weight).sum(dim=(-2, -1)) / total.clamp_min(1e-6)
    return pooled, total[:, 0]


@dataclass
class WindowEmbeddings:
    names: list[str]
    """Windows that got a vector, in the order asked."""
    vectors: np.ndarray
    """[N, D] float32, row i for ``names[i]``."""
    empty: list[str] = field(default_factory=list)
    """Windows skipped because no input pixel of theirs is valid."""


def embed_windows(
    model: torch.nn.Module,
    dataset,
    windows: Sequence,
    layers: dict[str, str],
    *,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> WindowEmbeddings:
    """Embed ``windows`` of ``dataset`` (an ``earthplat.data.dataset.Dataset``) with a task
    model (an embedding model, or any model whose output is a feature map or a vector).
    ``layers`` maps the dataset's layer names to the modalities the model reads;
    ``progress(done, total)`` is called after each batch of chips (it may raise to stop)."""
    from earthplat.batch import collate, to_model_inputs
    from earthplat.data.finetune import FinetuneDataConfig, FinetuneDataset

    spec = model.spec
    unread = sorted(set(layers.values()) - set(spec.inputs))
    if unread:
        raise EarthplatError(
            f"layers {layers} map to {unread}, which the model does not read (it reads "
            f"{sorted(spec.inputs)})"
        )
    missing = set(spec.inputs) - set(layers.values())
    if missing and (spec.task != "embedding" or not layers):  # an encoder reads any subset
        raise EarthplatError(
            f"the model reads {sorted(spec.inputs)} but the layers {layers} lack "
            f"{sorted(missing)}; map a layer to each (layers={{layer: modality}})"
        )
    cfg = FinetuneDataConfig(
        path=str(dataset.root),
        task="embedding",
        inputs=layers,
        bands={layer: spec.inputs[m] for layer, m in layers.items()},
        chip_size=spec.chip_size,
        num_periods=spec.num_periods,
        batch_size=batch_size,
        split={"kind": "property"},
    )
    data = FinetuneDataset(dataset, list(windows), cfg, "predict")
    sums: dict[str, np.ndarray] = {}
    weights: dict[str, float] = {}
    n = len(data)
    model.eval()
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = collate([data[i] for i in range(start, min(start + batch_size, n))])
            out = model(to_model_inputs(batch)).float()
            valid = torch.stack([m.valid.any(dim=1) for m in batch.modalities.values()]).any(
                dim=0
            )  # [B, H, W]: valid in any period of any modality
            pooled, weight = pool_valid(out, valid)
            for name, vec, w in zip(batch.window, pooled.numpy(), weight.numpy()):
                if w > 0:
                    sums[name] = sums.get(name, 0) + vec * float(w)
                    weights[name] = weights.get(name, 0.0) + float(w)
            if progress is not None:
                progress(min(start + batch_size, n), n)
    names = [w.name for w in windows if w.name in sums]
    empty = [w.name for w in windows if w.name not in sums]
    dim = int(spec.num_outputs)
    vectors = (
        np.stack([sums[k] / weights[k] for k in names]).astype(np.float32)
        if names
        else np.zeros((0, dim), np.float32)
    )
    return WindowEmbeddings(names, vectors, empty)
