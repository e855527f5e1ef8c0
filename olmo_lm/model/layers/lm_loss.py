"""The language-model loss: cross-entropy of the next token and OLMo 2's z-loss.

``lm_losses`` is the plain formula on full logits ``[N, V]``. ``fused_lm_head_loss`` computes
the same from the final hidden states and the LM-head weight without ever holding the logits:
it walks the rows in chunks, and per chunk computes the logits, one logsumexp, both losses and
the gradient of ``ce + z_weight * z`` with respect to the chunk's logits, which it folds at once
into the gradients of the hidden states and of the weight (the loss is the graph's end, so the
gradient is known in the forward; backward only scales it). A chunk of 2M floats stays in
cache, where a full ``[N, V]`` logits tensor, its temporaries and its gradient are a fresh
allocation each (on CPU, page faults on every one of them, every step). This is the
"fused linear cross-entropy" of Liger-Kernel and OLMo-core's ``fused_linear`` loss, in torch ops.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 21
"""Logits per chunk (8 MiB in float32): rows per chunk = this / vocab size, at least
``MIN_CHUNK_ROWS`` (so a 100k vocabulary still multiplies in matmul-sized pieces)."""
MIN_CHUNK_ROWS = 256


def lm_losses(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy, z-loss) of ``logits [N, V]`` against ``targets [N]``, in float32, from
    one logsumexp: ``mean(lse - logit[target])`` and ``mean(lse^2)``."""
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)  # [N]
    ce = (lse - logits.gather(-1, targets[:, None]).squeeze(-1)).mean()
    return ce, lse.square().mean()


class _FusedLMHeadLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, z_weight: float, rows: int, grad_enabled: bool):
        # hidden [N, C], weight [V, C], targets [N]
        n = hidden.shape[0]
        # (needs_input_grad stays True under no_grad: the caller's grad mode decides)
        need_h = grad_enabled and ctx.needs_input_grad[0]
        need_w = grad_enabled and ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        grad_w = grad_w if need_w else None
        ce_sum = torch.zeros((), dtype=torch.float32, device=hidden.device)
        z_sum = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, n, rows):
            h, t = hidden[start : start + rows], targets[start : start + rows, None]
            logits = (h @ weight.t()).float()  # [n, V], fresh: modified in place below
            peak = logits.amax(-1, keepdim=True)  # [n, 1]
            target_logit = logits.gather(1, t)
            e = logits.sub_(peak).exp_()  # exp(logit - max)
            total = e.sum(-1, keepdim=True)
            lse = peak + total.log()  # [n, 1]
            ce_sum += (lse - target_logit).sum()
            z_sum += lse.square().sum()
            if not (need_h or need_w):
                continue
            # d(ce + w z)/dlogits = softmax * (1 + 2 w lse) - onehot(target), each over N
            g = e.mul_((1.0 + 2.0 * z_weight * lse) / (total * n))
            g.scatter_add_(1, t, g.new_full(t.shape, -1.0 / n))
            g = g.to(hidden.dtype)
            if need_h:
                torch.mm(g, weight, out=grad_h[start : start + rows])
            if need_w:
                if g.dtype == torch.float32:
                    grad_w.addmm_(g.t(), h)
                else:  # accumulate low-precision chunk products in float32
                    grad_w += (g.t() @ h).float()
        ce, z = ce_sum / n, z_sum / n
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        ctx.mark_non_differentiable(ce, z)
        return ce + z_weight * z, ce, z

    @staticmethod
    def backward(ctx, grad_loss, _grad_ce, _grad_z):
        grad_h, grad_w = ctx.saved_tensors
        if grad_h is not None:
            grad_h = grad_h * grad_loss.to(grad_h.dtype)
        if grad_w is not None:
            grad_w = (grad_w * grad_loss).to(ctx.weight_dtype)
        return grad_h, grad_w, None, None, None, None


def fused_lm_head_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    z_weight: float = 0.0,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(``ce + z_weight * z``, ce, z) of the logits ``hidden [N, C] @ weight [V, C]^T`` against
    ``targets [N]``, as ``lm_losses`` computes them, without materialising ``[N, V]``.

    Only the first output is differentiable (ce and z are for the log). The logits and the
    softmax are computed in float32 whatever the inputs' dtype, like ``lm_losses``.
    """
    rows = max(MIN_CHUNK_ROWS, chunk_elements // weight.shape[0])
    grad_enabled = torch.is_grad_enabled()
    return _FusedLMHeadLoss.apply(hidden, weight, targets, float(z_weight), rows, grad_enabled)
