"""``olmo-lm generate``: sampling text from a run, model or transformers checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path


def _run_tokenizer(run_dir: Path, tokenizer: str | None):
    """The tokenizer named, else the model directory's tokenizer.json, else the run's."""
    from olmo_lm.post.common import model_tokenizer

    return model_tokenizer(run_dir, tokenizer)


def generate(
    run_dir: str,
    prompt: str = "\n",
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 40,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    seed: int = 0,
    tokenizer: str | None = None,
    use_cache: bool = True,
) -> str:
    """Sample text from a run directory, a model directory or a transformers checkpoint.

    Prints the prompt and its continuation, and tokens/s to stderr.

    Args:
        run_dir: A run directory (its last checkpoint), a model directory or a transformers
            checkpoint directory.
        prompt: The text to continue.
        max_new_tokens: Most tokens to generate.
        temperature: Sampling temperature (0: greedy).
        top_k: Sample from the k most likely tokens (null: all).
        top_p: Sample from the smallest set of tokens whose probability reaches p.
        stop: Strings that end the generation.
        seed: Seeds the sampling.
        tokenizer: A tokenizer.json (or its folder) to use instead of the model's own.
        use_cache: Decode with the KV / recurrent-state cache (off: recompute every step).
    """
    import torch

    from olmo_lm.generate import SamplingConfig
    from olmo_lm.generate import generate as generate_tokens
    from olmo_lm.model.store import load_model

    model, token_ids = load_model(run_dir)
    tok = _run_tokenizer(Path(run_dir), tokenizer)
    eos = token_ids.get("eos_token_id", tok.eos_id)
    sampling = SamplingConfig(
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        stop_strings=list(stop or []),
        stop_ids=[eos] if isinstance(eos, int) else [],
    )
    ids = torch.tensor([tok.encode(prompt)], dtype=torch.long)
    result = generate_tokens(
        model,
        ids,
        max_new_tokens,
        sampling,
        generator=torch.Generator().manual_seed(seed),
        use_cache=use_cache,
        tokenizer=tok,
    )
    text = prompt + result.texts[0]
    print(text)
    print(
        f"{len(result.new_tokens[0])} tokens, {result.tokens_per_second:.1f} tokens/s",
        file=sys.stderr,
    )
    return text
