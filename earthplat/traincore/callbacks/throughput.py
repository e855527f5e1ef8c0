"""Samples/s, tokens/s, achieved FLOP/s and MFU of the training loop.

The LightningModule reports what a batch holds through two optional methods, which
``TrainCoreModule`` provides: ``samples_in_batch(batch)`` and ``tokens_in_batch(batch)``, plus an
optional ``flops_per_sample`` (training FLOPs of forward and backward for one sample). The windowed
arithmetic is Lightning's ``Throughput``; the peak for MFU comes from ``traincore.flops``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.throughput import Throughput

from earthplat.traincore.flops import device_peak_flops

_PRECISION_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16, "64": torch.float64}


def precision_dtype(precision: str) -> torch.dtype:
    """The compute dtype of a Lightning precision string (``32-true``, ``bf16-mixed`` ...)."""
    return _PRECISION_DTYPES.get(str(precision).split("-")[0], torch.float32)


def _default_samples(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    if isinstance(batch, dict):
        return _default_samples(next(iter(batch.values())))
    if isinstance(batch, list | tuple):
        return _default_samples(batch[0])
    if hasattr(batch, "__len__"):  # a batch type that knows its size (earthplat.batch.Batch)
        return len(batch)
    raise TypeError("cannot infer the batch size; define samples_in_batch() on the module")


class ThroughputCallback(L.Callback):
    """Logs throughput every ``log_every_n_steps`` and writes ``throughput.json`` at the end.

    Args:
        run_dir: where ``throughput.json`` goes (rank 0 only); ``None`` writes nothing.
        window: number of optimizer steps the rolling rates are computed over.
        warmup_steps: steps excluded from the run summary (allocation, lazy init, compilation).
        peak_flops: per-device peak FLOP/s; ``None`` looks it up (GPU table or measured CPU peak).
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        window: int = 10,
        warmup_steps: int = 2,
        peak_flops: float | None = None,
        log_every_n_steps: int = 10,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.window = max(2, window)
        self.warmup_steps = warmup_steps
        self.peak_flops = peak_flops
        self.log_every_n_steps = log_every_n_steps
        self.summary: dict[str, float] = {}
        self._peak_looked_up = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._peak_looked_up = False
        if self.peak_flops is None and getattr(pl_module, "flops_per_sample", None):
            dtype = precision_dtype(trainer.precision)
            self.peak_flops = device_peak_flops(pl_module.device, dtype)
            self._peak_looked_up = True
        self._throughput = Throughput(
            available_flops=self.peak_flops, world_size=trainer.world_size, window_size=self.window
        )
        self._elapsed = 0.0
        self._samples = 0
        self._tokens = 0
        self._batches = 0
        self._has_tokens = False
        self._summary_start: tuple[float, int, int] | None = None
        self._t0 = 0.0

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._sync(pl_module)
        self._t0 = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._sync(pl_module)
        self._elapsed += time.perf_counter() - self._t0
        count = getattr(pl_module, "samples_in_batch", _default_samples)
        samples = int(count(batch))
        tokens_fn = getattr(pl_module, "tokens_in_batch", None)
        tokens = tokens_fn(batch) if tokens_fn is not None else None
        self._batches += 1
        self._samples += samples
        if tokens is not None:
            self._has_tokens = True
            self._tokens += int(tokens)
        fps = getattr(pl_module, "flops_per_sample", None)
        self._throughput.update(
            time=self._elapsed,
            batches=self._batches,
            samples=self._samples,
            lengths=self._tokens if self._has_tokens else None,
            flops=int(fps * samples) if fps else None,
        )
        if trainer.global_step == self.warmup_steps and self._summary_start is None:
            self._summary_start = (self._elapsed, self._samples, self._tokens)
        if self._batches % self.log_every_n_steps == 0:
            metrics = {
                k: v
                for k, v in self._throughput.compute().items()
                if k.endswith("_per_sec") or k.endswith("mfu")
            }
            renamed = {
                f"throughput/{k.replace('items', 'tokens')}": float(v) for k, v in metrics.items()
            }
            if renamed:
                pl_module.log_dict(renamed, rank_zero_only=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        start = self._summary_start or (0.0, 0, 0)
        elapsed = self._elapsed - start[0]
        if elapsed <= 0 or self._samples <= start[1]:
            start, elapsed = (0.0, 0, 0), self._elapsed
        world = trainer.world_size
        summary: dict[str, float] = {"world_size": world, "train_seconds": self._elapsed}
        if elapsed > 0:
            summary["samples_per_sec"] = (self._samples - start[1]) * world / elapsed
            if self._has_tokens:
                summary["tokens_per_sec"] = (self._tokens - start[2]) * world / elapsed
            fps = getattr(pl_module, "flops_per_sample", None)
            if fps:
                summary["flops_per_sec"] = fps * summary["samples_per_sec"]
                if self.peak_flops:
                    mfu = summary["flops_per_sec"] / (self.peak_flops * world)
                    if mfu > 1.0 and self._peak_looked_up and pl_module.device.type == "cpu":
                        # a cached CPU peak measured under load is too low: measure again
                        from earthplat.traincore.flops import cpu_peak_flops

                        dtype = precision_dtype(trainer.precision)
                        self.peak_flops = max(self.peak_flops, cpu_peak_flops(dtype, refresh=True))
                        summary["peak_remeasured"] = True
                        mfu = summary["flops_per_sec"] / (self.peak_flops * world)
                    summary["peak_flops_per_device"] = self.peak_flops
                    summary["mfu"] = mfu
        self.summary = summary
        if self.run_dir is not None and trainer.is_global_zero:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "throughput.json").write_text(json.dumps(summary, indent=2))
