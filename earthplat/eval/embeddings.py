"""Frozen embeddings of benchmark samples: pooled per window, or per patch as a feature map.

``load_embedder`` resolves a model reference (``random:<preset>``, an encoder export, a
pretrain checkpoint, or a fine-tuned task model) to the encoder inside it; ``embed_pooled``
and ``embed_patches`` run it batched and without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from earthplat.batch import Sample
from earthplat.errors import EarthplatError

if TYPE_CHECKING:
    import torch

RANDOM_MODALITIES = ("sentinel2_l1c", "sentinel1")
"""Modalities of a ``random:<preset>`` encoder: what the benchmarks feed it."""


@dataclass
class Embedder:
    """A frozen encoder plus what is known about how it was trained."""

    encoder: torch.nn.Module
    """An ``earthplat.nn.encoder.Encoder``."""
    name: str
    """The reference it was loaded from."""
    patch_size: int | None = None
    """The task model's patch size when known; benchmarks otherwise use their own."""
    task_model: torch.nn.Module | None = None
    """The fine-tuned ``TaskModel`` when the reference was one (its encoder is ``encoder``)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        """What the encoder is fed: its modalities and those it accepts on request
        (``EncoderConfig.extra_inputs``: L1C samples for published L2A weights)."""
        config = self.encoder.config
        return tuple(dict.fromkeys([*config.modalities, *getattr(config, "extra_inputs", ())]))


def _encoder_in(module: torch.nn.Module) -> torch.nn.Module:
    from earthplat.nn.encoder import Encoder

    for m in module.modules():
        if isinstance(m, Encoder):
            return m
    raise EarthplatError(
        f"{type(module).__name__} holds no earthplat Encoder: kNN and linear probes need one "
        "(timm backbones can only be evaluated with the finetune protocol)"
    )


def load_embedder(
    reference: str,
    *,
    seed: int = 0,
    map_location: str = "cpu",
    extra_modalities: list[str] | tuple[str, ...] = (),
) -> Embedder:
    """Resolve ``reference``: ``random:<preset>`` (the preset at a seeded random init, with
    S2 L1C and S1 inputs plus ``extra_modalities``), an encoder export dir, a pretrain
    ``.ckpt``, or a fine-tune run dir, task-model export or fine-tune checkpoint."""
    import torch

    if reference.startswith("random:"):
        from earthplat.nn.registry import ENCODER_PRESETS

        preset = reference.split(":", 1)[1]
        if preset not in ENCODER_PRESETS:
            raise EarthplatError(
                f"unknown encoder preset {preset!r} in {reference!r}; "
                f"known: {', '.join(ENCODER_PRESETS)}"
            )
        torch.manual_seed(seed)
        mods = tuple(dict.fromkeys([*RANDOM_MODALITIES, *extra_modalities]))
        encoder = ENCODER_PRESETS[preset](modalities=mods).build()
        return Embedder(encoder.eval().to(map_location), reference)
    if reference.startswith("olmoearth:"):  # published OlmoEarth weights: a dir or hf://id
        from earthplat.nn.export import load_encoder

        return Embedder(load_encoder(reference.split(":", 1)[1], map_location).eval(), reference)
    path = Path(reference)
    if not path.exists():
        raise EarthplatError(
            f"model {reference!r} does not exist; give an encoder export dir, a checkpoint, "
            "a fine-tune run dir, olmoearth:<published dir or hf://id>, or random:<preset>"
        )
    from earthplat.nn.export import CONFIG, WEIGHTS, encoder_from_checkpoint, load_encoder

    if path.is_dir() and (path / WEIGHTS).exists() and (path / CONFIG).exists():
        return Embedder(load_encoder(path, map_location).eval(), reference)
    if path.is_file() and path.suffix == ".ckpt":
        hparams = torch.load(path, map_location="cpu", weights_only=True).get(
            "hyper_parameters", {}
        )
        if "encoder" in hparams and "task_spec" not in hparams:
            return Embedder(encoder_from_checkpoint(path).eval().to(map_location), reference)
    return embedder_from_task_model(reference, map_location=map_location)


def embedder_from_task_model(reference: str, *, map_location: str = "cpu") -> Embedder:
    """The encoder of a fine-tuned task model (run dir, export dir or checkpoint)."""
    try:
        from earthplat.nn.task_model import load_task_model
    except ImportError as e:  # the task-model module is not installed in this build
        raise EarthplatError(f"cannot load task model {reference!r}: {e}") from e
    model = load_task_model(reference, map_location=map_location).eval()
    spec = getattr(model, "spec", None)
    return Embedder(
        _encoder_in(model), reference, getattr(spec, "patch_size", None), task_model=model
    )


def model_inputs(samples: list[Sample], modalities: tuple[str, ...]) -> dict:
    """Samples of equal shapes as encoder inputs (only the encoder's modalities)."""
    from earthplat.batch import collate, to_model_inputs

    present = [m for m in samples[0].modalities if m in modalities]
    if not present:
        raise EarthplatError(
            f"the samples ({', '.join(samples[0].modalities)}) share no modality with the "
            f"encoder ({', '.join(modalities)}); if the weights were trained on another product "
            "of the samples' sensor (published OlmoEarth weights: L2A), accept the samples' "
            "with --extra_inputs (earthplat evaluate), which lowers accuracy"
        )
    trimmed = [Sample(s.window, {m: s.modalities[m] for m in present}) for s in samples]
    return to_model_inputs(collate(trimmed))


def _batches(samples: list[Sample], batch_size: int):
    """Consecutive runs of samples whose arrays have the same shapes, at most ``batch_size``."""

    def key(s: Sample):
        return tuple((n, m.data.shape, tuple(m.bands)) for n, m in s.modalities.items())

    start = 0
    while start < len(samples):
        end = start + 1
        while (
            end < len(samples)
            and end - start < batch_size
            and key(samples[end]) == key(samples[start])
        ):
            end += 1
        yield samples[start:end]
        start = end


def embed_pooled(
    embedder: Embedder, samples: list[Sample], *, patch_size: int, batch_size: int = 32
) -> np.ndarray:
    """[N, D] float32: the mean of each window's encoded tokens."""
    import torch

    out = []
    with torch.no_grad():
        for chunk in _batches(samples, batch_size):
            inputs = model_inputs(chunk, embedder.modalities)
            out.append(embedder.encoder(inputs, patch_size=patch_size).pooled.float().numpy())
    return np.concatenate(out).astype(np.float32)


def embed_patches(
    embedder: Embedder, samples: list[Sample], *, patch_size: int, batch_size: int = 32
) -> np.ndarray:
    """[N, D, H/p, W/p] float32: per patch, the mean of its tokens over time and band sets."""
    import torch

    out = []
    with torch.no_grad():
        for chunk in _batches(samples, batch_size):
            inputs = model_inputs(chunk, embedder.modalities)
            fmap = embedder.encoder(inputs, patch_size=patch_size).feature_map()
            out.append(fmap.float().numpy())
    return np.concatenate(out).astype(np.float32)
