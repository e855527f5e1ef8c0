"""Training throughput of a small transformer through the core: ``auto`` vs 2-rank DDP on CPU.

    python -m bench.traincore [--steps 40] [--corpus ../shared/data/text/tinyshakespeare.txt]

Both runs train the same OLMo 2 style model on the same byte-tokenised text at the same global
batch. ``auto`` is one process using both cores; DDP is two gloo ranks with one thread each, the
baseline a user would compare against when deciding whether data parallelism pays on one host.
Prints a table and writes it to ``bench/results/traincore.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.report import publish

REPO = Path(__file__).resolve().parents[1]


def train_job(
    strategy: str,
    devices: int,
    run_dir: str,
    steps: int,
    corpus: str,
    global_batch: int,
    seq_len: int,
) -> dict:
    import lightning as L

    from earthplat.traincore.checkpoint import CheckpointConfig
    from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
    from earthplat.traincore.trainer import TrainerConfig, fit
    from olmo_lm.data.text import TextDataConfig, TextDataModule
    from olmo_lm.model.config import TransformerConfig
    from olmo_lm.train.pretrain import CausalLMModule

    L.seed_everything(0, verbose=False)
    model = TransformerConfig(
        vocab_size=260, d_model=256, n_layers=4, n_heads=8, mlp_hidden=768, max_seq_len=seq_len
    )
    module = CausalLMModule(
        model, seq_len, OptimizerConfig(lr=1e-3), SchedulerConfig(warmup_steps=5)
    )
    data = TextDataModule(
        TextDataConfig(path=corpus, seq_len=seq_len, batch_size=global_batch // devices)
    )
    cfg = TrainerConfig(
        run_dir=run_dir,
        strategy=strategy,
        accelerator="cpu",
        devices=devices,
        max_steps=steps,
        enable_progress_bar=False,
        throughput_warmup_steps=5,
        process_group_backend="gloo" if strategy != "auto" else None,
        checkpoint=CheckpointConfig(every_n_steps=None, save_last=False),
        limit_val_batches=0,
    )
    t0 = time.perf_counter()
    trainer = fit(cfg, module, data)
    wall = time.perf_counter() - t0
    summary = (
        json.loads((Path(run_dir) / "throughput.json").read_text())
        if trainer.is_global_zero
        else {}
    )
    return {**summary, "wall_s": wall, "params": model.num_params()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--global-batch", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--corpus", default=str(REPO.parent / "shared/data/text/tinyshakespeare.txt"))
    p.add_argument("--out", default=str(REPO / "bench/results/traincore.md"))
    args = p.parse_args()

    import torch

    from bench.traincore import train_job as job  # importable by the DDP ranks
    from earthplat.traincore.distributed import run_distributed_test

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(os.cpu_count() or 1)
        rows.append(
            (
                "auto (1 process)",
                f"{torch.get_num_threads()}",
                job(
                    "auto",
                    1,
                    f"{tmp}/auto",
                    args.steps,
                    args.corpus,
                    args.global_batch,
                    args.seq_len,
                ),
            )
        )
        results = run_distributed_test(
            job,
            "ddp",
            2,
            f"{tmp}/ddp",
            args.steps,
            args.corpus,
            args.global_batch,
            args.seq_len,
            world_size=2,
            timeout=1800,
            init_process_group=False,
            threads_per_rank=1,
        )
        rows.append(("ddp (2 gloo ranks)", "1 per rank", results[0]))

    params = rows[0][2]["params"]
    lines = [
        f"model: OLMo 2 style, {params / 1e6:.2f}M params, seq {args.seq_len}, global batch "
        f"{args.global_batch}, {args.steps} steps (first 5 excluded), fp32, CPU",
        "",
        "| strategy | threads | samples/s | tokens/s | GFLOP/s | MFU | wall s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, threads, r in rows:
        lines.append(
            f"| {name} | {threads} | {r['samples_per_sec']:.1f} | "
            f"{r['tokens_per_sec']:.0f} | {r['flops_per_sec'] / 1e9:.1f} | "
            f"{r.get('mfu', float('nan')):.2f} | {r['wall_s']:.1f} |"
        )
    ratio = rows[1][2]["tokens_per_sec"] / rows[0][2]["tokens_per_sec"]
    lines += ["", f"ddp / auto tokens/s: {ratio:.2f}x"]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
