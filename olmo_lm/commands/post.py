"""The post-training commands (Tulu 3): ``sft``, ``dpo``, ``rlvr`` and ``reward train``."""

from __future__ import annotations

from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig


def sft(
    model: str,
    data: str,
    tokenizer: str | None = None,
    seq_len: int = 256,
    batch_size: int = 8,
    pack: bool = True,
    document_masking: bool = False,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
) -> dict[str, float]:
    """Supervised fine-tuning on chat conversations (loss on assistant tokens only).

    Writes RUN/model (the next stage's --model). Re-running resumes an interrupted run.

    Args:
        model: The starting model: a run directory, a model directory or a transformers
            checkpoint.
        data: Messages JSONL: one {"messages": [{"role", "content"}, ...]} per line.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per packed row.
        batch_size: Rows per micro-batch and device.
        pack: Pack several conversations per row.
        document_masking: Packed conversations cannot attend to each other.
        trainer: How the run is trained (run dir, devices, steps...).
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule.
    """
    from olmo_lm.post.sft import SFTDataConfig, SFTJobConfig, run_sft

    job = SFTJobConfig(
        model=model,
        data=SFTDataConfig(
            path=data,
            tokenizer=tokenizer,
            seq_len=seq_len,
            batch_size=batch_size,
            pack=pack,
            document_masking=document_masking,
        ),
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    job.scheduler = scheduler or job.scheduler
    return run_sft(job)


def dpo(
    model: str,
    pairs: str,
    beta: float = 5.0,
    loss_type: str = "dpo_norm",
    reference: str = "precompute",
    tokenizer: str | None = None,
    seq_len: int = 256,
    batch_size: int = 8,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
) -> dict[str, float]:
    """Direct preference optimisation from preference pairs; writes RUN/model.

    Tulu 3's length-normalised DPO (dpo_norm) by default.

    Args:
        model: The starting and reference model (a run or model directory).
        pairs: Pairs JSONL: {"prompt", "chosen", "rejected"} per line.
        beta: DPO's beta (Tulu 3: 5 with dpo_norm, 0.1 with dpo).
        loss_type: dpo (summed log-probabilities) or dpo_norm (length-normalised).
        reference: precompute (score all pairs first) or live (a frozen copy).
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per prompt + response.
        batch_size: Pairs per micro-batch and device.
        trainer: How the run is trained.
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule.
    """
    from olmo_lm.post.dpo import DPOConfig, DPODataConfig, DPOJobConfig, run_dpo

    job = DPOJobConfig(
        model=model,
        data=DPODataConfig(path=pairs, tokenizer=tokenizer, seq_len=seq_len, batch_size=batch_size),
        dpo=DPOConfig(beta=beta, loss_type=loss_type, reference=reference),
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    job.scheduler = scheduler or job.scheduler
    return run_dpo(job)


def rlvr(
    model: str,
    problems: str = "corpus",
    n: int = 512,
    max_operand: int = 9,
    group_size: int = 8,
    max_new_tokens: int = 8,
    kl_coef: float = 0.0,
    prompt: str = "corpus",
    batch_size: int = 8,
    tokenizer: str | None = None,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
) -> dict[str, float]:
    """RL with verifiable rewards on checked arithmetic problems; writes RUN/model.

    The advantage is GRPO's group baseline over the completions of each problem.

    Args:
        model: The starting model (a run or model directory).
        problems: corpus (the math corpus's problems) or simple (a op b).
        n: Problems to draw.
        max_operand: Largest operand of simple problems.
        group_size: Completions sampled per problem.
        max_new_tokens: Tokens sampled per completion.
        kl_coef: Weight of KL(policy || starting model).
        prompt: corpus (Problem 1: What is E? / Answer:) or chat (a user turn of the chat
            template, the answer ending at EOS; for a model after SFT).
        batch_size: Problems per step.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        trainer: How the run is trained.
        optimizer: AdamW settings.
    """
    from olmo_lm.post.rlvr import GRPOConfig, ProblemConfig, RLVRJobConfig, run_rlvr

    job = RLVRJobConfig(
        model=model,
        tokenizer=tokenizer,
        problems=ProblemConfig(source=problems, n=n, max_operand=max_operand),
        grpo=GRPOConfig(
            group_size=group_size, max_new_tokens=max_new_tokens, kl_coef=kl_coef, prompt=prompt
        ),
        batch_size=batch_size,
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    return run_rlvr(job)


def reward_train(
    model: str,
    pairs: str,
    tokenizer: str | None = None,
    seq_len: int = 256,
    batch_size: int = 8,
    trainer: TrainerConfig | None = None,
    optimizer: OptimizerConfig | None = None,
    scheduler: SchedulerConfig | None = None,
) -> dict[str, float]:
    """Train a Bradley-Terry reward model on preference pairs; writes RUN/model with its head.

    Args:
        model: The backbone to start from (a run or model directory).
        pairs: Pairs JSONL: {"prompt", "chosen", "rejected"} per line.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per prompt + response.
        batch_size: Pairs per micro-batch and device.
        trainer: How the run is trained.
        optimizer: AdamW settings.
        scheduler: Learning-rate schedule.
    """
    from olmo_lm.post.dpo import DPODataConfig
    from olmo_lm.post.reward import RewardJobConfig, run_reward_training

    job = RewardJobConfig(
        model=model,
        data=DPODataConfig(path=pairs, tokenizer=tokenizer, seq_len=seq_len, batch_size=batch_size),
    )
    job.trainer = trainer or job.trainer
    job.optimizer = optimizer or job.optimizer
    job.scheduler = scheduler or job.scheduler
    return run_reward_training(job)
