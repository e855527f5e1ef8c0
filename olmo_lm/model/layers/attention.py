"""Causal self-attention with grouped-query heads, QK-norm and an optional sliding window.

OLMo 2/3 normalise queries and keys over the *whole* projection (all heads at once) before
splitting heads, which is what ``qk_norm`` does here. Grouped-query attention shares each key/
value head among ``n_heads / n_kv_heads`` query heads; SDPA's ``enable_gqa`` does the sharing
without materialising repeated keys. A sliding window of W lets a query at position p see keys
in (p - W, p]. With document ids in the context (document masking) the mask is also
block-diagonal: a query sees only keys of its own document.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from olmo_lm.model.layers.norm import RMSNorm
from olmo_lm.model.layers.rotary import apply_rotary


def attention_mask(
    q_pos: torch.Tensor, k_pos: torch.Tensor, window: int | None, q_valid: torch.Tensor | None
) -> torch.Tensor:
    """Boolean ``[B, 1, Tq, Tk]`` (True = may attend) from absolute positions.

    ``k_pos`` is -1 for padding and empty cache slots. Padding queries are let attend to
    everything: their outputs are never used, and a fully masked row would give NaN.
    """
    q, k = q_pos[:, :, None], k_pos[:, None, :]  # [B, Tq, 1], [B, 1, Tk]
    allowed = (k >= 0) & (k <= q)
    if window is not None:
        allowed &= k > q - window
    if q_valid is not None:
        allowed |= ~q_valid[:, :, None]
    return allowed[:, None]


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``[B, Hkv, T, D] -> [B, Hkv * groups, T, D]``: each kv head repeated for its queries."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


class Attention(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int,
        head_dim: int,
        *,
        qk_norm: bool = True,
        norm_eps: float = 1e-6,
        window: int | None = None,
        clip_qkv: float | None = None,
        rope_kind: str | None = "full",
    ) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.window, self.clip_qkv, self.rope_kind = window, clip_qkv, rope_kind
        self.w_q = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.w_k = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)
        self.w_v = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)
        self.w_o = nn.Linear(n_heads * head_dim, d_model, bias=False)
        self.q_norm = RMSNorm(n_heads * head_dim, norm_eps) if qk_norm else None
        self.k_norm = RMSNorm(n_kv_heads * head_dim, norm_eps) if qk_norm else None

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.w_q(x), self.w_k(x), self.w_v(x)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.clip_qkv is not None:  # OLMoE's optional clamp (after the norm, as published)
            q, k, v = (z.clamp(-self.clip_qkv, self.clip_qkv) for z in (q, k, v))
        q = q.view(b, t, -1, self.head_dim).transpose(1, 2)  # [B, H, T, D]
        k = k.view(b, t, -1, self.head_dim).transpose(1, 2)  # [B, Hkv, T, D]
        v = v.view(b, t, -1, self.head_dim).transpose(1, 2)
        if self.rope_kind is not None:
            cos, sin = ctx.rope[self.rope_kind]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        cache = ctx.layer_cache(self)
        doc_ids = getattr(ctx, "doc_ids", None)  # a context without documents: None
        if doc_ids is not None:  # packed documents: causal within each, nothing across
            same = doc_ids[:, :, None] == doc_ids[:, None, :]  # [B, T, T]
            mask = attention_mask(ctx.positions, ctx.key_positions, self.window, None)
            mask, causal = mask & same[:, None], False
        elif cache is None and ctx.valid is None and self.window is None:
            mask, causal = None, True  # the common training case: SDPA's own causal kernel
        else:
            k_pos = ctx.key_positions
            if cache is not None:
                k, v, k_pos = cache.update(k, v, ctx.key_positions)
            mask, causal = attention_mask(ctx.positions, k_pos, self.window, ctx.valid), False
            if cache is None and ctx.valid is None:
                mask = mask[:1]  # the same for every row
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=self.n_kv_heads != self.n_heads
        )  # [B, H, T, D]
        return self.w_o(y.transpose(1, 2).reshape(b, t, -1))  # [B, T, C]
