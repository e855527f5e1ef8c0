"""Which windows fine-tune: those holding every input layer and the label, split by the
config's ``SplitConfig`` (``earthplat.data.splits``)."""

from __future__ import annotations

from earthplat.data.dataset import Dataset
from earthplat.data.finetune.config import FinetuneDataConfig
from earthplat.data.window import Window
from earthplat.errors import DataError


def usable_windows(dataset: Dataset, config: FinetuneDataConfig) -> list[Window]:
    """The windows of ``config.group`` that hold every input layer and the label layer/boxes."""
    windows = dataset.windows(group=config.group)
    needed = list(config.inputs)
    lab = config.label
    if lab is not None and lab.kind == "layer":
        needed.append(lab.name)
    out = [w for w in windows if all(dataset.layer_done(w, layer) for layer in needed)]
    if lab is not None and lab.kind == "geojson":
        out = [w for w in out if dataset.fs.exists(dataset.layer_path(w, lab.name, ".geojson"))]
    if not out:
        raise DataError(
            f"no window of {dataset.root} (group {config.group or 'any'}) holds all of the "
            f"layers {needed}; ingest them or fix inputs/label"
        )
    return out


def split_dataset(dataset: Dataset, config: FinetuneDataConfig) -> dict[str, list[Window]]:
    """``{split: windows}`` of the usable windows, by ``config.split``."""
    from earthplat.data.splits import property_split, spatial_split

    windows = usable_windows(dataset, config)
    sp = config.split
    if sp.kind == "property":
        return property_split(windows, property=sp.property)
    return spatial_split(
        windows,
        cell_size_m=sp.cell_size_m,
        fractions=sp.fractions,
        seed=sp.seed,
        buffer_m=sp.buffer_m,
    )
