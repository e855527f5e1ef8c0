"""AdamW with the usual decay exemptions, and the learning-rate schedules the core offers.

Weight decay is not applied to normalisation weights, biases and embeddings: decaying them pulls
scales and lookup rows toward zero without regularising anything useful (the convention of GPT-2,
OLMo and timm). A parameter is exempt when it is 1-D (norm weights, biases, scalar gains) or lives
in an ``nn.Embedding`` / is named like an embedding or positional table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from earthplat.traincore.errors import TrainCoreConfigError

_NO_DECAY_NAME_HINTS = ("embed", "pos_", "position", "cls_token", "mask_token", "register")


@dataclass
class OptimizerConfig:
    """AdamW settings."""

    lr: float = 1e-3
    """Peak learning rate (reached at the end of warmup)."""
    weight_decay: float = 0.1
    """Decoupled weight decay, applied only to the decayed group (linear/conv matrices)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """Adam moment coefficients."""
    eps: float = 1e-8
    """Adam denominator epsilon."""
    fused: bool | None = None
    """Use the fused kernel (one pass per parameter for the whole update); ``None`` picks it
    when the caller allows it and every parameter is on a CUDA device, or is a plain
    (unsharded) tensor on the CPU, where the per-parameter loop of the default implementation
    costs more than the update itself at small and medium sizes. Lightning refuses gradient
    clipping with fused optimizers under mixed precision, so the core then falls back to the
    default implementation."""

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise TrainCoreConfigError(f"optimizer.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise TrainCoreConfigError(
                f"optimizer.weight_decay must be >= 0, got {self.weight_decay}"
            )
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise TrainCoreConfigError(f"optimizer.betas must lie in [0, 1), got {self.betas}")

    def build(self, model: nn.Module, *, allow_fused: bool = True) -> torch.optim.AdamW:
        groups = param_groups(model, self.weight_decay)
        params = [p for g in groups for p in g["params"]]
        fused = self.fused
        if fused is None:
            fused = allow_fused and bool(params) and all(_fusable(p) for p in params)
        return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, eps=self.eps, fused=fused)


def _fusable(param: torch.Tensor) -> bool:
    if param.device.type == "cuda":
        return True
    # CPU: plain tensors only (sharded DTensors keep the default, well-trodden path)
    return param.device.type == "cpu" and not hasattr(param, "to_local")


def is_no_decay(module: nn.Module, param_name: str, param: torch.Tensor) -> bool:
    """Whether ``param`` (named ``param_name`` inside ``module``) is exempt from weight decay."""
    if param.ndim <= 1:
        return True
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return True
    lowered = param_name.lower()
    return any(hint in lowered for hint in _NO_DECAY_NAME_HINTS)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed and a non-decayed group.

    Parameters shared between modules (tied embeddings) are placed once, by their first owner.
    """
    decay: list[torch.Tensor] = []
    no_decay: list[torch.Tensor] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full_name = f"{module_name}.{name}" if module_name else name
            (no_decay if is_no_decay(module, full_name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


@dataclass
class SchedulerConfig:
    """Learning-rate schedule as a multiplier of the peak rate, stepped once per optimizer step."""

    name: Literal["cosine", "wsd", "constant"] = "cosine"
    """``cosine``: linear warmup then cosine decay to ``min_lr_ratio``. ``wsd``: warmup, a stable
    plateau, then a linear decay over the last ``decay_fraction`` of training. ``constant``:
    warmup then flat."""
    warmup_steps: int = 0
    """Optimizer steps of linear warmup from 0 to the peak rate."""
    min_lr_ratio: float = 0.1
    """Final rate as a fraction of the peak (cosine and WSD)."""
    decay_fraction: float = 0.2
    """WSD only: fraction of ``total_steps`` spent in the final decay."""

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise TrainCoreConfigError(
                f"scheduler.warmup_steps must be >= 0, got {self.warmup_steps}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise TrainCoreConfigError(
                f"scheduler.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}"
            )
        if not 0.0 < self.decay_fraction <= 1.0:
            raise TrainCoreConfigError(
                f"scheduler.decay_fraction must lie in (0, 1], got {self.decay_fraction}"
            )

    def lr_lambda(self, total_steps: int) -> Callable[[int], float]:
        if total_steps <= 0:
            raise TrainCoreConfigError(
                "the learning-rate schedule needs the run's length: set trainer.max_steps "
                "(or max_epochs with a sized dataloader)"
            )
        if self.name == "cosine":
            return lambda step: cosine_with_warmup(
                step, self.warmup_steps, total_steps, self.min_lr_ratio
            )
        if self.name == "wsd":
            return lambda step: wsd(
                step, self.warmup_steps, total_steps, self.decay_fraction, self.min_lr_ratio
            )
        return lambda step: _warmup(step, self.warmup_steps)

    def build(
        self, optimizer: torch.optim.Optimizer, total_steps: int
    ) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_lambda(total_steps))


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def cosine_with_warmup(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Multiplier at ``step``: linear warmup, then half a cosine from 1 down to ``min_ratio``."""
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def wsd(
    step: int, warmup_steps: int, total_steps: int, decay_fraction: float, min_ratio: float
) -> float:
    """Warmup-stable-decay: warmup, flat at 1, then linear to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    decay_steps = max(1, round(total_steps * decay_fraction))
    decay_start = max(warmup_steps, total_steps - decay_steps)
    if step < decay_start:
        return 1.0
    progress = min(1.0, (step - decay_start) / max(1, total_steps - decay_start))
    return 1.0 - (1.0 - min_ratio) * progress
