"""FlexOlmo (Shi et al., 2025): experts trained apart on their own data, merged without joint
training, and removable at inference.

1. **Upcycle** (``upcycle``): a dense public model becomes a 2-expert MoE, expert 0 its MLP
   (the *public anchor*) and expert 1 a copy of it; both are always routed (top-2 of 2), and
   the weights sum to 1, so the upcycled model computes what the dense one did.
2. **Train an expert alone** (``ExpertTrainingModule``): on one domain's data only, with the
   anchor expert, its router row, the attention, embeddings, norms and head frozen; only the
   new expert and its router row learn. Every domain owner trains against the *same* frozen
   anchor, which is what makes the experts composable later.
3. **Merge** (``merge``): the shared parameters, the anchor, every expert, and a router whose
   rows are each expert's own (initialised from its domain embedding, ``domain_embedding``,
   and trained only with its expert). No joint training: routing to the anchor and expert i
   alone reproduces expert i's own model exactly (tested).
4. **Opt out** (``moe_state.set_active``): an expert's router logit becomes ``-inf``, which
   is exactly removing its row; nothing is retrained.

The anchor's frozen slice lives inside the stacked expert tensors, so freezing is by gradient
hooks that zero its rows and a restore after every optimizer step (AdamW's decoupled weight
decay would otherwise shrink it even with a zero gradient).
"""

from __future__ import annotations

import torch

from olmo_lm.experts.moe_state import (
    assemble,
    check_same_shared,
    dense_ffn,
    expert_ffn,
    moe_config,
    router_rows,
)
from olmo_lm.model.config import TransformerConfig
from olmo_lm.train.pretrain import CausalLMModule

ANCHOR = 0
"""Expert index of the public model's feed-forward."""


@torch.no_grad()
def domain_embedding(model, batches: list[torch.Tensor], scale: float = 1.0) -> list[torch.Tensor]:
    """Per layer ``[D]``: the mean input of the layer's feed-forward over a domain's tokens
    (under ``model``), scaled to norm ``scale``: the router row that makes the layer's router
    favour its expert on text like the domain's."""
    sums = [None] * len(model.blocks)
    counts = [0] * len(model.blocks)
    hooks = []
    for i, block in enumerate(model.blocks):

        def grab(module, args, i=i):
            x = args[0].reshape(-1, args[0].shape[-1]).float()
            sums[i] = x.sum(0) if sums[i] is None else sums[i] + x.sum(0)
            counts[i] += x.shape[0]

        hooks.append(block.ffn.register_forward_pre_hook(grab))
    try:
        for ids in batches:
            model(ids)
    finally:
        for h in hooks:
            h.remove()
    means = [s / c for s, c in zip(sums, counts, strict=True)]
    return [scale * m / m.norm().clamp_min(1e-12) for m in means]


def upcycle(
    dense_cfg: TransformerConfig,
    dense_state: dict[str, torch.Tensor],
    anchor_rows: list[torch.Tensor],
    expert_rows: list[torch.Tensor],
) -> tuple[TransformerConfig, dict[str, torch.Tensor]]:
    """(config, state) of the 2-expert model an owner trains: the anchor (the dense MLP) and a
    copy of it, router rows ``[anchor_rows[l], expert_rows[l]]`` per layer."""
    cfg = moe_config(dense_cfg, n_experts=2, top_k=2)
    ffns = [[dense_ffn(dense_state, i)] * 2 for i in range(cfg.n_layers)]
    rows = [torch.stack([a, e]) for a, e in zip(anchor_rows, expert_rows, strict=True)]
    return cfg, assemble(cfg, dense_state, ffns, rows)


def merge(
    expert_states: list[dict[str, torch.Tensor]],
    cfg: TransformerConfig,
    top_k: int = 2,
    names: list[str] | None = None,
) -> tuple[TransformerConfig, dict[str, torch.Tensor]]:
    """One MoE of the anchor and every expert: ``1 + len(expert_states)`` experts, router
    rows [anchor, expert 1, expert 2, ...] taken from the experts' own training."""
    names = names or [f"expert {i + 1}" for i in range(len(expert_states))]
    check_same_shared(expert_states, names)
    first = expert_states[0]
    for state, name in zip(expert_states[1:], names[1:], strict=True):
        for i in range(cfg.n_layers):
            if not torch.equal(expert_ffn(state, i, ANCHOR)[0], expert_ffn(first, i, ANCHOR)[0]):
                raise ValueError(f"{name} changed the public anchor expert; it must stay frozen")
    n = 1 + len(expert_states)
    merged_cfg = moe_config(cfg.replace(ffn="mlp", moe=None), n_experts=n, top_k=top_k)
    ffns, rows = [], []
    for i in range(cfg.n_layers):
        ffns.append([expert_ffn(first, i, ANCHOR)] + [expert_ffn(s, i, 1) for s in expert_states])
        anchor_row = router_rows(first, i)[ANCHOR]
        rows.append(torch.stack([anchor_row] + [router_rows(s, i)[1] for s in expert_states]))
    return merged_cfg, assemble(merged_cfg, first, ffns, rows)


class ExpertTrainingModule(CausalLMModule):
    """Causal-LM training of expert ``trainable`` (default 1) of an upcycled model alone: the
    shared parameters are frozen, the other experts' and router rows are held fixed."""

    def __init__(self, *args, trainable: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.trainable = trainable

    def on_fit_start(self) -> None:
        self.freeze_all_but_expert()

    def freeze_all_but_expert(self) -> None:
        """Freeze every parameter but the experts' and routers'; those keep a snapshot of
        their frozen rows and a hook that zeroes those rows' gradients."""
        self._frozen: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]] = []
        for name, p in self.model.named_parameters():
            if ".ffn.experts." not in name and ".ffn.router." not in name:
                p.requires_grad_(False)
                continue
            keep = torch.ones(p.shape[0], dtype=torch.bool)
            keep[self.trainable] = False  # rows (experts) that must not move
            snapshot = p.detach()[keep].clone()
            mask = (~keep).to(p.dtype).view(-1, *([1] * (p.ndim - 1))).to(p.device)
            p.register_hook(lambda g, mask=mask: g * mask)
            self._frozen.append((p, keep, snapshot))

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        with torch.no_grad():  # undo weight decay on the frozen rows
            for p, keep, snapshot in self._frozen:
                p[keep] = snapshot.to(p.device)
