"""``TrainCoreModule``: the LightningModule base every model trained on the core derives from.

It wires the core's optimizer and schedule, applies FSDP2/TP when the strategy provides a device
mesh, and exposes what the throughput callback needs. Subclasses implement ``training_step`` and
may override the hooks below.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import lightning as L
from torch import nn

from earthplat.traincore.data import clear_data_parallel
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.parallel import apply_parallelism

T = TypeVar("T")


def coerce_config(cls: type[T], value: T | dict | None) -> T | None:
    """Accept a config dataclass or its plain-dict form (as stored in checkpoint hparams)."""
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    raise TypeError(f"expected {cls.__name__} or a dict of its fields, got {type(value).__name__}")


def plain_hparams(**values: Any) -> dict[str, Any]:
    """Hyper-parameters with dataclasses turned into dicts, so checkpoints load with
    ``weights_only=True`` and without importing this project's classes."""
    return {
        k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in values.items()
    }


class TrainCoreModule(L.LightningModule):
    flops_per_sample: float | None = None
    """Training FLOPs (forward + backward) of one sample, for MFU; ``None`` when unknown."""

    def __init__(
        self,
        optimizer: OptimizerConfig | dict | None = None,
        scheduler: SchedulerConfig | dict | None = None,
    ) -> None:
        super().__init__()
        self.optimizer_config = coerce_config(OptimizerConfig, optimizer) or OptimizerConfig()
        self.scheduler_config = coerce_config(SchedulerConfig, scheduler) or SchedulerConfig()

    # --- what a batch holds (throughput callback) ---------------------------------------------
    def samples_in_batch(self, batch: Any) -> int:
        from earthplat.traincore.callbacks.throughput import _default_samples

        return _default_samples(batch)

    def tokens_in_batch(self, batch: Any) -> int | None:
        """Tokens in ``batch`` for tokens/s; ``None`` when the model has no notion of tokens."""
        return None

    # --- parallelism hooks ---------------------------------------------------------------------
    def fsdp_units(self) -> list[nn.Module]:
        """Submodules to shard as their own FSDP2 units (e.g. transformer blocks)."""
        return []

    def fsdp_forward_methods(self) -> dict[nn.Module, list[str]]:
        """Submodules called through methods other than ``forward`` (FSDP2 must know them)."""
        return {}

    def tensor_parallel_plan(self) -> dict | None:
        """``{module FQN: ParallelStyle}`` for tensor parallelism; ``None`` when unsupported."""
        return None

    def configure_model(self) -> None:
        mesh = self.device_mesh
        if mesh is None:
            return
        apply_parallelism(
            self,
            mesh,
            fsdp_units=self.fsdp_units(),
            tp_plan=self.tensor_parallel_plan(),
            mp_policy=getattr(self.trainer.strategy, "mp_policy", None),
            forward_methods=self.fsdp_forward_methods(),
        )

    def teardown(self, stage: str) -> None:
        # the mesh's data-parallel declaration ends with the run (configure_model sets it again
        # for a later validate/test of this module)
        clear_data_parallel()

    # --- optimisation ----------------------------------------------------------------------------
    def configure_optimizers(self) -> dict:
        trainer = self.trainer
        clips = bool(trainer.gradient_clip_val)
        optimizer = self.optimizer_config.build(
            self, allow_fused=not (clips and str(trainer.precision).endswith("-mixed"))
        )
        total = trainer.estimated_stepping_batches
        scheduler = self.scheduler_config.build(optimizer, int(total))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }
