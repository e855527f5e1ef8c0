"""``olmo-lm``: a thin command line over the language-model training and generation functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.data.text import TextDataConfig
from olmo_lm.model.config import TransformerConfig


@dataclass
class PretrainJobConfig:
    """One language-model pretraining run (what ``config.yaml`` of the run records)."""

    model: TransformerConfig = field(default_factory=TransformerConfig.tiny)
    data: TextDataConfig = field(default_factory=TextDataConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_steps=200))
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=3e-3))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(warmup_steps=20))


def run_pretraining(job: PretrainJobConfig) -> dict[str, float]:
    """Pretrain a causal LM; resumes from the run directory's last checkpoint if there is one."""
    import lightning as L

    from earthplat.traincore.trainer import fit
    from olmo_lm.data.text import TextDataModule
    from olmo_lm.train.pretrain import CausalLMModule

    if job.model.max_seq_len < job.data.seq_len:
        job.model.max_seq_len = job.data.seq_len
    L.seed_everything(job.trainer.seed, workers=True, verbose=False)
    module = CausalLMModule(job.model, job.data.seq_len, job.optimizer, job.scheduler)
    trainer = fit(job.trainer, module, TextDataModule(job.data), config_to_save=job)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        print(f"run directory: {Path(job.trainer.run_dir).resolve()}")
        print("final metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    return metrics


def train(
    model: TransformerConfig | None = None,
    data: TextDataConfig | None = None,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
) -> dict[str, float]:
    """Pretrain a causal LM; re-running the same command resumes an interrupted run."""
    defaults = PretrainJobConfig()
    job = PretrainJobConfig(
        model=model or defaults.model,
        data=data or defaults.data,
        trainer=trainer or defaults.trainer,
        optimizer=optimizer or defaults.optimizer,
        scheduler=scheduler or defaults.scheduler,
    )
    return run_pretraining(job)


def generate(
    run_dir: str,
    prompt: str = "\n",
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 40,
    seed: int = 0,
) -> str:
    """Sample text from the last checkpoint of a run directory."""
    import torch

    from earthplat.traincore.checkpoint import find_resume_checkpoint
    from olmo_lm.data.tokenizer import ByteTokenizer
    from olmo_lm.train.pretrain import CausalLMModule

    ckpt = find_resume_checkpoint(run_dir)
    if ckpt is None:
        raise SystemExit(f"no checkpoint under {run_dir}/checkpoints; train first")
    module = CausalLMModule.load_from_checkpoint(ckpt, map_location="cpu")
    module.eval()
    tok = ByteTokenizer()
    ids = torch.tensor([tok.encode(prompt)], dtype=torch.long)
    out = module.model.generate(
        ids, max_new_tokens, temperature, top_k, generator=torch.Generator().manual_seed(seed)
    )
    text = tok.decode(out[0].tolist())
    print(text)
    return text


def main(argv: list[str] | None = None) -> None:
    from jsonargparse import CLI

    CLI(
        {"train": train, "generate": generate},
        args=argv,
        as_positional=False,
        description="OLMo-family language models on the earthplat training core.",
    )


__all__ = ["PretrainJobConfig", "generate", "main", "run_pretraining", "train"]
