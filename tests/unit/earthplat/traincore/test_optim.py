import math

import pytest
import torch
from torch import nn

from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.optim import (
    OptimizerConfig,
    SchedulerConfig,
    cosine_with_warmup,
    param_groups,
    wsd,
)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(10, 8)
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.lin = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.conv = nn.Conv2d(3, 8, 3)
        self.out = nn.Linear(8, 10, bias=False)
        self.out.weight = self.tok.weight  # tied: must appear once
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_no_decay_on_norms_biases_embeddings():
    net = Net()
    groups = {g["name"]: g for g in param_groups(net, 0.1)}
    decay = {id(p) for p in groups["decay"]["params"]}
    no_decay = {id(p) for p in groups["no_decay"]["params"]}
    assert decay == {id(net.lin.weight), id(net.conv.weight)}
    assert no_decay == {
        id(net.tok.weight),
        id(net.pos_embed),
        id(net.lin.bias),
        id(net.norm.weight),
        id(net.norm.bias),
        id(net.conv.bias),
    }
    assert groups["decay"]["weight_decay"] == 0.1 and groups["no_decay"]["weight_decay"] == 0.0


def test_adamw_leaves_no_decay_params_untouched_without_gradient_signal():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    opt = OptimizerConfig(lr=0.1, weight_decay=0.5).build(net)
    before_w, before_ln = net[0].weight.clone(), net[1].weight.clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert not torch.equal(net[0].weight, before_w)  # decayed
    assert torch.equal(net[1].weight, before_ln)  # exempt


def test_cosine_schedule_shape():
    f = lambda s: cosine_with_warmup(s, warmup_steps=10, total_steps=110, min_ratio=0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(110) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) - 1e-12 for s in range(10, 110))


def test_wsd_schedule_shape():
    f = lambda s: wsd(s, warmup_steps=10, total_steps=100, decay_fraction=0.2, min_ratio=0.0)  # noqa: E731
    assert f(4) == pytest.approx(0.5)
    assert [f(s) for s in (10, 50, 79, 80)] == [1.0, 1.0, 1.0, 1.0]
    assert f(90) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0)


def test_scheduler_builds_lambda_lr():
    net = nn.Linear(2, 2)
    opt = OptimizerConfig(lr=1.0).build(net)
    sched = SchedulerConfig(name="cosine", warmup_steps=0, min_lr_ratio=0.0).build(opt, 4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(
        [1.0, 0.5 + 0.5 * math.cos(math.pi / 4), 0.5, 0.5 + 0.5 * math.cos(3 * math.pi / 4)]
    )


@pytest.mark.parametrize("kwargs", [{"lr": 0}, {"weight_decay": -1}, {"betas": (0.9, 1.0)}])
def test_bad_optimizer_config(kwargs):
    with pytest.raises(TrainCoreConfigError):
        OptimizerConfig(**kwargs)


def test_schedule_needs_length():
    with pytest.raises(TrainCoreConfigError, match="max_steps"):
        SchedulerConfig().lr_lambda(0)
