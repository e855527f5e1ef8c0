"""Our OLMo 2 training step beside ai2-olmo-core's at the same shape, our MoE beside our dense
model at equal active parameters, and generation with and without the KV cache.

    python -m bench.olmo_core_compare [--repeats 3] [--steps 20] [--no-ref]

The reference lives only in the benchmark's own environment (``make bench-env``:
ai2-olmo-core 3.0.0 beside torch 2.14.1, installed with --no-deps; its transformer module also
imports ``bettermap``: ``.venv-bench/bin/pip install bettermap "torch==2.14.1"``); it is never
a dependency of the project. Each
measurement runs in a fresh process with 2 threads, ours and the reference alternating; the
median of ``--repeats`` runs is reported.

Cases (OLMo-core's ``olmo2_30M`` shape: d 256, 4 layers, 8 heads, SwiGLU 768, QK-norm,
reordered norm, RoPE 500k; vocab 4096, 5,509,376 parameters; batch 8 x 256 tokens; fp32;
z-loss 1e-5 on both; AdamW):

  dense      ours through the normal training path (``CausalLMModule`` + ``traincore.fit``,
             tokens/s from its throughput callback, warm-up steps left out) vs the reference
             model's forward with labels and z-loss, backward and AdamW step
  moe        ours, 8 experts of width 384, top-2 (the dense FFN's 768 active), dropless,
             grouped; tokens/s against the dense row (ai2-olmo-core 3.0.0's MoE routing needs a
             GPU kernel, so there is no reference row)
  generate   ours, 128 new tokens after a 32-token prompt, batch 1 and 8, greedy, with the
             KV cache and by recomputing the sequence every step
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.report import publish, run_worker

REPO = Path(__file__).resolve().parents[1]
VOCAB, D, LAYERS, HEADS, BATCH, SEQ = 4096, 256, 4, 8, 8, 256
WARMUP = 3


def _config(moe: bool = False):
    from olmo_lm.model.config import MoEConfig, TransformerConfig

    cfg = TransformerConfig(
        vocab_size=VOCAB, d_model=D, n_layers=LAYERS, n_heads=HEADS, max_seq_len=SEQ
    )
    if moe:
        cfg = cfg.replace(ffn="moe", moe=MoEConfig(n_experts=8, top_k=2, hidden=384))
    return cfg


def _ours_train(steps: int, moe: bool) -> dict:
    import lightning as L
    import torch
    from torch.utils.data import Dataset

    from earthplat.traincore.data import ResumableDataLoader
    from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
    from earthplat.traincore.trainer import TrainerConfig, fit
    from olmo_lm.train.pretrain import CausalLMModule, LMLossConfig

    class Tokens(Dataset):
        def __len__(self):
            return BATCH * (steps + WARMUP)

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return torch.randint(VOCAB, (SEQ + 1,), generator=g)

    class Data(L.LightningDataModule):
        def train_dataloader(self):
            return ResumableDataLoader(Tokens(), batch_size=BATCH, seed=0)

    torch.manual_seed(0)
    cfg = _config(moe)
    module = CausalLMModule(
        cfg,
        SEQ,
        OptimizerConfig(lr=1e-3, weight_decay=0.1),
        SchedulerConfig(warmup_steps=1),
        LMLossConfig(z_loss_weight=1e-5),
    )
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = TrainerConfig(
            run_dir=run_dir,
            accelerator="cpu",
            devices=1,
            max_steps=steps + WARMUP,
            precision="32-true",
            enable_progress_bar=False,
            throughput_warmup_steps=WARMUP,
            log_every_n_steps=50,
        )
        trainer.checkpoint.every_n_steps = None
        trainer.checkpoint.save_last = False
        fit(trainer, module, Data())
        summary = json.loads((Path(run_dir) / "throughput.json").read_text())
    return {
        "tokens_per_s": summary["tokens_per_sec"],
        "params": cfg.num_params(),
        "active_params": cfg.active_params(),
        "threads": torch.get_num_threads(),
    }


def _reference_train(steps: int) -> dict:
    import torch
    from olmo_core.nn.transformer import TransformerConfig

    torch.manual_seed(0)
    model = TransformerConfig.olmo2_30M(vocab_size=VOCAB).build(init_device="cpu")
    model.init_weights(device=torch.device("cpu"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    params = sum(p.numel() for p in model.parameters())

    def step(i: int) -> None:
        g = torch.Generator().manual_seed(i)
        batch = torch.randint(VOCAB, (BATCH, SEQ + 1), generator=g)
        out = model(batch[:, :-1], labels=batch[:, 1:], z_loss_multiplier=1e-5)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # ours clips at 1.0 too
        opt.step()
        opt.zero_grad(set_to_none=True)

    for i in range(WARMUP):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(WARMUP + i)
    secs = time.perf_counter() - t0
    return {
        "tokens_per_s": steps * BATCH * SEQ / secs,
        "params": params,
        "active_params": params,
        "threads": torch.get_num_threads(),
    }


def _ours_generate(batch: int, use_cache: bool) -> dict:
    import torch

    from olmo_lm.generate import SamplingConfig, generate

    torch.manual_seed(0)
    model = _config().replace(max_seq_len=512).build().eval()
    prompt = torch.randint(VOCAB, (batch, 32), generator=torch.Generator().manual_seed(0))
    generate(model, prompt, 4, SamplingConfig(temperature=0), use_cache=use_cache)  # warm-up
    result = generate(model, prompt, 128, SamplingConfig(temperature=0), use_cache=use_cache)
    return {"tokens_per_s": result.tokens_per_second, "prefill_s": result.prefill_seconds}


CASES = {
    ("ours", "dense"): lambda a: _ours_train(a.steps, moe=False),
    ("ref", "dense"): lambda a: _reference_train(a.steps),
    ("ours", "moe"): lambda a: _ours_train(a.steps, moe=True),
    ("ours", "generate-b1-cache"): lambda a: _ours_generate(1, True),
    ("ours", "generate-b1-nocache"): lambda a: _ours_generate(1, False),
    ("ours", "generate-b8-cache"): lambda a: _ours_generate(8, True),
    ("ours", "generate-b8-nocache"): lambda a: _ours_generate(8, False),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=20, help="measured training steps per run")
    p.add_argument("--python-ref", default=str(REPO / ".venv-bench/bin/python"))
    p.add_argument("--no-ref", action="store_true", help="skip the reference rows")
    p.add_argument("--worker", nargs=2, metavar=("IMPL", "CASE"))
    p.add_argument("--out", default=str(REPO / "bench/results/olmo_core_compare.md"))
    args = p.parse_args()
    if args.worker:
        print(json.dumps(CASES[tuple(args.worker)](args)))
        return
    if not args.no_ref and not Path(args.python_ref).exists():
        raise SystemExit(f"{args.python_ref} not found: run `make bench-env` (or pass --no-ref)")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "PYTHONPATH": str(REPO),
        "PYTHONWARNINGS": "ignore",
    }
    runs: dict[tuple[str, str], list[dict]] = {}
    order = [k for k in CASES if not (args.no_ref and k[0] == "ref")]
    for r in range(args.repeats):
        for impl, case in order if r % 2 == 0 else order[::-1]:  # alternate the order
            python = args.python_ref if impl == "ref" else sys.executable
            cmd = [python, "-m", "bench.olmo_core_compare", "--worker", impl, case]
            result = run_worker([*cmd, "--steps", str(args.steps)], env, REPO, f"{impl} {case}")
            runs.setdefault((impl, case), []).append(result)
            print(impl, case, json.dumps(runs[(impl, case)][-1]), flush=True)
    report(runs, args.out)


def report(runs: dict[tuple[str, str], list[dict]], out: str) -> None:
    def med(key, impl, case):
        vals = [r[key] for r in runs.get((impl, case), [])]
        return statistics.median(vals) if vals else float("nan")

    repeats = max(len(v) for v in runs.values())
    lines = [
        f"olmo2_30M shape (d {D}, {LAYERS} layers, {HEADS} heads), vocab {VOCAB}, batch "
        f"{BATCH} x {SEQ}, fp32, 2 threads, z-loss 1e-5, AdamW; median of {repeats} "
        "alternating runs",
        "",
        "| case | impl | parameters (active) | tokens/s |",
        "|---|---|---:|---:|",
    ]
    for (impl, case), vals in runs.items():
        if case in ("dense", "moe"):
            lines.append(
                f"| {case} | {impl} | {vals[0]['params']:,} ({vals[0]['active_params']:,}) | "
                f"{med('tokens_per_s', impl, case):,.0f} |"
            )
    lines.append("")
    if ("ref", "dense") in runs:
        ratio = med("tokens_per_s", "ours", "dense") / med("tokens_per_s", "ref", "dense")
        lines.append(f"dense: ours / ai2-olmo-core tokens/s = {ratio:.2f}x (target >= 1.2x)")
    if ("ours", "moe") in runs:
        ratio = med("tokens_per_s", "ours", "moe") / med("tokens_per_s", "ours", "dense")
        lines.append(f"moe: MoE / dense at equal active parameters = {ratio:.2f}x (target >= 0.7x)")
    lines += [
        "",
        "| generation | tokens/s with KV cache | recomputing | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for b in (1, 8):
        cached = med("tokens_per_s", "ours", f"generate-b{b}-cache")
        plain = med("tokens_per_s", "ours", f"generate-b{b}-nocache")
        lines.append(
            f"| batch {b}, 32 + 128 tokens | {cached:,.0f} | {plain:,.0f} | {cached / plain:.1f}x |"
        )
    publish(lines, out)


if __name__ == "__main__":
    main()
