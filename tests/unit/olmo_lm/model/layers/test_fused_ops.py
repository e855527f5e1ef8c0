"""The hand-written forward/backward ops against the plain formulas they replace (values and
gradients): the chunked LM-head loss, RMSNorm and the rotary embedding."""

import pytest
import torch

from olmo_lm.model.config import TransformerConfig
from olmo_lm.model.layers.lm_loss import fused_lm_head_loss, lm_losses
from olmo_lm.model.layers.norm import rms_norm
from olmo_lm.model.layers.rotary import RotaryEmbedding, apply_rotary


def _grads(fn, *inputs):
    inputs = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*inputs)
    return out.detach(), torch.autograd.grad(out, inputs)


@pytest.mark.parametrize("z_weight, chunk", [(1e-4, 64), (0.0, 1 << 20), (0.5, 7 * 32)])
def test_fused_lm_head_loss_is_the_plain_loss(z_weight, chunk, monkeypatch):
    import olmo_lm.model.layers.lm_loss as lm_loss

    monkeypatch.setattr(lm_loss, "MIN_CHUNK_ROWS", 1)  # several chunks, a ragged last one
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(45, 16, generator=g), torch.randn(32, 16, generator=g)
    targets = torch.randint(32, (45,), generator=g)

    def plain(h, w):
        ce, z = lm_losses(h @ w.t(), targets)
        return (ce + z_weight * z) * 3.0  # an upstream factor reaches the gradient

    def fused(h, w):
        return fused_lm_head_loss(h, w, targets, z_weight, chunk_elements=chunk)[0] * 3.0

    value, grads = _grads(plain, h, w)
    value_f, grads_f = _grads(fused, h, w)
    torch.testing.assert_close(value_f, value)
    for a, b in zip(grads_f, grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    _, ce, z = fused_lm_head_loss(h, w, targets, z_weight)
    ce_ref, z_ref = lm_losses(h @ w.t(), targets)
    torch.testing.assert_close(ce, ce_ref)
    torch.testing.assert_close(z, z_ref)
    assert not ce.requires_grad and not z.requires_grad
    with torch.no_grad():  # evaluation: the losses alone (no gradient is folded in)
        torch.testing.assert_close(fused_lm_head_loss(h, w, targets, z_weight)[1], ce_ref)


def test_fused_lm_head_loss_in_bfloat16_computes_in_float32():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(20, 16, generator=g).bfloat16().requires_grad_()
    w = torch.randn(32, 16, generator=g).bfloat16().requires_grad_()
    targets = torch.randint(32, (20,), generator=g)
    loss, ce, _ = fused_lm_head_loss(h, w, targets, 1e-4)
    torch.testing.assert_close(ce, lm_losses(h @ w.t(), targets)[0], rtol=1e-3, atol=1e-3)
    loss.backward()
    assert h.grad.dtype == w.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("preset", ["tiny", "olmoe_tiny"])
def test_model_loss_with_labels_equals_the_loss_of_its_logits(preset):
    torch.manual_seed(0)
    cfg = getattr(TransformerConfig, preset)(vocab_size=64)
    model = cfg.build()
    ids = torch.randint(64, (2, 17), generator=torch.Generator().manual_seed(0))
    inputs, labels = ids[:, :-1], ids[:, 1:]
    out = model(inputs, labels=labels, z_loss_weight=1e-3)
    out.loss.backward()
    fused_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    plain = model(inputs, return_output=True)
    ce, z = lm_losses(plain.logits.flatten(0, 1), labels.flatten())
    (ce + 1e-3 * z).backward()
    torch.testing.assert_close(out.ce_loss, ce.detach())
    torch.testing.assert_close(out.z_loss, z.detach())
    assert len(out.router_stats) == len(plain.router_stats)
    for a, p in zip(fused_grads, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_is_the_plain_formula(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 5, 24, generator=g) * 3).to(dtype)
    w = (1 + 0.1 * torch.randn(24, generator=g)).to(dtype)
    upstream = torch.randn(3, 5, 24, generator=g).to(dtype)

    def plain(x, w):  # the published formula: normalise in float32, scale, round once
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)
        return ((w.float() * y).to(dtype) * upstream).sum()

    value, grads = _grads(plain, x, w)
    value_f, grads_f = _grads(lambda x, w: (rms_norm(x, w, 1e-6) * upstream).sum(), x, w)
    tol = {} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 2e-2}
    torch.testing.assert_close(value_f, value, **tol)
    for a, b in zip(grads_f, grads):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, **tol)


def test_rotary_is_the_rotate_half_formula():
    g = torch.Generator().manual_seed(0)
    rope = RotaryEmbedding(16, 10_000.0)
    cos, sin = rope(torch.arange(9).repeat(2, 1))  # [B, T, D]
    x = torch.randn(2, 9, 3, 16, generator=g).transpose(1, 2)  # [B, H, T, D], strided as SDPA's
    upstream = torch.randn(2, 3, 9, 16, generator=g)

    def plain(x):
        x1, x2 = x.chunk(2, dim=-1)
        rotated = torch.cat((-x2, x1), dim=-1)
        return ((x * cos[:, None] + rotated * sin[:, None]) * upstream).sum()

    value, (grad,) = _grads(plain, x)
    value_f, (grad_f,) = _grads(lambda x: (apply_rotary(x, cos, sin) * upstream).sum(), x)
    torch.testing.assert_close(value_f, value)
    torch.testing.assert_close(grad_f, grad)
