import torch
import torch.nn.functional as F

from olmo_lm.model.layers.moe import MoE


class _Ctx:
    collect_router_stats = True

    def __init__(self):
        self.router_stats = []


def _loop_reference(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Per-token, per-choice evaluation of the routed experts (the definition)."""
    _, _, weights, experts = moe.router(x)
    h = moe.experts.hidden
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        for j in range(moe.top_k):
            e = int(experts[n, j])
            gate_up = moe.experts.w_gate_up[e] @ x[n]
            y = moe.experts.w_down[e] @ (F.silu(gate_up[:h]) * gate_up[h:])
            out[n] += weights[n, j] * y
    return out


def _moe(n_experts=6, top_k=2, seed=0):
    torch.manual_seed(seed)
    moe = MoE(16, 24, n_experts, top_k)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return moe


def test_grouped_experts_equal_the_per_token_definition():
    moe = _moe()
    x = torch.randn(37, 16)
    with torch.no_grad():
        torch.testing.assert_close(moe(x), _loop_reference(moe, x), rtol=1e-5, atol=1e-5)


def test_dropless_when_every_token_picks_the_same_experts():
    moe = _moe()
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[3] = 5.0  # every token's first choice
    x = torch.randn(50, 16).abs()
    ctx = _Ctx()
    with torch.no_grad():
        out = moe(x, ctx)
        torch.testing.assert_close(out, _loop_reference(moe, x), rtol=1e-5, atol=1e-5)
    assert ctx.router_stats[0].load[3] == 50  # all 50 routed, none dropped


def test_aux_losses_have_their_definitions_and_train_the_router():
    moe = _moe(n_experts=4, top_k=1)
    x = torch.randn(64, 16)
    ctx = _Ctx()
    moe(x, ctx)
    stats = ctx.router_stats[0]
    logits = x @ moe.router.weight.T
    probs = logits.softmax(-1)
    fraction = F.one_hot(probs.argmax(-1), 4).float().mean(0)
    torch.testing.assert_close(stats.lb_loss, 4 * (fraction * probs.mean(0)).sum())
    torch.testing.assert_close(stats.z_loss, torch.logsumexp(logits, -1).square().mean())
    assert stats.load.sum() == 64
    (stats.lb_loss + stats.z_loss).backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_balanced_routing_gives_unit_balance_loss():
    moe = _moe(n_experts=4, top_k=1)
    with torch.no_grad():
        moe.router.weight.zero_()
    ctx = _Ctx()
    moe(torch.randn(8, 16), ctx)  # uniform probabilities: P_e = 1/4 whatever f is
    torch.testing.assert_close(ctx.router_stats[0].lb_loss, torch.tensor(1.0))
