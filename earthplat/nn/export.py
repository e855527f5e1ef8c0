"""Encoder weights as safetensors plus a config JSON, loadable without Lightning; and the
published OlmoEarth layout in and out (``olmoearth_ckpt``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

import earthplat
from earthplat.errors import EarthplatError
from earthplat.nn.encoder import Encoder, EncoderConfig

WEIGHTS, CONFIG = "encoder.safetensors", "config.json"


EXPORT_FORMATS = ("earthplat", "olmoearth")


def export_encoder(
    encoder: Encoder, out_dir: str | Path, extra: dict | None = None, format: str = "earthplat"
) -> Path:
    """Write ``encoder.safetensors`` and ``config.json`` into ``out_dir``; with
    ``format="olmoearth"`` the published layout (``config.json`` + ``weights.pth``) instead."""
    from safetensors.torch import save_file

    if format not in EXPORT_FORMATS:
        raise EarthplatError(f"export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if format == "olmoearth":
        from earthplat.nn.olmoearth_ckpt import export_published

        return export_published(encoder, out_dir)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, out / WEIGHTS, metadata={"format": "pt"})
    cfg = asdict(encoder.config)
    cfg["modalities"] = list(cfg["modalities"])
    payload = {"encoder": cfg, "earthplat_version": earthplat.__version__, **(extra or {})}
    (out / CONFIG).write_text(json.dumps(payload, indent=2))
    return out


def load_encoder(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    extra_inputs: tuple[str, ...] = (),
) -> Encoder:
    """Rebuild an exported encoder (a directory with the two files), or load a published
    OlmoEarth checkpoint: a directory with ``config.json`` + ``weights.pth``, or
    ``hf://allenai/OlmoEarth-v1-Base`` (see ``earthplat.nn.olmoearth_ckpt``). ``extra_inputs``
    accepts modalities the weights were not trained to encode (recorded in every output)."""
    from safetensors.torch import load_file

    from earthplat.nn import olmoearth_ckpt

    if olmoearth_ckpt.is_published(path):
        return olmoearth_ckpt.load_published(path, map_location, tuple(extra_inputs))
    root = Path(path)
    if not (root / WEIGHTS).exists() or not (root / CONFIG).exists():
        raise EarthplatError(
            f"{root} holds no exported encoder ({WEIGHTS} and {CONFIG}) and no published "
            f"OlmoEarth checkpoint ({olmoearth_ckpt.CONFIG} and {olmoearth_ckpt.WEIGHTS}); "
            "export one with earthplat.nn.export_encoder or `earthplat export`"
        )
    cfg = json.loads((root / CONFIG).read_text())["encoder"]
    cfg["modalities"] = tuple(cfg["modalities"])
    if extra_inputs:
        cfg["extra_inputs"] = tuple(extra_inputs)
    encoder = EncoderConfig(**cfg).build()
    missing, unexpected = encoder.load_state_dict(
        load_file(root / WEIGHTS, device=str(map_location)), strict=False
    )
    if missing or unexpected:
        raise EarthplatError(
            f"{root}: weights do not match the config (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    return encoder.to(map_location)


def encoder_from_checkpoint(ckpt_path: str | Path) -> Encoder:
    """The encoder of a Lightning pretraining checkpoint (weights-only load, no Lightning)."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    cfg = dict(ckpt["hyper_parameters"]["encoder"])
    cfg["modalities"] = tuple(cfg["modalities"])
    encoder = EncoderConfig(**cfg).build()
    prefix = "encoder."
    encoder.load_state_dict(
        {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    )
    return encoder
