"""``olmo-lm train``: pretraining a causal LM from a text file or a token-shard mixture."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.data.text import TextDataConfig
from olmo_lm.model.config import TransformerConfig
from olmo_lm.train.pretrain import LMLossConfig


@dataclass
class PretrainJobConfig:
    """One language-model pretraining run (what ``config.yaml`` of the run records)."""

    model: TransformerConfig = field(default_factory=TransformerConfig.tiny)
    data: TextDataConfig = field(default_factory=TextDataConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_steps=200))
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=3e-3))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(warmup_steps=20))
    loss: LMLossConfig = field(default_factory=LMLossConfig)
    init_from: str | None = None
    """Start from these weights (a model directory, transformers checkpoint or run)."""
    max_tokens: int | None = None
    """Train for this many tokens (sets ``trainer.max_steps`` from the global batch)."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in backward (memory for compute)."""
    compile: bool = False
    """``torch.compile`` each block."""

    def steps_for_tokens(self) -> int | None:
        """``max_tokens`` as optimizer steps: tokens / (batch x seq_len x ranks x accum)."""
        if self.max_tokens is None:
            return None
        t = self.trainer
        ranks = (t.devices if isinstance(t.devices, int) else 1) * t.num_nodes
        ranks //= t.tensor_parallel_size  # tensor-parallel ranks share one batch
        per_step = self.data.batch_size * self.data.seq_len * ranks * t.accumulate_grad_batches
        return max(1, -(-self.max_tokens // per_step))


def run_pretraining(job: PretrainJobConfig) -> dict[str, float]:
    """Pretrain a causal LM; resumes from the run directory's last checkpoint if there is one."""
    import lightning as L

    from earthplat.traincore.trainer import fit
    from olmo_lm.train.pretrain import CausalLMModule, build_data_module, check_document_masking

    if job.model.max_seq_len < job.data.seq_len:
        job.model.max_seq_len = job.data.seq_len
    if job.data.document_masking:
        check_document_masking(job.model, "--data.document_masking")
    steps = job.steps_for_tokens()
    if steps is not None:
        job.trainer.max_steps = steps
    L.seed_everything(job.trainer.seed, workers=True, verbose=False)
    module = CausalLMModule(
        job.model,
        job.data.seq_len,
        job.optimizer,
        job.scheduler,
        job.loss,
        # under FSDP2 no rank builds the whole model: shards are allocated after sharding
        init_device="meta" if job.trainer.strategy == "fsdp" and job.init_from is None else "cpu",
        activation_checkpointing=job.activation_checkpointing,
        compile_blocks=job.compile,
    )
    if job.init_from is not None:
        from olmo_lm.model.store import load_state

        cfg, state, _ = load_state(job.init_from)
        if (cfg.d_model, cfg.n_layers, cfg.vocab_size) != (
            job.model.d_model,
            job.model.n_layers,
            job.model.vocab_size,
        ):
            raise TrainCoreConfigError(
                f"--init_from {job.init_from} holds a different model than --model; leave "
                "--model out to train the one it holds"
            )
        module.model.load_state_dict(state, strict=not cfg.tie_embeddings)
    data = build_data_module(job.data)
    trainer = fit(job.trainer, module, data, config_to_save=job)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        print(f"run directory: {Path(job.trainer.run_dir).resolve()}")
        shown = {k: v for k, v in metrics.items() if "/expert_load/" not in k}
        print("final metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(shown.items())))
    return metrics


def train(
    model: TransformerConfig | None = None,
    data: TextDataConfig | None = None,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
    loss: LMLossConfig | None = None,
    init_from: str | None = None,
    max_tokens: int | None = None,
    activation_checkpointing: bool = False,
    compile: bool = False,
) -> dict[str, float]:
    """Pretrain a causal LM; re-running the same command resumes an interrupted run.

    ``--init_from DIR`` starts from converted weights (``olmo-lm convert --from-hf``); its
    architecture is used when ``--model`` is not given. ``--max_tokens`` gives the duration in
    tokens instead of ``--trainer.max_steps``.

    Args:
        model: The decoder (a preset's fields, or a full TransformerConfig).
        data: The text, tokenizer, sequence length and batch size.
        trainer: How the run is trained (run dir, strategy, devices, precision, steps...).
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule (warmup, then cosine, linear or WSD decay).
        loss: Extra loss terms (z-loss, MoE load balancing and router z-loss weights).
        init_from: Start from these weights: a model directory, a transformers checkpoint or a
            run directory.
        max_tokens: Train for this many tokens (sets --trainer.max_steps from the global batch).
        activation_checkpointing: Recompute each block's activations in backward.
        compile: torch.compile each block.
    """
    defaults = PretrainJobConfig()
    if model is None and init_from is not None:
        from olmo_lm.model.store import load_state

        model = load_state(init_from)[0]
    job = PretrainJobConfig(
        model=model or defaults.model,
        data=data or defaults.data,
        trainer=trainer or defaults.trainer,
        optimizer=optimizer or defaults.optimizer,
        scheduler=scheduler or defaults.scheduler,
        loss=loss or defaults.loss,
        init_from=init_from,
        max_tokens=max_tokens,
        activation_checkpointing=activation_checkpointing,
        compile=compile,
    )
    return run_pretraining(job)
