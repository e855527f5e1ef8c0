"""Encoder weights as safetensors plus a config JSON, loadable without Lightning."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

import earthplat
from earthplat.errors import EarthplatError
from earthplat.nn.encoder import Encoder, EncoderConfig

WEIGHTS, CONFIG = "encoder.safetensors", "config.json"


def export_encoder(encoder: Encoder, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write ``encoder.safetensors`` and ``config.json`` into ``out_dir``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, out / WEIGHTS, metadata={"format": "pt"})
    cfg = asdict(encoder.config)
    cfg["modalities"] = list(cfg["modalities"])
    payload = {"encoder": cfg, "earthplat_version": earthplat.__version__, **(extra or {})}
    (out / CONFIG).write_text(json.dumps(payload, indent=2))
    return out


def load_encoder(path: str | Path, map_location: str | torch.device = "cpu") -> Encoder:
    """Rebuild an exported encoder (a directory with the two files)."""
    from safetensors.torch import load_file

    root = Path(path)
    if not (root / WEIGHTS).exists() or not (root / CONFIG).exists():
        raise EarthplatError(
            f"{root} holds no exported encoder ({WEIGHTS} and {CONFIG}); "
            "export one with earthplat.nn.export_encoder or `earthplat export`"
        )
    cfg = json.loads((root / CONFIG).read_text())["encoder"]
    cfg["modalities"] = tuple(cfg["modalities"])
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
