"""BAR, Branch-Adapt-Route: experts branched from one post-trained model, each adapted on
its own, then routed per sequence by a small router.

1. **Branch** (``branch``): copies of the post-trained dense model.
2. **Adapt** each through its own pipeline: continued pretraining (``CausalLMModule``), SFT
   (``post.sft``), RLVR (``post.rlvr``), with ``freeze_shared`` applied first so only its
   feed-forwards learn and every branch keeps the trunk (embeddings, attention, norms, head)
   it was branched with.
3. **Route** (``BARModel``): the branches' feed-forwards become the experts of one MoE over
   the shared trunk, and a lightweight router (one linear layer on the mean input embedding
   of a sequence, ``SequenceRouter``), trained on a small labelled mix (``train_router``),
   sends each whole sequence to one expert. A sequence's output is exactly its expert
   model's, so **updating one expert** (``BARModel.update_expert``) leaves the outputs of
   every sequence routed elsewhere bit-identical: no shared weight changed and the router
   reads only the frozen embedding.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from olmo_lm.experts.moe_state import (
    assemble,
    check_same_shared,
    dense_ffn,
    is_shared,
    moe_config,
    set_active,
)


def branch(model: nn.Module, n: int) -> list[nn.Module]:
    """``n`` independent copies of ``model`` (the post-trained trunk every expert starts from)."""
    return [copy.deepcopy(model) for _ in range(n)]


def freeze_shared(model: nn.Module) -> nn.Module:
    """Freeze everything but the feed-forwards (a branch adapts its FFNs only)."""
    for name, p in model.named_parameters():
        p.requires_grad_(not is_shared(name))
    return model


class SequenceRouter(nn.Module):
    """Expert logits ``[B, K]`` of a sequence from its mean token embedding (the frozen
    shared embedding table)."""

    def __init__(self, d_model: int, n_experts: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_model, n_experts)

    def forward(self, embed: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            pooled = embed(ids).mean(1)  # [B, D]
        return self.linear(pooled)


class BARModel(nn.Module):
    """The shared trunk, the branches' feed-forwards as MoE experts, a sequence router."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        states = [b.state_dict() for b in branches]
        check_same_shared(states, [f"branch {i}" for i in range(len(states))])
        dense = branches[0].config
        cfg = moe_config(dense, n_experts=len(branches), top_k=1)
        ffns = [[dense_ffn(s, i) for s in states] for i in range(cfg.n_layers)]
        rows = [torch.zeros(len(branches), cfg.d_model) for _ in range(cfg.n_layers)]
        self.moe = cfg.build()
        self.moe.load_state_dict(assemble(cfg, states[0], ffns, rows))
        self.moe.requires_grad_(False)
        self.router = SequenceRouter(cfg.d_model, len(branches))

    @property
    def n_experts(self) -> int:
        return self.router.linear.out_features

    def route(self, ids: torch.Tensor) -> torch.Tensor:
        """``[B]`` the expert each sequence goes to."""
        return self.router(self.moe.embed, ids).argmax(-1)

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, experts: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, T, V]``, each sequence computed by its routed expert alone."""
        experts = self.route(ids) if experts is None else experts
        out = None
        try:
            for e in experts.unique().tolist():
                rows = (experts == e).nonzero().flatten()
                set_active(self.moe, [e])
                logits = self.moe(ids[rows])
                if out is None:
                    out = logits.new_empty(ids.shape[0], *logits.shape[1:])
                out[rows] = logits
        finally:
            set_active(self.moe, None)
        return out

    @torch.no_grad()
    def update_expert(self, e: int, adapted: nn.Module) -> None:
        """Replace expert ``e``'s feed-forwards with ``adapted``'s (a branch adapted further
        with ``freeze_shared``); nothing else changes."""
        state = adapted.state_dict()
        check_same_shared([self.moe.state_dict(), state], ["the BAR model", "the new expert"])
        for i, block in enumerate(self.moe.blocks):
            w_gate_up, w_down = dense_ffn(state, i)
            block.ffn.experts.w_gate_up[e].copy_(w_gate_up)
            block.ffn.experts.w_down[e].copy_(w_down)


def train_router(
    bar: BARModel,
    ids: torch.Tensor,
    labels: torch.Tensor,
    steps: int = 200,
    lr: float = 0.05,
    seed: int = 0,
) -> float:
    """Fit the sequence router on a small mix ``ids [N, T]`` labelled with the expert each
    sequence belongs to ``labels [N]``; returns its accuracy on that mix."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(bar.router.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(bar.router(bar.moe.embed, ids), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((bar.route(ids) == labels).float().mean())
