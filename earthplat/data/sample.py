"""Reading a window's layers into a ``Sample`` (the types and the value preparation live in
``earthplat.batch``, the one home of what models are fed)."""

from __future__ import annotations

from earthplat.batch import ModalityData, Sample, prepare_modality, timestamps_of
from earthplat.data.dataset import Dataset
from earthplat.data.layer import read_layer_arrays
from earthplat.data.window import Window
from earthplat.sensors import get_modality


def load_sample(
    dataset: Dataset,
    window: Window | str,
    layers: dict[str, str] | None = None,
    *,
    normalize: bool = True,
) -> Sample:
    """Read a window's layers into a ``Sample``; ``layers`` maps layer name -> modality
    (default: every finished layer, keyed by its modality)."""
    name = window.name if isinstance(window, Window) else window
    sample = Sample(name)
    for layer in layers or dataset.layers(window):
        ld = read_layer_arrays(dataset, window, layer)
        modality = get_modality(ld.metadata["modality"])
        data = prepare_modality(ld.data, ld.valid, modality, ld.bands, normalize=normalize)
        sample.modalities[modality.name] = ModalityData(
            data, ld.valid, ld.bands, timestamps_of(ld.times)
        )
    return sample
