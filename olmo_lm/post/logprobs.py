"""Log-probabilities of chosen tokens under a causal LM: what DPO, RLVR and their reference
models compare."""

from __future__ import annotations

import torch


def token_logprobs(
    model, ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``[B, T - 1]``: log p(ids[:, t + 1] | ids[:, : t + 1]) for right-padded ``ids [B, T]``
    (or left-padded ones with their ``attention_mask``, as sampling leaves them).

    The logits are materialised (``[B, T, V]``): post-training batches of small vocabularies
    on CPU; a 100k vocabulary would want the chunked path of ``layers.lm_loss``."""
    mask = None if attention_mask is None else attention_mask[:, :-1]
    logits = model(ids[:, :-1], attention_mask=mask).float()  # [B, T-1, V]
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def sequence_logprobs(
    model, ids: torch.Tensor, mask: torch.Tensor, *, average: bool = False
) -> torch.Tensor:
    """``[B]``: the summed (``average``: mean) log-probability of the tokens where
    ``mask [B, T]`` is True (the response; the first token is never scored)."""
    lp = token_logprobs(model, ids)  # [B, T-1]
    m = mask[:, 1:].to(lp.dtype)
    total = (lp * m).sum(-1)
    return total / m.sum(-1).clamp_min(1.0) if average else total
