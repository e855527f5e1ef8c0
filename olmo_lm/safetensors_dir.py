"""Safetensors checkpoint directories: one ``model.safetensors`` or an indexed set of shards
(``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``), as transformers
writes them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from earthplat.traincore.errors import TrainCoreConfigError


def read_safetensors_dir(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors checkpoint directory (one file or an indexed shard set)."""
    from safetensors.torch import load_file

    path = Path(path)
    index = path / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (path / "model.safetensors").exists():
        files = ["model.safetensors"]
    else:
        files = sorted(p.name for p in path.glob("*.safetensors"))
    if not files:
        raise TrainCoreConfigError(f"no safetensors weights under {path}")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(str(path / name)))
    return state


def write_safetensors_dir(
    state: dict[str, torch.Tensor], path: str | Path, max_shard_bytes: int = 5 * 1024**3
) -> list[str]:
    """Write ``state`` as shards of at most ``max_shard_bytes`` (``model-0000i-of-0000n``),
    with ``model.safetensors.index.json``; one ``model.safetensors`` when it fits."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(state):
        tensor = state[key].detach().contiguous()
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], str(path / "model.safetensors"), metadata=meta)
        return ["model.safetensors"]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards):
        save_file(shard, str(path / name), metadata=meta)
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return names
