"""Moving SwiGLU feed-forwards in and out of the stacked expert weights of an MoE layer, and
switching experts on and off: the weight surgery FlexOlmo and BAR share.

A dense layer's ``ffn.w_gate``, ``ffn.w_up`` ``[H, D]`` and ``ffn.w_down`` ``[D, H]`` become
expert ``e`` of ``ffn.experts.w_gate_up[e] = [w_gate; w_up]`` and ``ffn.experts.w_down[e]``
(the layout ``olmo_lm.model.layers.moe.GroupedExperts`` computes with).
"""

from __future__ import annotations

import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.config import MoEConfig, TransformerConfig


def moe_config(dense: TransformerConfig, n_experts: int, top_k: int) -> TransformerConfig:
    """``dense``'s architecture with ``n_experts`` experts of its MLP width per layer."""
    if dense.ffn != "mlp":
        raise TrainCoreConfigError("start from a dense model (ffn: mlp)")
    moe = MoEConfig(n_experts=n_experts, top_k=top_k, hidden=dense.resolved_mlp_hidden)
    return dense.replace(ffn="moe", moe=moe, mlp_hidden=dense.mlp_hidden)


def is_shared(name: str) -> bool:
    """Whether a parameter is outside the feed-forwards (embedding, attention, norms, head)."""
    return ".ffn." not in name


def dense_ffn(state: dict[str, torch.Tensor], layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(w_gate_up ``[2H, D]``, w_down ``[D, H]``) of a dense state's layer."""
    pre = f"blocks.{layer}.ffn."
    return torch.cat([state[pre + "w_gate.weight"], state[pre + "w_up.weight"]]), state[
        pre + "w_down.weight"
    ]


def expert_ffn(state: dict[str, torch.Tensor], layer: int, e: int):
    """(w_gate_up, w_down) of expert ``e`` of an MoE state's layer."""
    pre = f"blocks.{layer}.ffn.experts."
    return state[pre + "w_gate_up"][e], state[pre + "w_down"][e]


def router_rows(state: dict[str, torch.Tensor], layer: int) -> torch.Tensor:
    return state[f"blocks.{layer}.ffn.router.weight"]


def assemble(
    cfg: TransformerConfig,
    shared: dict[str, torch.Tensor],
    ffns: list[list[tuple[torch.Tensor, torch.Tensor]]],
    rows: list[torch.Tensor],
) -> dict[str, torch.Tensor]:
    """An MoE state: ``shared`` parameters, ``ffns[layer][e]`` experts, ``rows[layer]``
    ``[E, D]`` router weights."""
    state = {k: v.clone() for k, v in shared.items() if is_shared(k)}
    for layer in range(cfg.n_layers):
        pre = f"blocks.{layer}.ffn."
        state[pre + "experts.w_gate_up"] = torch.stack([f[0] for f in ffns[layer]]).clone()
        state[pre + "experts.w_down"] = torch.stack([f[1] for f in ffns[layer]]).clone()
        state[pre + "router.weight"] = rows[layer].clone()
    return state


def check_same_shared(states: list[dict[str, torch.Tensor]], names: list[str]) -> None:
    """Raise unless every state holds the same shared parameters (experts must be trained
    with attention, embeddings and norms frozen to be merged)."""
    ref = states[0]
    for state, name in zip(states[1:], names[1:], strict=True):
        for k, v in ref.items():
            if is_shared(k) and not torch.equal(v, state[k]):
                raise TrainCoreConfigError(
                    f"{name} changed the shared parameter {k}; train experts with the shared "
                    "parameters frozen (experts.flexolmo.ExpertTrainingModule)"
                )


def set_active(model, experts: list[int] | None) -> None:
    """Route only to ``experts`` in every MoE layer (``None``: all), without retraining."""
    for block in model.blocks:
        router = block.ffn.router
        if experts is None:
            router.active = None
            continue
        bad = [e for e in experts if not 0 <= e < router.n_experts]
        if bad or not experts:
            raise TrainCoreConfigError(
                f"experts {experts} must be a non-empty subset of 0..{router.n_experts - 1}"
            )
        active = torch.zeros(router.n_experts, dtype=torch.bool)
        active[list(experts)] = True
        router.active = active
