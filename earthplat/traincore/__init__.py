"""The shared distributed-training core.

It knows nothing of pixels or tokens: typed configs that build a Lightning ``Trainer`` (DDP,
FSDP2, tensor parallel), checkpoint/resume with an exact data order, AdamW with decay exemptions,
cosine and WSD schedules, and callbacks for throughput/MFU, energy-carbon-water and the saved
config. ``earthplat`` models and ``olmo_lm`` both train through it.

Names are resolved lazily so that ``import earthplat.traincore`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainerConfig": "earthplat.traincore.trainer",
    "fit": "earthplat.traincore.trainer",
    "TrainCoreModule": "earthplat.traincore.module",
    "OptimizerConfig": "earthplat.traincore.optim",
    "SchedulerConfig": "earthplat.traincore.optim",
    "param_groups": "earthplat.traincore.optim",
    "CheckpointConfig": "earthplat.traincore.checkpoint",
    "find_resume_checkpoint": "earthplat.traincore.checkpoint",
    "EnergyConfig": "earthplat.traincore.callbacks.energy",
    "ResumableDataLoader": "earthplat.traincore.data",
    "ResumableSampler": "earthplat.traincore.data",
    "run_distributed_test": "earthplat.traincore.distributed",
    "clean_environment": "earthplat.traincore.distributed",
    "build_strategy": "earthplat.traincore.parallel",
    "TrainCoreError": "earthplat.traincore.errors",
    "TrainCoreConfigError": "earthplat.traincore.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'earthplat.traincore' has no attribute {name!r}")
