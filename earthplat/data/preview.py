"""A PNG preview of a window layer: one panel per period, rendered with a registry composite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.layer import read_layer_arrays
from earthplat.errors import DataError
from earthplat.sensors import Composite, get_modality


def render_rgb(
    data: np.ndarray, valid: np.ndarray, bands: list[str], composite: Composite
) -> np.ndarray:
    """[C, H, W] stored values -> [H, W, 3] uint8 using the composite's bands and ranges;
    invalid pixels are drawn magenta so missing data is visible, never black-as-data."""
    h, w = data.shape[-2:]
    rgb = np.zeros((h, w, 3), dtype=np.float64)
    index = {b: i for i, b in enumerate(bands)}
    for ch, (expr, (lo, hi)) in enumerate(zip(composite.bands, composite.ranges)):
        parts = expr.split("-")
        missing = [p for p in parts if p not in index]
        if missing:
            raise DataError(
                f"composite {composite.name} needs band(s) {', '.join(missing)}, "
                f"the layer has {', '.join(bands)}"
            )
        value = data[index[parts[0]]].astype(np.float64)
        if len(parts) == 2:
            value = value - data[index[parts[1]]]
        rgb[..., ch] = np.clip((value - lo) / (hi - lo), 0, 1)
    out = (rgb * 255).round().astype(np.uint8)
    out[~valid] = (255, 0, 255)
    return out


def render_preview(
    dataset: Dataset,
    window: str,
    layer: str,
    out: str | Path,
    composite: str | None = None,
    max_cols: int = 6,
) -> Path:
    """Write a grid of the layer's periods as a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ld = read_layer_arrays(dataset, window, layer)
    spec = get_modality(ld.metadata["modality"])
    if not spec.composites:
        raise DataError(f"{spec.name} has no display composite; preview an imagery layer")
    comp = spec.composite(composite) if composite else spec.composites[0]
    t = ld.data.shape[0]
    cols = min(max_cols, t)
    rows = -(-t // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= t:
            continue
        ax.imshow(render_rgb(ld.data[i], ld.valid[i], ld.bands, comp), interpolation="nearest")
        frac = ld.valid[i].mean()
        ax.set_title(
            f"{ld.times[i]:%Y-%m-%d}" + (" (missing)" if frac == 0 else f" {frac:.0%} valid"),
            fontsize=8,
        )
    fig.suptitle(f"{window} / {layer}: {comp.name}", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
