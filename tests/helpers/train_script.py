"""A training process for the crash-and-restart test: ``python -m tests.helpers.train_script``.

It trains a test model through the core and, when it finishes, saves its final weights to
``RUN_DIR/final.safetensors``. ``--sleep`` slows each step so a test can kill it mid-run; it does
not change what is computed.
"""

from __future__ import annotations

import argparse
import time

import lightning as L
from safetensors.torch import save_file

from earthplat.traincore.checkpoint import CheckpointConfig
from earthplat.traincore.trainer import TrainerConfig, fit
from tests.helpers.models import build, state_of


class Throttle(L.Callback):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args) -> None:
        time.sleep(self.seconds)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run-dir", required=True)
    p.add_argument("--kind", default="lm")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--sleep", type=float, default=0.0)
    args = p.parse_args()
    module, data = build(args.kind, seed=2, global_batch=8)
    cfg = TrainerConfig(
        run_dir=args.run_dir,
        accelerator="cpu",
        devices=1,
        max_steps=args.steps,
        enable_progress_bar=False,
        log_every_n_steps=1,
        checkpoint=CheckpointConfig(every_n_steps=args.every),
    )
    fit(cfg, module, data, callbacks=[Throttle(args.sleep)] if args.sleep else [])
    save_file(state_of(module), f"{args.run_dir}/final.safetensors")


if __name__ == "__main__":
    main()
