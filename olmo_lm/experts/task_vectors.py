"""Merge to Learn: task-vector merging (Ilharco et al., 2023; Morrison et al., 2024, "Merge to
Learn"): a fine-tuned model's difference from its base, ``tau = theta_ft - theta_base``, is
added back scaled, ``theta = theta_base + lambda * sum_i tau_i``, with ``lambda`` chosen on a
validation set (the scale that gives the lowest validation loss from a grid).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DEFAULT_SCALES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def task_vector(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor]):
    """``tuned - base`` per floating-point parameter."""
    return {k: tuned[k] - v for k, v in base.items() if v.is_floating_point()}


def apply_task_vectors(
    base: dict[str, torch.Tensor], vectors: list[dict[str, torch.Tensor]], scale: float
) -> dict[str, torch.Tensor]:
    """``base + scale * sum(vectors)``."""
    out = {k: v.clone() for k, v in base.items()}
    for tau in vectors:
        for k, d in tau.items():
            out[k] += scale * d
    return out


def choose_scale(
    base: dict[str, torch.Tensor],
    vectors: list[dict[str, torch.Tensor]],
    validation_loss: Callable[[dict[str, torch.Tensor]], float],
    scales: tuple[float, ...] = DEFAULT_SCALES,
) -> tuple[float, dict[float, float]]:
    """(the scale with the lowest ``validation_loss`` of the merged weights, loss per scale)."""
    losses = {s: float(validation_loss(apply_task_vectors(base, vectors, s))) for s in scales}
    return min(losses, key=losses.get), losses
