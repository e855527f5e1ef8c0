"""``global_mean`` outside a process group, and the task losses built on it, equal the plain
PyTorch means (the 2-rank behaviour is tested in tests/integration/test_finetune_distributed.py)."""

import pytest
import torch
import torch.nn.functional as F

from earthplat.train.tasks.base import class_weighted_ce, masked_mean
from earthplat.traincore.reduce import global_mean


@pytest.mark.parametrize("weighted", [False, True])
def test_class_weighted_ce_equals_cross_entropy_mean(weighted):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 5, 5, generator=g, requires_grad=True)
    target = torch.randint(-1, 4, (3, 5, 5), generator=g)
    weight = torch.tensor([0.5, 1.0, 2.0, 4.0]) if weighted else None
    ours = class_weighted_ce(logits, target, weight)
    ref = F.cross_entropy(logits, target, weight=weight, ignore_index=-1)
    torch.testing.assert_close(ours, ref)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g_ours, g_ref)


def test_nothing_labelled_gives_zero_with_a_graph():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = class_weighted_ce(logits, torch.full((2, 4, 4), -1), None)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0
    values = torch.randn(5, requires_grad=True)
    assert masked_mean(values, torch.zeros(5, dtype=torch.bool)).item() == 0.0


def test_masked_mean_and_min_count():
    values = torch.tensor([1.0, 2.0, 3.0, 10.0])
    assert masked_mean(values, torch.tensor([True, True, True, False])).item() == 2.0
    assert global_mean(torch.tensor(1.0), torch.tensor(0.25), min_count=1e-12).item() == 4.0
    assert global_mean(torch.tensor(1.0), torch.tensor(0.25)).item() == 1.0  # clamped at 1
