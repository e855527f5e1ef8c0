"""Text generation: KV-cache / recurrent-state decoding with the usual sampling controls.

One prefill over the (left-padded) prompts fills each layer's state: a KV cache for full
attention, a rolling window of the last ``sliding_window`` keys for sliding layers, the
convolution window and delta-rule memory for Gated DeltaNet layers; each new token then costs
one single-token forward. Greedy decoding with the cache produces the same tokens as
recomputing the whole sequence every step (``use_cache=False``), which the tests check.

Past ``max_seq_len`` the model cannot attend further back: both paths then recompute the last
``max_seq_len`` columns for every new token (the old uncached behaviour, kept for long demos).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from earthplat.traincore.errors import TrainCoreConfigError


@dataclass
class SamplingConfig:
    """How the next token is chosen."""

    temperature: float = 1.0
    """Softmax temperature; ``<= 0`` means greedy (argmax)."""
    top_k: int | None = None
    """Sample only among the ``top_k`` most likely tokens."""
    top_p: float = 1.0
    """Nucleus sampling: the smallest set of tokens whose probability reaches ``top_p``."""
    stop_ids: list[int] = field(default_factory=list)
    """Token ids that end a row (kept in its output)."""
    stop_strings: list[str] = field(default_factory=list)
    """Strings that end a row once its decoded continuation contains one (needs a tokenizer;
    the text is cut before the string)."""
    pad_id: int = 0
    """Id written after a row has stopped, and under left padding."""

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise TrainCoreConfigError("top_p must lie in (0, 1]")
        if self.top_k is not None and self.top_k < 1:
            raise TrainCoreConfigError("top_k must be >= 1 (or None)")


@dataclass
class GenerationResult:
    tokens: torch.Tensor
    """``[B, T_prompt + steps]`` prompts (left-padded) and continuations (``pad_id`` after a
    row stopped)."""
    new_tokens: list[list[int]]
    """Each row's continuation, up to and including its stop token."""
    texts: list[str] | None
    """Decoded continuations (cut before a stop string) when a tokenizer was given."""
    prefill_seconds: float
    decode_seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens (all rows) per second of decoding."""
        n = sum(len(t) for t in self.new_tokens)
        return n / self.decode_seconds if self.decode_seconds > 0 else float("inf")


def pad_left(prompts: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> left-padded ids ``[B, T]`` and attention mask (1 = token)."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise TrainCoreConfigError("every prompt needs at least one token")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p) :] = 1
    return ids, mask


def sample_next(
    logits: torch.Tensor, sampling: SamplingConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Next token ids ``[B]`` from last-position logits ``[B, V]``."""
    logits = logits.float()
    if sampling.temperature <= 0:
        return logits.argmax(-1)
    logits = logits / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop = probs.cumsum(-1) - probs >= sampling.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    sampling: SamplingConfig | None = None,
    *,
    attention_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    tokenizer=None,
) -> GenerationResult:
    """Continue ``input_ids [B, T]`` (left-padded where ``attention_mask`` is 0)."""
    sampling = sampling or SamplingConfig()
    if sampling.stop_strings and tokenizer is None:
        raise TrainCoreConfigError("stop_strings need a tokenizer to decode the continuation")
    limit = model.config.max_seq_len
    b = input_ids.shape[0]
    device = input_ids.device
    ids = input_ids
    mask = torch.ones_like(ids) if attention_mask is None else attention_mask.to(ids)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    new: list[list[int]] = [[] for _ in range(b)]
    texts: list[str] | None = [""] * b if tokenizer is not None else None
    stop_ids = torch.tensor(sampling.stop_ids, dtype=torch.long, device=device)

    cache = None

    def step_logits(fresh: torch.Tensor | None) -> torch.Tensor:
        nonlocal cache
        if use_cache and fresh is not None and cache is not None and cache.length < limit:
            return model(fresh[:, None], cache=cache)[:, -1]
        window_ids, window_mask = ids[:, -limit:], mask[:, -limit:]
        if use_cache and ids.shape[1] <= limit:
            cache = model.new_cache(min(limit, ids.shape[1] + max_new_tokens))
            return model(window_ids, attention_mask=window_mask, cache=cache)[:, -1]
        cache = None  # beyond the context (or uncached): recompute the last `limit` columns
        return model(window_ids, attention_mask=window_mask)[:, -1]

    t0 = time.perf_counter()
    logits = step_logits(None)
    prefill = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(max_new_tokens):
        nxt = sample_next(logits, sampling, generator)
        nxt = torch.where(done, torch.full_like(nxt, sampling.pad_id), nxt)
        active = (~done).nonzero().flatten().tolist()
        for i in active:
            new[i].append(int(nxt[i]))
        if stop_ids.numel():
            done |= torch.isin(nxt, stop_ids)
        if tokenizer is not None:
            for i in active:
                text = tokenizer.decode(new[i])
                hits = [text.index(s) for s in sampling.stop_strings if s in text]
                texts[i] = text[: min(hits)] if hits else text
                if hits:
                    done[i] = True
        ids = torch.cat((ids, nxt[:, None]), dim=1)
        mask = torch.cat((mask, torch.ones_like(mask[:, :1])), dim=1)
        if bool(done.all()):
            break
        logits = step_logits(nxt)
    decode = time.perf_counter() - t0
    return GenerationResult(ids, new, texts, prefill, decode)
