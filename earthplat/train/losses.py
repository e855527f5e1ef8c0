"""Losses of Latent MIM Lite, registered by name.

Patch discrimination (OlmoEarth): per sample and per modality, each predicted token must pick
out its own target among that sample's other decoded targets of the same modality: a softmax
cross-entropy over cosine similarities at temperature tau, scaled by 2 tau. InfoNCE ties the
pooled embeddings of the two masked views of each sample.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES: dict[str, Callable[..., torch.Tensor]] = {}


def register_loss(name: str):
    def wrap(fn):
        LOSSES[name] = fn
        return fn

    return wrap


MAX_LOGITS = 8 * 1024 * 1024
"""Similarity entries computed at once by ``patch_discrimination`` (32 MB in fp32)."""


def _checkpointed(fn, *args):
    if torch.is_grad_enabled() and any(
        isinstance(a, torch.Tensor) and a.requires_grad for a in args
    ):
        from torch.utils.checkpoint import checkpoint

        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def _group_losses(
    p: torch.Tensor, t: torch.Tensor, counts: torch.Tensor, tau: float
) -> torch.Tensor:
    """[G] mean cross-entropy of each group: p, t are [G, L, D] normalised and zero-padded."""
    g, lmax, _ = p.shape
    logits = torch.bmm(p, t.transpose(1, 2)).float() / tau  # [G, L, L]
    real = torch.arange(lmax, device=p.device)[None] < counts[:, None]  # [G, L]
    logits = logits.masked_fill(~real[:, None, :], float("-inf"))
    labels = torch.arange(lmax, device=p.device).expand(g, -1).masked_fill(~real, -100)
    per_token = F.cross_entropy(
        logits.reshape(g * lmax, lmax), labels.reshape(-1), reduction="none", ignore_index=-100
    ).reshape(g, lmax)
    return per_token.sum(1) / counts  # padded rows contribute 0


@register_loss("patch_discrimination")
def patch_discrimination(
    pred: torch.Tensor,
    target: torch.Tensor,
    sample: torch.Tensor,
    group: torch.Tensor,
    tau: float = 0.1,
) -> torch.Tensor:
    """pred, target: [Q, D] decoded tokens; sample, group: [Q] sample index and modality index.

    Vectorised: tokens are sorted into (sample, modality) groups padded to the longest group,
    and all groups' similarity matrices are computed in one batched matmul with padded columns
    masked out. Each group's loss is the mean over its tokens; the result is the mean over
    groups, times 2 tau.
    """
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    key = sample * (int(group.max()) + 1) + group  # [Q] group id
    uniq, gid = torch.unique(key, return_inverse=True)
    order = torch.argsort(gid, stable=True)
    gid_sorted = gid[order]
    counts = torch.bincount(gid_sorted, minlength=uniq.numel())
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(gid_sorted.numel(), device=pred.device) - starts[gid_sorted]
    g, lmax, d = uniq.numel(), int(counts.max()), pred.shape[1]
    p = pred.new_zeros(g, lmax, d)
    t = pred.new_zeros(g, lmax, d)
    p[gid_sorted, pos] = F.normalize(pred[order].float(), dim=-1).to(p.dtype)
    t[gid_sorted, pos] = F.normalize(target[order].float(), dim=-1).to(t.dtype)
    # The [G, L, L] similarities are the largest tensors of a pretraining step (0.7 GB per view
    # at 64x64 px, batch 8), and softmax keeps copies for backward. Chunks of groups are
    # computed under activation checkpointing, so only one chunk's matrices exist at a time.
    chunk = max(1, MAX_LOGITS // max(1, lmax * lmax))
    per_group = torch.cat(
        [
            _checkpointed(
                _group_losses, p[i : i + chunk], t[i : i + chunk], counts[i : i + chunk], tau
            )
            for i in range(0, g, chunk)
        ]
    )
    return per_group.mean() * 2 * tau


def patch_discrimination_reference(pred, target, sample, group, tau: float = 0.1):
    """The same loss written as a plain loop (the test oracle)."""
    losses = []
    for s in sample.unique():
        for m in group[sample == s].unique():
            sel = (sample == s) & (group == m)
            p = F.normalize(pred[sel].float(), dim=-1)
            t = F.normalize(target[sel].float(), dim=-1)
            logits = p @ t.T / tau
            losses.append(F.cross_entropy(logits, torch.arange(len(p))))
    return torch.stack(losses).mean() * 2 * tau


@register_loss("infonce")
def infonce(a: torch.Tensor, b: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE between two [B, D] views; positives are the same sample."""
    a = F.normalize(a.float(), dim=-1)
    b = F.normalize(b.float(), dim=-1)
    logits = a @ b.T / tau
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
