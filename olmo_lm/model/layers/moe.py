"""A dropless top-k mixture-of-experts feed-forward, computed grouped.

Routing (OLMoE, FlexOlmo): ``softmax`` over the router logits, the top-k probabilities as the
mixing weights (renormalised only when ``norm_topk_prob``). Every routed token is computed; no
capacity, no drops. The experts run as one grouped matmul per projection: token copies are
sorted by expert, and ``F.grouped_mm`` multiplies each contiguous segment by its expert's
weights, so there is no Python loop over experts and no padding.

Auxiliary losses (OLMoE):

- load balancing ``E * sum_e f_e P_e`` with ``f_e`` the fraction of routed token copies sent to
  expert e and ``P_e`` the mean router probability of e (1.0 when perfectly balanced; its
  gradient flows through P). Under data parallelism the counts behind ``f`` are summed over the
  data-parallel ranks, so the balance is that of the global batch, not each rank's micro-batch.
- router z-loss ``mean(logsumexp(logits)^2)``, which keeps router logits small.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclass
class RouterStats:
    """What one MoE layer's forward reports to the training loss and log."""

    lb_loss: torch.Tensor
    """Load-balancing loss (unweighted)."""
    z_loss: torch.Tensor
    """Router z-loss (unweighted)."""
    load: torch.Tensor
    """``[E]`` routed token copies per expert in this batch (global under data parallelism)."""


def _global_counts(counts: torch.Tensor) -> torch.Tensor:
    from earthplat.traincore.data import data_parallel_group

    group, world = data_parallel_group()
    if world > 1 and torch.is_grad_enabled() and dist.is_available() and dist.is_initialized():
        counts = counts.clone()
        dist.all_reduce(counts, group=group)
    return counts


class Router(nn.Module):
    """Linear router ``[E, D]`` with top-k selection.

    ``active`` (``[E]`` bool, default all) switches experts off at inference without touching
    a weight: an inactive expert's logit is ``-inf``, which is exactly what removing its router
    row does (FlexOlmo's opt-out), and top-k shrinks to the active count when fewer remain.
    """

    def __init__(self, d_model: int, n_experts: int, top_k: int, norm_topk_prob: bool) -> None:
        super().__init__()
        self.n_experts, self.top_k, self.norm_topk_prob = n_experts, top_k, norm_topk_prob
        self.weight = nn.Parameter(torch.empty(n_experts, d_model))
        self.active: torch.Tensor | None = None
        """``[E]`` True for experts that may be routed to; ``None``: all (not saved)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Logits ``[N, E]``, probabilities ``[N, E]``, top-k weights and experts ``[N, k]``."""
        logits = F.linear(x, self.weight)  # [N, E]
        k = self.top_k
        if self.active is not None:
            active = self.active.to(logits.device)
            if not bool(active.any()):
                raise ValueError("every expert of this MoE layer is opted out; keep at least one")
            logits = logits.masked_fill(~active, float("-inf"))
            k = min(k, int(active.sum()))
        probs = logits.float().softmax(-1)
        weights, experts = probs.topk(k, dim=-1)  # [N, k]
        if self.norm_topk_prob:
            weights = weights / weights.sum(-1, keepdim=True)
        return logits, probs, weights, experts


class GroupedExperts(nn.Module):
    """E SwiGLU experts stored as stacked ``[E, out, in]`` weights (nn.Linear orientation)."""

    def __init__(self, d_model: int, hidden: int, n_experts: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.w_gate_up = nn.Parameter(torch.empty(n_experts, 2 * hidden, d_model))
        self.w_down = nn.Parameter(torch.empty(n_experts, d_model, hidden))

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        # x: [M, D] token copies sorted by expert; offsets: [E] end of each expert's segment
        h = F.grouped_mm(x, self.w_gate_up.transpose(-2, -1), offs=offsets)  # [M, 2H]
        gate, up = h.split(self.hidden, dim=-1)
        return F.grouped_mm(
            F.silu(gate) * up, self.w_down.transpose(-2, -1), offs=offsets
        )  # [M, D]


class MoE(nn.Module):
    """Top-k routed SwiGLU experts; reports ``RouterStats`` to ``ctx`` on every forward."""

    def __init__(
        self, d_model: int, hidden: int, n_experts: int, top_k: int, norm_topk_prob: bool = False
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k={top_k} must lie in [1, n_experts={n_experts}]")
        self.n_experts, self.top_k = n_experts, top_k
        self.router = Router(d_model, n_experts, top_k, norm_topk_prob)
        self.experts = GroupedExperts(d_model, hidden, n_experts)

    def forward(self, x: torch.Tensor, ctx=None) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # [N, D]
        logits, probs, weights, experts = self.router(x)
        flat = experts.flatten()  # [N k] expert of each token copy
        order = flat.argsort(stable=True)
        token = order // experts.shape[-1]  # source token of each sorted copy
        counts = torch.bincount(flat, minlength=self.n_experts)  # [E]
        offsets = counts.cumsum(0).to(torch.int32)
        y = self.experts(x[token], offsets)  # [N k, D]
        y = y * weights.flatten()[order, None].to(y.dtype)
        out = torch.zeros_like(x).index_add_(0, token, y)
        if ctx is not None and ctx.collect_router_stats:
            ctx.router_stats.append(self._stats(logits, probs, counts))
        return out.view(shape)

    def _stats(self, logits: torch.Tensor, probs: torch.Tensor, counts: torch.Tensor):
        load = _global_counts(counts.detach().float())
        fraction = load / load.sum().clamp_min(1.0)  # f_e, sums to 1
        lb = self.n_experts * (fraction * probs.mean(0)).sum()
        z = torch.logsumexp(logits.float(), dim=-1).square().mean()  # finite: >= 1 expert on
        return RouterStats(lb_loss=lb, z_loss=z, load=load)
