"""Gated DeltaNet (Yang, Kautz & Hatamizadeh, 2024), as Olmo Hybrid publishes it, in pure PyTorch.

A linear-attention layer whose state is a matrix memory ``S [Dk, Dv]`` per head. Per token,
with decay ``a_t = exp(g_t)`` and write strength ``beta_t``::

    S_t = a_t S_{t-1} + beta_t k_t (v_t - a_t S_{t-1}^T k_t)^T      (decay, then delta rule)
    o_t = S_t^T q_t

Two forms compute the same thing:

- ``recurrent_gated_delta_rule``: the loop above, one token at a time (decoding).
- ``chunked_gated_delta_rule``: chunks of C tokens; within a chunk the delta rule is a unit
  lower-triangular system solved for all tokens at once (the WY form), so the sequential part is
  one step per *chunk* and the rest is matmuls (training, prefill).

Around the rule, as published: separate q/k/v projections each followed by a depthwise causal
convolution (kernel 4) and SiLU; queries and keys L2-normalised, queries scaled by Dk^-1/2;
``beta = sigmoid(w_b x)`` (times 2 when negative eigenvalues are allowed, so the transition
``I - beta k k^T`` may reflect); ``g = -exp(A_log) softplus(w_a x + dt_bias)``; the output
RMS-normalised per head and gated by ``silu(w_g x)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from olmo_lm.model.layers.norm import GatedRMSNorm, l2_normalize


def recurrent_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-by-token form. ``q, k [B, H, T, Dk]``, ``v [B, H, T, Dv]``, ``g, beta [B, H, T]``
    (float32; q already scaled). Returns ``o [B, H, T, Dv]`` and the final state."""
    b, h, t, dk = k.shape
    s = q.new_zeros(b, h, dk, v.shape[-1]) if state is None else state
    out = []
    for i in range(t):
        s = s * g[:, :, i].exp()[..., None, None]
        k_i = k[:, :, i]  # [B, H, Dk]
        recalled = torch.einsum("bhkv,bhk->bhv", s, k_i)
        delta = (v[:, :, i] - recalled) * beta[:, :, i, None]
        s = s + k_i[..., :, None] * delta[..., None, :]
        out.append(torch.einsum("bhkv,bhk->bhv", s, q[:, :, i]))
    return torch.stack(out, dim=2), s


def chunked_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked (WY) form, same arguments and results as ``recurrent_gated_delta_rule``.

    Within a chunk, let ``G_i`` be the cumulative log decay up to token i and ``S_0`` the state
    entering the chunk. The delta-rule writes ``u_i = beta_i (v_i - a_i S_{i-1}^T k_i)`` satisfy

        u_i + sum_{j<i} beta_i e^{G_i - G_j} (k_i . k_j) u_j = beta_i v_i - beta_i e^{G_i} S_0^T k_i

    i.e. ``(I + A) U = beta V - (beta e^G K) S_0`` with A strictly lower triangular, so
    ``U = W - K~ S_0`` with ``W, K~`` from one triangular solve per chunk, independent of S_0.
    Then ``o_i = e^{G_i} S_0^T q_i + sum_{j<=i} e^{G_i - G_j} (q_i . k_j) u_j`` and the state
    leaving the chunk is ``e^{G_C} S_0 + sum_j e^{G_C - G_j} k_j u_j^T``.
    """
    b, h, t, dk = k.shape
    dv = v.shape[-1]
    pad = (-t) % chunk_size
    if pad:  # zero decay-free padding at the end changes nothing before it
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        g, beta = (F.pad(x, (0, pad)) for x in (g, beta))
    n, c = (t + pad) // chunk_size, chunk_size
    q, k, v = (x.reshape(b, h, n, c, -1) for x in (q, k, v))  # [B, H, N, C, D]
    g, beta = g.reshape(b, h, n, c), beta.reshape(b, h, n, c)
    cum = g.cumsum(-1)  # [B, H, N, C] log decay from the chunk start, inclusive
    causal = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    # e^{G_i - G_j} for j <= i (zero above the diagonal; masked before exp to avoid overflow)
    pair = (cum[..., :, None] - cum[..., None, :]).masked_fill(~causal, float("-inf")).exp()
    kk = k @ k.transpose(-1, -2)  # [B, H, N, C, C]
    # I + A: only the strictly lower triangle is read; unitriangular=True takes the diagonal as 1
    lhs = beta[..., None] * kk * pair
    w = torch.linalg.solve_triangular(lhs, beta[..., None] * v, upper=False, unitriangular=True)
    k_tilde = torch.linalg.solve_triangular(
        lhs, (beta * cum.exp())[..., None] * k, upper=False, unitriangular=True
    )
    intra = (q @ k.transpose(-1, -2)) * pair  # [B, H, N, C, C], zero above the diagonal
    q_decayed = q * cum.exp()[..., None]
    k_to_end = k * (cum[..., -1:] - cum).exp()[..., None]
    chunk_decay = cum[..., -1].exp()[..., None, None]  # [B, H, N, 1, 1]
    s = q.new_zeros(b, h, dk, dv) if state is None else state
    out = []
    for i in range(n):
        u = w[:, :, i] - k_tilde[:, :, i] @ s  # [B, H, C, Dv]
        out.append(q_decayed[:, :, i] @ s + intra[:, :, i] @ u)
        s = s * chunk_decay[:, :, i] + k_to_end[:, :, i].transpose(-1, -2) @ u
    o = torch.stack(out, dim=2).reshape(b, h, n * c, dv)[:, :, :t]
    return o, s


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


class GatedDeltaNet(nn.Module):
    """The Gated DeltaNet token mixer of Olmo Hybrid (input ``[B, T, C]``, output the same)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_v_heads: int,
        head_k_dim: int,
        head_v_dim: int,
        *,
        conv_kernel: int = 4,
        allow_neg_eigval: bool = True,
        chunk_size: int = 64,
        a_log_range: tuple[float, float] = (0.0, 16.0),
        dt_range: tuple[float, float] = (1e-3, 0.1),
        dt_floor: float = 1e-4,
    ) -> None:
        super().__init__()
        if n_v_heads % n_heads:
            raise ValueError(f"value heads {n_v_heads} must be a multiple of key heads {n_heads}")
        self.n_heads, self.n_v_heads = n_heads, n_v_heads
        self.head_k_dim, self.head_v_dim = head_k_dim, head_v_dim
        self.key_dim, self.value_dim = n_heads * head_k_dim, n_v_heads * head_v_dim
        self.conv_kernel, self.chunk_size = conv_kernel, chunk_size
        self.allow_neg_eigval = allow_neg_eigval
        self.a_log_range, self.dt_range, self.dt_floor = a_log_range, dt_range, dt_floor
        self.w_q = nn.Linear(d_model, self.key_dim, bias=False)
        self.w_k = nn.Linear(d_model, self.key_dim, bias=False)
        self.w_v = nn.Linear(d_model, self.value_dim, bias=False)
        self.w_a = nn.Linear(d_model, n_v_heads, bias=False)
        self.w_b = nn.Linear(d_model, n_v_heads, bias=False)
        self.w_g = nn.Linear(d_model, self.value_dim, bias=False)
        self.w_o = nn.Linear(self.value_dim, d_model, bias=False)
        channels = 2 * self.key_dim + self.value_dim
        # one depthwise conv over [q; k; v] channels = three separate convs, fused
        self.conv_weight = nn.Parameter(torch.empty(channels, 1, conv_kernel))
        self.A_log = nn.Parameter(torch.empty(n_v_heads))
        self.dt_bias = nn.Parameter(torch.empty(n_v_heads))
        self.o_norm = GatedRMSNorm(head_v_dim, eps=1e-5)
        self.reset_gdn_parameters()

    def reset_gdn_parameters(self) -> None:
        """Published init: A ~ U(a_log_range) (stored as log A); dt log-uniform in dt_range,
        floored, stored as softplus^-1(dt); the conv as nn.Conv1d initialises it."""
        with torch.no_grad():
            self.A_log.copy_(torch.empty_like(self.A_log).uniform_(*self.a_log_range).log())
            lo, hi = (math.log(x) for x in self.dt_range)
            dt = torch.exp(torch.rand_like(self.dt_bias) * (hi - lo) + lo).clamp_min(self.dt_floor)
            self.dt_bias.copy_(_inverse_softplus(dt))
            nn.init.kaiming_uniform_(self.conv_weight, a=math.sqrt(5))

    def _conv(self, x: torch.Tensor, state) -> torch.Tensor:
        # x: [B, C, T]; causal depthwise conv whose left context is the cached window (or zeros)
        b, ch, _t = x.shape
        k = self.conv_kernel
        past = x.new_zeros(b, ch, k - 1) if state is None or state.conv is None else state.conv
        full = torch.cat((past.to(x.dtype), x), dim=-1)  # [B, C, K - 1 + T]
        if state is not None:
            state.conv = full[..., -(k - 1) :].detach().clone()
        return F.silu(F.conv1d(full, self.conv_weight.to(x.dtype), groups=ch))  # [B, C, T]

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        if ctx.valid is not None:  # padding must not write into the state
            x = x * ctx.valid[..., None].to(x.dtype)
        b, t, _ = x.shape
        state = ctx.layer_cache(self)
        mixed = torch.cat((self.w_q(x), self.w_k(x), self.w_v(x)), dim=-1).transpose(1, 2)
        mixed = self._conv(mixed, state).transpose(1, 2)  # [B, T, 2 Kd + Vd]
        q, k, v = mixed.split((self.key_dim, self.key_dim, self.value_dim), dim=-1)
        q = q.reshape(b, t, self.n_heads, self.head_k_dim).transpose(1, 2).float()
        k = k.reshape(b, t, self.n_heads, self.head_k_dim).transpose(1, 2).float()
        v = v.reshape(b, t, self.n_v_heads, self.head_v_dim).transpose(1, 2).float()
        if self.n_v_heads != self.n_heads:  # grouped value heads share their key head
            rep = self.n_v_heads // self.n_heads
            q, k = q.repeat_interleave(rep, dim=1), k.repeat_interleave(rep, dim=1)
        q = l2_normalize(q) * self.head_k_dim**-0.5
        k = l2_normalize(k)
        beta = self.w_b(x).float().sigmoid()
        if self.allow_neg_eigval:
            beta = beta * 2.0
        g = -self.A_log.float().exp() * F.softplus(self.w_a(x).float() + self.dt_bias.float())
        beta, g = beta.transpose(1, 2), g.transpose(1, 2)  # [B, H, T]
        memory = None if state is None else state.memory
        if t == 1 and state is not None:
            o, memory = recurrent_gated_delta_rule(q, k, v, g, beta, memory)
        else:
            o, memory = chunked_gated_delta_rule(q, k, v, g, beta, memory, self.chunk_size)
        if state is not None:
            state.memory = memory.detach()
            state.length += t
        o = o.transpose(1, 2).to(x.dtype)  # [B, T, Hv, Dv]
        gate = self.w_g(x).view(b, t, self.n_v_heads, self.head_v_dim)
        o = self.o_norm(o, gate).reshape(b, t, self.value_dim)
        return self.w_o(o)
