"""Loss normalisation over the global batch of a data-parallel run.

DDP and FSDP2 average gradients over the data-parallel ranks. A loss that is a mean over a
rank's own valid elements (labelled pixels, objects, class-weighted targets) then trains on the
mean of per-rank means, which differs from one process's mean over the same global batch as soon
as ranks hold different numbers of valid elements. ``global_mean`` divides by the count summed
over the ranks instead (and multiplies by the rank count, which the gradient average divides
out), so N ranks take the step one process would.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from earthplat.traincore.data import data_parallel_group


def global_mean(total: torch.Tensor, count: torch.Tensor, min_count: float = 1.0) -> torch.Tensor:
    """``total / count`` over the global batch: both are this rank's sums; ``count`` is summed
    across data-parallel ranks while gradients are being taken (a training step; every rank
    must call it then, as with any collective). Evaluation (no grad) stays local. The count is
    clamped at ``min_count``, so a batch with nothing valid gives 0 with a graph."""
    count = count.detach().to(total.dtype)
    group, world = data_parallel_group()
    if world > 1 and torch.is_grad_enabled() and dist.is_available() and dist.is_initialized():
        count = count.clone()
        dist.all_reduce(count, group=group)
        return total * world / count.clamp_min(min_count)
    return total / count.clamp_min(min_count)
