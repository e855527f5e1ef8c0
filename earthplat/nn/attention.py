"""Transformer blocks over *packed* tokens: samples keep different numbers of tokens.

Linear layers (QKV, projection, MLP) run on the packed [Ntot, D] rows, so padding costs nothing
there; only the attention core sees a padded [B, Nmax] layout, with a key-padding mask (no
dense [B, heads, N, N] mask is ever built). When every sample has the same count the mask is
dropped and SDPA takes its fused path. MLP, DropPath and LayerScale come from timm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import LayerScale, Mlp
from torch import nn


@dataclass
class PackLayout:
    """Where packed rows live in the padded [B, Nmax] layout."""

    batch: torch.Tensor
    """[Ntot] sample of each row."""
    pos: torch.Tensor
    """[Ntot] position of each row within its sample."""
    counts: torch.Tensor
    """[B] rows per sample."""
    nmax: int

    @classmethod
    def from_keep(cls, keep: torch.Tensor) -> tuple[PackLayout, torch.Tensor]:
        """From a [B, N] bool mask: the layout and the [Ntot] flat indices into B*N, in order."""
        counts = keep.sum(dim=1)
        flat = keep.reshape(-1).nonzero(as_tuple=True)[0]  # [Ntot], sample-major
        batch = flat // keep.shape[1]
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(flat.numel(), device=keep.device) - starts[batch]
        nmax = int(counts.max()) if counts.numel() else 0
        return cls(batch, pos, counts, nmax), flat

    @property
    def uniform(self) -> bool:
        return bool((self.counts == self.nmax).all())

    def pad(self, rows: torch.Tensor) -> torch.Tensor:
        """[Ntot, ...] -> [B, Nmax, ...] (zeros in padding)."""
        out = rows.new_zeros(self.counts.numel(), self.nmax, *rows.shape[1:])
        out[self.batch, self.pos] = rows
        return out

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        return padded[self.batch, self.pos]

    def key_mask(self) -> torch.Tensor | None:
        """[B, 1, 1, Nmax] True where a key is real; None when no sample is padded."""
        if self.uniform:
            return None
        real = torch.arange(self.nmax, device=self.counts.device)[None] < self.counts[:, None]
        return real[:, None, None, :]


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``kv`` is None, else cross-attention."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        q_layout: PackLayout,
        kv: torch.Tensor | None = None,
        kv_layout: PackLayout | None = None,
    ) -> torch.Tensor:
        kv, kv_layout = (x, q_layout) if kv is None else (kv, kv_layout)
        h = self.heads
        q = q_layout.pad(self.q(x))  # [B, Nq, D]
        k, v = kv_layout.pad(self.kv(kv)).chunk(2, dim=-1)  # [B, Nk, D] each
        b, nq, d = q.shape
        q = q.view(b, nq, h, d // h).transpose(1, 2)  # [B, H, Nq, d]
        k = k.view(b, -1, h, d // h).transpose(1, 2)
        v = v.view(b, -1, h, d // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=kv_layout.key_mask())
        y = y.transpose(1, 2).reshape(b, nq, d)  # [B, Nq, D]
        return self.proj(q_layout.unpad(y))  # [Ntot, D]


def drop_path(x: torch.Tensor, layout: PackLayout, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth per *sample* on packed rows (timm's DropPath would drop per row)."""
    if p == 0.0 or not training:
        return x
    keep = torch.rand(layout.counts.numel(), device=x.device) >= p  # [B]
    return x * (keep[layout.batch].to(x.dtype) / (1.0 - p))[:, None]


class Block(nn.Module):
    """Pre-norm ViT block on packed rows; with ``cross`` it attends to a second sequence."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        cross: bool = False,
        kv_dim: int | None = None,
        init_values: float | None = None,
    ) -> None:
        super().__init__()
        self.cross = cross
        self.norm1 = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv_dim or dim) if cross else None
        self.attn = Attention(dim, heads, kv_dim=kv_dim if cross else None)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path_rate = drop_path
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        layout: PackLayout,
        kv: torch.Tensor | None = None,
        kv_layout: PackLayout | None = None,
    ) -> torch.Tensor:
        if self.cross:
            y = self.attn(self.norm1(x), layout, self.norm_kv(kv), kv_layout)
        else:
            y = self.attn(self.norm1(x), layout)
        p, training = self.drop_path_rate, self.training
        x = x + drop_path(self.ls1(y), layout, p, training)
        return x + drop_path(self.ls2(self.mlp(self.norm2(x))), layout, p, training)
