"""Direct preference optimisation (Tulu 3 DPO), as a ``TrainCoreModule``.

For a pair (chosen ``c``, rejected ``r``) with policy log-probabilities ``pi`` and reference
log-probabilities ``ref`` of the responses:

    loss = -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))

``loss_type: dpo`` uses summed log-probabilities (Rafailov et al.); ``dpo_norm`` (Tulu 3's
length-normalised DPO) divides each by its response's token count, for the policy and the
reference alike, so long answers are not favoured for being long; Tulu 3 pairs it with
``beta = 5`` (sums with ``beta = 0.1``).

The reference is the starting model. ``reference: precompute`` scores every pair with it
once, before training (one forward per pair, no second model in memory while training);
``live`` keeps a frozen copy and scores each batch (no pass over the data first). Both give
the same loss (a test checks it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from earthplat.traincore.data import ResumableDataLoader
from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.post.common import pad_id_of
from olmo_lm.post.logprobs import sequence_logprobs
from olmo_lm.post.preference import PreferencePair, encode_response, fit_width, read_pairs
from olmo_lm.train.pretrain import CausalLMModule

LOSS_TYPES = ("dpo", "dpo_norm")


@dataclass
class DPOConfig:
    """The DPO objective."""

    beta: float = 5.0
    """Strength of the implicit KL penalty (Tulu 3: 5 with ``dpo_norm``; 0.1 with ``dpo``)."""
    loss_type: str = "dpo_norm"
    """``dpo`` (summed log-probabilities) or ``dpo_norm`` (length-normalised, Tulu 3)."""
    reference: str = "precompute"
    """``precompute`` (score all pairs before training) or ``live`` (a frozen copy)."""

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise TrainCoreConfigError(f"dpo.loss_type must be one of {LOSS_TYPES}")
        if self.reference not in ("precompute", "live"):
            raise TrainCoreConfigError("dpo.reference must be 'precompute' or 'live'")
        if self.beta <= 0:
            raise TrainCoreConfigError("dpo.beta must be > 0")

    @property
    def average(self) -> bool:
        return self.loss_type == "dpo_norm"


def dpo_loss(
    pi_chosen: torch.Tensor,
    pi_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss, chosen rewards, rejected rewards) of per-pair log-probabilities ``[B]``;
    a response's implicit reward is ``beta * (pi - ref)``."""
    chosen = beta * (pi_chosen - ref_chosen)
    rejected = beta * (pi_rejected - ref_rejected)
    return -F.logsigmoid(chosen - rejected).mean(), chosen.detach(), rejected.detach()


@dataclass
class DPODataConfig:
    """A pairs JSONL file (``olmo_lm.post.preference``) and how it is batched."""

    path: str = "pairs.jsonl"
    """The pairs JSONL file."""
    tokenizer: str | None = None
    """A ``tokenizer.json`` or its folder; ``None``: the starting model's own."""
    seq_len: int = 256
    """Tokens per prompt + response (longer ones are cut at the end)."""
    batch_size: int = 8
    """Pairs per micro-batch and device."""
    seed: int = 0
    """Seed of the pair order."""


class PairDataset(Dataset):
    """Encoded pairs: ``chosen_ids/mask``, ``rejected_ids/mask`` ``[T]``, and once scored,
    ``ref_chosen``/``ref_rejected`` (the reference's log-probabilities)."""

    def __init__(self, pairs: list[PreferencePair], tokenizer, seq_len: int) -> None:
        pad = pad_id_of(tokenizer)
        arrays: dict[str, list] = {k: [] for k in ("chosen", "rejected")}
        for p in pairs:
            if len(p.rejected) != 1:
                raise TrainCoreConfigError("a DPO pair has exactly one rejected reply")
            for name, reply in (("chosen", p.chosen), ("rejected", p.rejected[0])):
                ids, mask = encode_response(tokenizer, p.prompt, reply)
                arrays[name].append(fit_width(ids, mask, seq_len, pad))
        self.tensors = {}
        for name, rows in arrays.items():
            self.tensors[f"{name}_ids"] = torch.from_numpy(np.stack([r[0] for r in rows]))
            self.tensors[f"{name}_mask"] = torch.from_numpy(np.stack([r[1] for r in rows]))
        if not bool(self.tensors["chosen_mask"].any(-1).all()):
            raise TrainCoreConfigError(
                f"some prompts fill all {seq_len} tokens, leaving no response; raise seq_len"
            )

    def __len__(self) -> int:
        return len(self.tensors["chosen_ids"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}

    @torch.no_grad()
    def score_reference(self, model, average: bool, batch_size: int = 16) -> None:
        """Store the reference's log-probabilities of every response (``precompute``)."""
        was_training = model.training
        model.eval()
        for name in ("chosen", "rejected"):
            ids, mask = self.tensors[f"{name}_ids"], self.tensors[f"{name}_mask"]
            scores = []
            for s in range(0, len(ids), batch_size):
                part = slice(s, s + batch_size)
                scores.append(sequence_logprobs(model, ids[part], mask[part], average=average))
            self.tensors[f"ref_{name}"] = torch.cat(scores)
        model.train(was_training)


class DPOModule(CausalLMModule):
    """DPO on batches of ``PairDataset`` items."""

    def __init__(self, *args, dpo: DPOConfig | dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dpo = DPOConfig(**dpo) if isinstance(dpo, dict) else dpo or DPOConfig()
        self._reference: tuple = ()  # (frozen model,) when live; a tuple keeps it unregistered

    def freeze_reference(self) -> None:
        """Keep a frozen copy of the current model as the live reference."""
        ref = copy.deepcopy(self.model).eval()
        ref.requires_grad_(False)
        self._reference = (ref,)

    def on_fit_start(self) -> None:
        if self._reference:
            self._reference[0].to(self.device)

    def tokens_in_batch(self, batch: dict) -> int:
        return int(batch["chosen_ids"].numel() + batch["rejected_ids"].numel())

    def samples_in_batch(self, batch: dict) -> int:
        return batch["chosen_ids"].shape[0]

    def policy_and_reference(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """(pi_chosen, pi_rejected, ref_chosen, ref_rejected), each ``[B]``: chosen and
        rejected go through one forward together."""
        b = batch["chosen_ids"].shape[0]
        ids = torch.cat([batch["chosen_ids"], batch["rejected_ids"]])
        mask = torch.cat([batch["chosen_mask"], batch["rejected_mask"]]).bool()
        pi = sequence_logprobs(self.model, ids, mask, average=self.dpo.average)
        if "ref_chosen" in batch:
            ref_c, ref_r = batch["ref_chosen"], batch["ref_rejected"]
        elif self._reference:
            with torch.no_grad():
                ref = sequence_logprobs(self._reference[0], ids, mask, average=self.dpo.average)
            ref_c, ref_r = ref[:b], ref[b:]
        else:
            raise TrainCoreConfigError(
                "DPO needs reference log-probabilities: precompute them "
                "(PairDataset.score_reference) or freeze a live reference (freeze_reference)"
            )
        return pi[:b], pi[b:], ref_c, ref_r

    def loss_terms(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, chosen, rejected = dpo_loss(*self.policy_and_reference(batch), self.dpo.beta)
        logs = {
            "train/rewards_chosen": chosen.mean(),
            "train/rewards_rejected": rejected.mean(),
            "train/reward_margin": (chosen - rejected).mean(),
            "train/reward_accuracy": (chosen > rejected).float().mean(),
        }
        return loss, logs

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, _ = self.loss_terms(batch)
        self.log("val/loss", loss, sync_dist=True)


class PairDataModule(L.LightningDataModule):
    def __init__(self, dataset: PairDataset, batch_size: int, seed: int) -> None:
        super().__init__()
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed

    def train_dataloader(self) -> ResumableDataLoader:
        return ResumableDataLoader(self.dataset, batch_size=self.batch_size, seed=self.seed)


@dataclass
class DPOJobConfig:
    """One DPO run (what the run's ``config.yaml`` records)."""

    model: str = "runs/sft"
    """The starting (and reference) model: a run directory or a model directory."""
    data: DPODataConfig = field(default_factory=DPODataConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(run_dir="runs/dpo", max_steps=100)
    )
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=5e-5))
    """A tenth of SFT's, as Tulu 3's DPO is (5e-4 undid most of SFT in bench.lm_report)."""
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(warmup_steps=10))


def run_dpo(job: DPOJobConfig) -> dict[str, float]:
    """DPO from ``job.model`` on ``job.data``; writes ``RUN/model`` for the next stage."""
    from earthplat.traincore.trainer import fit
    from olmo_lm.post.common import finish_stage, model_tokenizer, start_module

    tokenizer = model_tokenizer(job.model, job.data.tokenizer)
    if job.data.tokenizer is None and getattr(tokenizer, "path", None) is not None:
        job.data.tokenizer = str(tokenizer.path.parent)
    module = start_module(
        DPOModule, job.model, job.data.seq_len, job.optimizer, job.scheduler, dpo=job.dpo
    )
    dataset = PairDataset(read_pairs(job.data.path), tokenizer, job.data.seq_len)
    if job.dpo.reference == "precompute":
        dataset.score_reference(module.model, job.dpo.average)
    else:
        module.freeze_reference()
    data = PairDataModule(dataset, job.data.batch_size, job.data.seed)
    trainer = fit(job.trainer, module, data, config_to_save=job)
    return finish_stage(trainer, module, job.trainer.run_dir, tokenizer)
