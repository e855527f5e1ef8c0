"""Reinforcement learning with verifiable rewards (Tulu 3 RLVR), GRPO-style, on arithmetic.

Each step takes a batch of problems in the math corpus's format (``olmo_lm.data.corpora``:
``Problem 1: What is EXPR?`` then ``Answer: N``), or as a chat turn for a model after SFT
(``GRPOConfig.prompt``), samples ``group_size`` completions of each prompt from the current
policy, and rewards a completion 1 when its answer (its first line, or its turn up to EOS) is
the right one, which ``check_math_document`` verifies by evaluating the problem's
expression (no learned reward model: the reward cannot be gamed by style). The group is its
own baseline (GRPO, Shao et al. 2024): a completion's advantage is its reward minus its
group's mean, over the group's standard deviation, so no value network is trained, and a
group whose completions all score the same teaches nothing.

The update is on-policy (one gradient step per sampled batch), so PPO's probability ratio is 1
and its clipping never binds; the loss is ``-sum(A * log pi(token)) / response tokens`` over
the completion's tokens up to and including its first newline or EOS (it learns to stop),
plus optionally ``kl_coef`` times the k3 estimate of KL(pi || reference) per token.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import lightning as L
import torch
from torch.utils.data import Dataset

from earthplat.traincore.data import ResumableDataLoader
from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.data.corpora import check_math_document, evaluate, math_documents
from olmo_lm.generate import SamplingConfig, generate, pad_left
from olmo_lm.post.logprobs import token_logprobs
from olmo_lm.train.pretrain import CausalLMModule


@dataclass
class ProblemConfig:
    """Which arithmetic problems the policy is trained on."""

    source: str = "corpus"
    """``corpus``: the math corpus's own problems (``math_documents``, operands to 99,
    nested); ``simple``: ``a op b`` with operands up to ``max_operand`` (small models)."""
    n: int = 512
    """Problems to draw."""
    seed: int = 0
    """Seed of the problems."""
    max_operand: int = 9
    """Largest operand of ``simple`` problems."""
    ops: str = "+-"
    """Operators of ``simple`` problems (some of ``+-*``)."""

    def __post_init__(self) -> None:
        if self.source not in ("corpus", "simple"):
            raise TrainCoreConfigError("problems.source must be 'corpus' or 'simple'")
        if not self.ops or set(self.ops) - set("+-*"):
            raise TrainCoreConfigError("problems.ops takes some of '+-*'")


def problem_text(expression: str, answer: int | None = None) -> str:
    """A problem as the math corpus writes it; without ``answer``, the prompt to complete."""
    head = f"Problem 1: What is {expression}?\nAnswer:"
    return head if answer is None else f"{head} {answer}\n"


def draw_problems(config: ProblemConfig) -> list[str]:
    """Expressions of ``config.n`` problems."""
    if config.source == "corpus":
        docs = math_documents(n=max(1, -(-config.n // 8)), seed=config.seed)
        lines = (line for doc in docs for line in doc.text.splitlines())
        exprs = [ln.split("What is ", 1)[1][:-1] for ln in lines if ln.startswith("Problem ")]
        return exprs[: config.n]
    rng = random.Random(config.seed)
    return [
        f"{rng.randint(0, config.max_operand)} {rng.choice(config.ops)} "
        f"{rng.randint(0, config.max_operand)}"
        for _ in range(config.n)
    ]


def reward(expression: str, completion: str) -> float:
    """1.0 when the completion's first line is the expression's value (checked by the math
    corpus's checker), else 0.0."""
    first = completion.split("\n", 1)[0].strip()
    right, total = check_math_document(f"Problem 1: What is {expression}?\nAnswer: {first}\n")
    assert total == 1
    return float(right)


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """GRPO advantages of rewards ``[P, G]`` (G completions per prompt): each minus its
    group's mean, over the group's standard deviation (0 where the group agrees)."""
    mean = rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, keepdim=True, unbiased=False)
    return (rewards - mean) / (std + eps)


@dataclass
class GRPOConfig:
    """Sampling and the objective of RLVR."""

    group_size: int = 8
    """Completions sampled per prompt (the group its baseline is taken over)."""
    max_new_tokens: int = 8
    """Tokens sampled per completion (the answer and its newline fit in few)."""
    temperature: float = 1.0
    """Sampling temperature of the completions."""
    kl_coef: float = 0.0
    """Weight of KL(pi || starting model) per token (k3 estimator); 0 keeps no reference."""
    prompt: str = "corpus"
    """``corpus``: the math corpus's ``Problem 1: What is E?\nAnswer:``, the completion ending
    at its first newline; ``chat``: ``What is E?`` as a user turn of the chat template with the
    assistant's turn opened, the completion ending at EOS (a model after SFT)."""

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise TrainCoreConfigError("grpo.group_size must be >= 2 (the group is the baseline)")
        if self.prompt not in ("corpus", "chat"):
            raise TrainCoreConfigError("grpo.prompt must be 'corpus' or 'chat'")


def cut_at_stop(tokens: list[int], stop: list[int]) -> tuple[int, int]:
    """(tokens of the answer, tokens learned: the answer and its stop) of a completion; the
    whole completion for both when it never stops."""
    for j in range(len(tokens) - len(stop) + 1):
        if tokens[j : j + len(stop)] == stop:
            return j, j + len(stop)
    return len(tokens), len(tokens)


def prompt_ids(tokenizer, expression: str, prompt: str = "corpus") -> list[int]:
    """The tokens of a problem's prompt in ``prompt`` format (see ``GRPOConfig.prompt``)."""
    if prompt == "chat":
        from olmo_lm.post.chat import encode_chat

        turn = [{"role": "user", "content": f"What is {expression}?"}]
        return encode_chat(tokenizer, turn, add_generation_prompt=True).ids.tolist()
    return tokenizer.encode(problem_text(expression))


def stop_ids(tokenizer, prompt: str = "corpus") -> list[int]:
    """The tokens that end a completion in ``prompt`` format: a newline, or EOS in chat."""
    return [tokenizer.eos_id] if prompt == "chat" else tokenizer.encode("\n")


class ProblemDataset(Dataset):
    """Problem expressions; a batch is a list of them."""

    def __init__(self, expressions: list[str]) -> None:
        for e in expressions:
            evaluate(e)  # every problem must be checkable
        self.expressions = expressions

    def __len__(self) -> int:
        return len(self.expressions)

    def __getitem__(self, i: int) -> str:
        return self.expressions[i]


class RLVRModule(CausalLMModule):
    """GRPO on batches of problem expressions; the tokenizer encodes prompts and decodes
    completions."""

    def __init__(self, *args, grpo: GRPOConfig | dict | None = None, tokenizer=None, **kw):
        super().__init__(*args, **kw)
        self.grpo = GRPOConfig(**grpo) if isinstance(grpo, dict) else grpo or GRPOConfig()
        self.tokenizer = tokenizer
        self._reference: tuple = ()
        self.generator = torch.Generator().manual_seed(0)

    def on_fit_start(self) -> None:
        if self.grpo.kl_coef > 0 and not self._reference:
            ref = copy.deepcopy(self.model).eval().requires_grad_(False)
            self._reference = (ref,)
        self.generator.manual_seed(int(torch.initial_seed()) % 2**63)

    def tokens_in_batch(self, batch) -> int:
        return len(batch) * self.grpo.group_size * self.grpo.max_new_tokens

    def samples_in_batch(self, batch) -> int:
        return len(batch) * self.grpo.group_size

    @torch.no_grad()
    def sample(self, expressions: list[str]) -> tuple[torch.Tensor, ...]:
        """(sequences ``[P G, T]`` left-padded, their attention mask, response mask
        ``[P G, T]``, rewards ``[P, G]``)."""
        g = self.grpo.group_size
        fmt = self.grpo.prompt
        prompts = [prompt_ids(self.tokenizer, e, fmt) for e in expressions for _ in range(g)]
        ids, mask = pad_left(prompts, pad_id=0)
        device = next(self.model.parameters()).device
        sampling = SamplingConfig(temperature=self.grpo.temperature)
        generator = self.generator if device.type == "cpu" else None
        out = generate(
            self.model,
            ids.to(device),
            self.grpo.max_new_tokens,
            sampling,
            attention_mask=mask.to(device),
            generator=generator,
        )
        width = ids.shape[1]
        seqs = out.tokens
        response = torch.zeros_like(seqs, dtype=torch.bool)
        rewards = torch.zeros(len(prompts))
        stop = stop_ids(self.tokenizer, fmt)
        for i, new in enumerate(out.new_tokens):
            answer, keep = cut_at_stop(list(new), stop)
            rewards[i] = reward(expressions[i // g], self.tokenizer.decode(new[:answer]))
            response[i, width : width + keep] = True
        attention = torch.cat([mask.to(device), torch.ones_like(seqs[:, width:])], dim=1)
        return seqs, attention, response, rewards.view(len(expressions), g).to(device)

    def loss_terms(self, batch: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        seqs, attention, response, rewards = self.sample(list(batch))
        advantages = group_advantages(rewards).flatten()  # [P G]
        # scored under the same left padding the completions were sampled with
        lp = token_logprobs(self.model, seqs, attention)  # [P G, T-1]
        m = response[:, 1:].to(lp.dtype)
        loss = -(advantages[:, None] * lp * m).sum() / m.sum().clamp_min(1.0)
        logs = {"train/reward": rewards.mean(), "train/response_tokens": m.sum(-1).mean()}
        if self._reference and self.grpo.kl_coef > 0:
            with torch.no_grad():
                ref = token_logprobs(self._reference[0], seqs, attention)
            log_ratio = ref - lp
            kl = ((log_ratio.exp() - 1 - log_ratio) * m).sum() / m.sum().clamp_min(1.0)
            loss = loss + self.grpo.kl_coef * kl
            logs["train/kl"] = kl.detach()
        return loss, logs

    def validation_step(self, batch, batch_idx: int) -> None:
        self.log("val/reward", self.sample(list(batch))[3].mean(), sync_dist=True)


def mean_reward(
    model,
    tokenizer,
    expressions: list[str],
    samples: int = 4,
    seed: int = 0,
    max_new_tokens: int = 8,
    temperature: float = 1.0,
    prompt: str = "corpus",
) -> float:
    """Mean reward of ``samples`` completions per problem in ``prompt`` format (an
    evaluation, no update)."""
    module = RLVRModule.__new__(RLVRModule)  # sampling only: no optimiser, no trainer
    L.LightningModule.__init__(module)
    module.model, module.tokenizer = model, tokenizer
    module.grpo = GRPOConfig(
        group_size=max(2, samples),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        prompt=prompt,
    )
    module.generator = torch.Generator().manual_seed(seed)
    return float(module.sample(expressions)[3].mean())


class ProblemDataModule(L.LightningDataModule):
    def __init__(self, dataset: ProblemDataset, batch_size: int, seed: int) -> None:
        super().__init__()
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed

    def train_dataloader(self) -> ResumableDataLoader:
        return ResumableDataLoader(
            self.dataset, batch_size=self.batch_size, seed=self.seed, collate_fn=list
        )


@dataclass
class RLVRJobConfig:
    """One RLVR run (what the run's ``config.yaml`` records)."""

    model: str = "runs/dpo"
    """The starting model: a run directory or a model directory."""
    tokenizer: str | None = None
    """A ``tokenizer.json`` or its folder; ``None``: the starting model's own."""
    problems: ProblemConfig = field(default_factory=ProblemConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    batch_size: int = 8
    """Prompts per step (each sampled ``grpo.group_size`` times)."""
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(run_dir="runs/rlvr", max_steps=50)
    )
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=3e-5))
    """Small: at 1e-4 the sampled reward fell within 40 steps in bench.lm_report."""
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(name="constant"))


def run_rlvr(job: RLVRJobConfig) -> dict[str, float]:
    """GRPO from ``job.model`` on arithmetic; writes ``RUN/model``."""
    from earthplat.traincore.trainer import fit
    from olmo_lm.post.common import finish_stage, model_tokenizer, start_module

    tokenizer = model_tokenizer(job.model, job.tokenizer)
    dataset = ProblemDataset(draw_problems(job.problems))
    seq = max(len(prompt_ids(tokenizer, e, job.grpo.prompt)) for e in dataset.expressions)
    module = start_module(
        RLVRModule,
        job.model,
        seq + job.grpo.max_new_tokens,
        job.optimizer,
        job.scheduler,
        grpo=job.grpo,
        tokenizer=tokenizer,
    )
    data = ProblemDataModule(dataset, job.batch_size, job.trainer.seed)
    trainer = fit(job.trainer, module, data, config_to_save=job)
    return finish_stage(trainer, module, job.trainer.run_dir, tokenizer)
