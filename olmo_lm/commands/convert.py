"""``olmo-lm convert``: checkpoints between olmo-lm and the transformers layout."""

from __future__ import annotations

from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError


def convert(
    out: str,
    from_hf: str | None = None,
    to_hf: str | None = None,
    dtype: str | None = None,
    max_shard_gb: float = 5.0,
) -> str:
    """Convert checkpoints between olmo-lm and the transformers layout.

    ``--from-hf DIR``: a transformers checkpoint (config.json + safetensors) into an olmo-lm
    model directory; ``--to-hf RUN``: a run directory (or model directory) into a transformers
    checkpoint (sharded safetensors + config.json) for transformers and vLLM. Tokenizer files
    beside the source are copied.

    Args:
        out: The directory to write.
        from_hf: A transformers checkpoint directory to convert into an olmo-lm model
            directory (also --from-hf).
        to_hf: A run or model directory to convert into a transformers checkpoint (also
            --to-hf).
        dtype: Cast the weights (bfloat16, float16, float32).
        max_shard_gb: Largest safetensors shard in GB (also --max-shard-gb).
    """
    import torch

    from olmo_lm import hf
    from olmo_lm.model.store import load_state, save_model_dir

    if (from_hf is None) == (to_hf is None):
        raise TrainCoreConfigError("pass exactly one of --from-hf DIR or --to-hf RUN")
    cast = None
    if dtype is not None:
        cast = getattr(torch, dtype, None)
        if not isinstance(cast, torch.dtype):
            raise TrainCoreConfigError(f"--dtype {dtype!r} is not a torch dtype (e.g. bfloat16)")
    if from_hf is not None:
        cfg, state, token_ids = hf.load_hf(from_hf)
        if cast is not None:
            state = {k: v.to(cast) for k, v in state.items()}
        save_model_dir(cfg, state, out, token_ids=token_ids, tokenizer_dir=from_hf)
        print(f"{hf.family_of(cfg)} model ({cfg.num_params():,} parameters) written to {out}")
        return out
    cfg, state, token_ids = load_state(to_hf)
    tokenizer_dir = Path(to_hf)
    saved = tokenizer_dir / "config.yaml"
    if not (tokenizer_dir / "tokenizer.json").exists() and saved.exists():
        import yaml

        data = (yaml.safe_load(saved.read_text()) or {}).get("data") or {}
        if data.get("tokenizer"):
            tokenizer_dir = Path(data["tokenizer"])
            tokenizer_dir = tokenizer_dir if tokenizer_dir.is_dir() else tokenizer_dir.parent
    hf.save_hf(
        cfg,
        state,
        out,
        dtype=cast,
        max_shard_bytes=int(max_shard_gb * 1024**3),
        tokenizer_dir=tokenizer_dir,
        **token_ids,
    )
    print(f"{hf.family_of(cfg)} checkpoint written to {out}")
    return out
