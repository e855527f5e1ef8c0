"""``TrainerConfig``: a typed description of a run that builds a Lightning ``Trainer``.

``fit`` is the one entry point: it seeds, builds the trainer with the core's callbacks, and resumes
from the run directory's last checkpoint when one exists, so re-running an interrupted command is
how a run is resumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from earthplat.traincore.callbacks import (
    ConfigSaverCallback,
    DataProgressCallback,
    EnergyCallback,
    EnergyConfig,
    RngStateCallback,
    ThroughputCallback,
)
from earthplat.traincore.checkpoint import CheckpointConfig, find_resume_checkpoint
from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.metrics import LOG_DIR, next_attempt_name
from earthplat.traincore.parallel import build_strategy

_PRECISIONS = ("32-true", "32", "bf16-mixed", "bf16-true", "16-mixed", "64-true")


@dataclass
class TrainerConfig:
    """Everything about how a model is trained, independent of what the model is."""

    run_dir: str = "runs/default"
    """Run directory: checkpoints, logs, the saved config, energy and throughput reports."""
    strategy: str = "auto"
    """``auto``, ``ddp`` or ``fsdp`` (FSDP2 via ModelParallelStrategy, with optional TP)."""
    tensor_parallel_size: int = 1
    """Tensor-parallel degree (``fsdp`` strategy only); data-parallel = world / this."""
    accelerator: str = "auto"
    """``cpu``, ``gpu`` or ``auto``."""
    devices: int | str = "auto"
    """Devices (processes) per node."""
    num_nodes: int = 1
    """Nodes (torchrun/SLURM provide the ranks)."""
    process_group_backend: str | None = None
    """``gloo`` or ``nccl``; ``None`` picks by device."""
    precision: str = "32-true"
    """Lightning precision: ``32-true``, ``bf16-mixed``, ``bf16-true`` or ``16-mixed``."""
    fsdp_param_dtype: str | None = None
    """FSDP2 mixed precision (``fsdp`` strategy): parameters are gathered for compute in this
    dtype (``bfloat16``) while the sharded master copy stays in its own; ``None``: no policy."""
    fsdp_reduce_dtype: str = "float32"
    """FSDP2 mixed precision: dtype gradients are reduced in across ranks."""
    max_steps: int = -1
    """Optimizer steps to train for (``-1``: use ``max_epochs``)."""
    max_epochs: int | None = None
    """Epochs to train for when ``max_steps`` is -1."""
    gradient_clip_val: float | None = 1.0
    """Clip the global gradient norm to this (``None``: no clipping)."""
    accumulate_grad_batches: int = 1
    """Micro-batches per optimizer step."""
    seed: int = 0
    """Seeds python, numpy, torch and dataloader workers."""
    deterministic: bool = False
    """Use deterministic algorithms (slower on GPU; bitwise-repeatable runs)."""
    log_every_n_steps: int = 10
    """How often metrics are logged."""
    val_check_interval: int | float | None = None
    """Validation every this many steps (int) or fraction of an epoch (float)."""
    limit_val_batches: int | float | None = None
    """Validation batches per check."""
    enable_progress_bar: bool = True
    """Show the progress bar."""
    throughput_warmup_steps: int = 2
    """Steps left out of the throughput summary."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoint schedule."""
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    """Energy, carbon and water accounting."""

    def __post_init__(self) -> None:
        if self.precision not in _PRECISIONS:
            raise TrainCoreConfigError(
                f"trainer.precision {self.precision!r} is not supported; use one of {_PRECISIONS}"
            )
        if self.max_steps == -1 and self.max_epochs is None:
            raise TrainCoreConfigError("set trainer.max_steps or trainer.max_epochs")
        if self.max_steps != -1 and self.max_steps < 1:
            raise TrainCoreConfigError("trainer.max_steps must be >= 1 (or -1)")
        if self.accumulate_grad_batches < 1:
            raise TrainCoreConfigError("trainer.accumulate_grad_batches must be >= 1")
        if self.strategy not in ("auto", "ddp", "fsdp"):
            raise TrainCoreConfigError(
                f"trainer.strategy {self.strategy!r} is unknown; use auto, ddp or fsdp"
            )
        if self.fsdp_param_dtype is not None and self.strategy != "fsdp":
            raise TrainCoreConfigError(
                "trainer.fsdp_param_dtype is FSDP2 mixed precision; set trainer.strategy: fsdp "
                "(or use trainer.precision for other strategies)"
            )

    @property
    def path(self) -> Path:
        return Path(self.run_dir)

    def callbacks(self, config_to_save: Any = None) -> list[L.Callback]:
        callbacks: list[L.Callback] = [
            DataProgressCallback(),
            RngStateCallback(),
            ThroughputCallback(
                run_dir=self.path,
                warmup_steps=self.throughput_warmup_steps,
                log_every_n_steps=self.log_every_n_steps,
            ),
            EnergyCallback(self.energy, run_dir=self.path),
            self.checkpoint.build(self.path),
        ]
        best = self.checkpoint.build_best(self.path)
        if best is not None:
            callbacks.append(best)
        if config_to_save is not None:
            callbacks.append(ConfigSaverCallback(config_to_save, self.path))
        return callbacks

    def build(
        self, config_to_save: Any = None, callbacks: list[L.Callback] = (), **overrides: Any
    ) -> L.Trainer:
        """A Trainer with the core's callbacks (plus ``callbacks``) and a CSV logger."""
        kwargs: dict[str, Any] = dict(
            default_root_dir=str(self.path),
            strategy=build_strategy(
                self.strategy,
                tensor_parallel_size=self.tensor_parallel_size,
                process_group_backend=self.process_group_backend,
                mixed_precision=(
                    None
                    if self.fsdp_param_dtype is None
                    else (self.fsdp_param_dtype, self.fsdp_reduce_dtype)
                ),
            ),
            accelerator=self.accelerator,
            devices=self.devices,
            num_nodes=self.num_nodes,
            precision=self.precision,
            max_steps=self.max_steps,
            max_epochs=self.max_epochs,
            gradient_clip_val=self.gradient_clip_val,
            accumulate_grad_batches=self.accumulate_grad_batches,
            deterministic=self.deterministic,
            log_every_n_steps=self.log_every_n_steps,
            val_check_interval=self.val_check_interval,
            limit_val_batches=self.limit_val_batches,
            enable_progress_bar=self.enable_progress_bar,
            logger=CSVLogger(
                save_dir=str(self.path), name=LOG_DIR, version=next_attempt_name(self.path)
            ),
            callbacks=[*self.callbacks(config_to_save), *callbacks],
            # the core's ResumableSampler shards over ranks itself; Lightning must keep it
            use_distributed_sampler=False,
            enable_model_summary=False,
        )
        if isinstance(self.val_check_interval, int):
            # step-based validation that may span epochs (small datasets, long runs)
            kwargs["check_val_every_n_epoch"] = None
        if self.strategy == "fsdp" and self.gradient_clip_val is not None:
            # FSDP2 parameters are DTensors; Lightning's norm clipping handles them, but only
            # by norm (value clipping is not defined for shards)
            kwargs["gradient_clip_algorithm"] = "norm"
        kwargs.update(overrides)
        return L.Trainer(**kwargs)


def fit(
    config: TrainerConfig,
    module: L.LightningModule,
    datamodule: L.LightningDataModule | None = None,
    *,
    train_dataloaders: Any = None,
    config_to_save: Any = None,
    callbacks: list[L.Callback] = (),
    resume: bool = True,
    **trainer_overrides: Any,
) -> L.Trainer:
    """Seed, build the trainer and fit (a datamodule or plain dataloaders), resuming from the
    run directory's last checkpoint."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    trainer = config.build(
        config_to_save=config_to_save, callbacks=list(callbacks), **trainer_overrides
    )
    ckpt = find_resume_checkpoint(config.path, config.checkpoint.dirname) if resume else None
    if ckpt is not None and trainer.is_global_zero:
        print(f"resuming from {ckpt}")
    trainer.fit(
        module,
        train_dataloaders=train_dataloaders,
        datamodule=datamodule,
        ckpt_path=str(ckpt) if ckpt else None,
    )
    return trainer
