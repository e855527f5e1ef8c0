"""Our model directory (``olmo_lm.json`` + safetensors), and loading a model from any of the
places one lives: a training run directory, our model directory, a transformers checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.config import TransformerConfig

CONFIG_FILE = "olmo_lm.json"


def save_model_dir(
    cfg: TransformerConfig,
    state: dict[str, torch.Tensor],
    path: str | Path,
    *,
    token_ids: dict | None = None,
    tokenizer_dir: str | Path | None = None,
) -> Path:
    """Write ``cfg`` and ``state`` (our parameter names) as a model directory."""
    from olmo_lm.hf import copy_tokenizer
    from olmo_lm.safetensors_dir import write_safetensors_dir

    path = Path(path)
    write_safetensors_dir(state, path)
    meta = {"model": dataclasses.asdict(cfg), "token_ids": token_ids or {}}
    (path / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    if tokenizer_dir is not None:
        copy_tokenizer(tokenizer_dir, path)
    return path


def load_model_dir(path: str | Path) -> tuple[TransformerConfig, dict[str, torch.Tensor], dict]:
    """(config, state dict, token ids) of a model directory."""
    from olmo_lm.safetensors_dir import read_safetensors_dir

    path = Path(path)
    meta = json.loads((path / CONFIG_FILE).read_text())
    return TransformerConfig(**meta["model"]), read_safetensors_dir(path), meta["token_ids"]


def load_state(path: str | Path) -> tuple[TransformerConfig, dict[str, torch.Tensor], dict]:
    """(config, our state dict, token ids) from a run directory (its last checkpoint), our
    model directory, or a transformers checkpoint directory."""
    from earthplat.traincore.checkpoint import find_resume_checkpoint

    path = Path(path)
    if (path / CONFIG_FILE).exists():
        return load_model_dir(path)
    if (path / "config.json").exists() and any(path.glob("*.safetensors")):
        from olmo_lm.hf import load_hf

        return load_hf(path)
    ckpt = find_resume_checkpoint(path)
    if ckpt is None:
        raise TrainCoreConfigError(
            f"{path} is neither a run directory with checkpoints, an olmo-lm model directory "
            f"({CONFIG_FILE}) nor a transformers checkpoint (config.json + safetensors)"
        )
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    cfg = TransformerConfig(**data["hyper_parameters"]["model"])
    prefix = "model."
    state = {k[len(prefix) :]: v for k, v in data["state_dict"].items() if k.startswith(prefix)}
    return cfg, state, {}


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, token ids) from any place ``load_state`` reads."""
    cfg, state, token_ids = load_state(path)
    with torch.device("meta"):
        model = cfg.build()
    model.load_state_dict(state, assign=True, strict=not cfg.tie_embeddings)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed.weight
    for module in model.modules():  # non-persistent buffers are not in the state dict
        if hasattr(module, "reset_buffers"):
            module.inv_freq = torch.empty_like(module.inv_freq, device="cpu")
            module.reset_buffers()
    return model.eval(), token_ids
