"""What every post-training stage shares: where the starting model and its tokenizer come
from, and where a stage leaves the model it trained (``RUN/model``, the next stage's input)."""

from __future__ import annotations

from pathlib import Path

import torch

from earthplat.traincore.errors import TrainCoreConfigError

MODEL_SUBDIR = "model"
"""A finished stage writes its model directory here, inside its run directory."""


def model_tokenizer(path: str | Path, tokenizer: str | None = None):
    """The tokenizer named, else the model directory's ``tokenizer.json``, else the one the
    run's saved ``config.yaml`` trained with (``data.tokenizer``), else bytes."""
    from olmo_lm.data.tokenizer import load_tokenizer

    path = Path(path)
    if tokenizer is not None:
        return load_tokenizer(tokenizer)
    for folder in (path, path / MODEL_SUBDIR):
        if (folder / "tokenizer.json").exists():
            return load_tokenizer(folder)
    saved = path / "config.yaml"
    if saved.exists():
        import yaml

        data = (yaml.safe_load(saved.read_text()) or {}).get("data") or {}
        return load_tokenizer(data.get("tokenizer"))
    return load_tokenizer(None)


def tokenizer_folder(tokenizer) -> Path | None:
    """The folder of a ``JsonTokenizer``'s files (copied beside a stage's model), or None."""
    path = getattr(tokenizer, "path", None)
    return None if path is None else Path(path).parent


def load_start(path: str | Path):
    """(config, state dict) of the model a stage starts from: a stage's or pretraining run
    directory (its ``model/`` or last checkpoint), a model directory or a transformers one."""
    from olmo_lm.model.store import load_state

    path = Path(path)
    if (path / MODEL_SUBDIR / "olmo_lm.json").exists():
        path = path / MODEL_SUBDIR
    if not path.exists():
        raise TrainCoreConfigError(f"--model {path} does not exist; pass a run or model directory")
    cfg, state, _ = load_state(path)
    return cfg, state


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``model`` (a tied head is not stored, so not required)."""
    model.load_state_dict(state, strict=not model.config.tie_embeddings)


def save_stage_model(model, run_dir: str | Path, tokenizer=None) -> Path:
    """Write ``model`` as ``RUN/model`` (config, safetensors and the tokenizer's files)."""
    from olmo_lm.model.store import save_model_dir

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("lm_head.weight", None)
    out = Path(run_dir) / MODEL_SUBDIR
    return save_model_dir(model.config, state, out, tokenizer_dir=tokenizer_folder(tokenizer))


def pad_right(seqs: list, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> right-padded ids ``[B, T]`` and a mask ``[B, T]`` (True at tokens).

    Post-training pads on the right: under causal attention no real token sees the padding,
    so no attention mask is needed (the model's mask is for left padding)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return ids, mask


def pad_id_of(tokenizer) -> int:
    """The id right padding is written with (pad, else EOS, else 0); it is never learned."""
    for name in ("pad_id", "eos_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0


def start_module(module_cls, start: str, seq_len: int, optimizer, scheduler, loss=None, **kw):
    """A stage's module built with the starting model's architecture and loaded with its
    weights (``max_seq_len`` raised to ``seq_len`` when shorter)."""
    cfg, state = load_start(start)
    if cfg.max_seq_len < seq_len:
        cfg = cfg.replace(max_seq_len=seq_len)
    module = module_cls(cfg, seq_len, optimizer, scheduler, loss, **kw)
    load_weights(module.model, state)
    return module


def finish_stage(trainer, module, run_dir: str | Path, tokenizer) -> dict[str, float]:
    """Write the stage's model to ``RUN/model`` (rank 0) and return the final metrics."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        out = save_stage_model(module.model, run_dir, tokenizer)
        shown = {k: v for k, v in metrics.items() if "/expert_load/" not in k}
        print(f"model written to {out}")
        print("final metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(shown.items())))
    return metrics
