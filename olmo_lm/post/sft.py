"""Supervised fine-tuning on chat conversations (Tulu 3 SFT), as a ``TrainCoreModule``.

- **Template and mask**: conversations are rendered with the tokenizer's chat template
  (``olmo_lm.post.chat``); only assistant tokens (and the EOS ending each turn) are learned.
- **Packing**: conversations are laid end to end, in file order, into rows of ``seq_len + 1``
  tokens; a conversation that does not fit in what is left of a row starts the next one (one
  longer than a row is cut at ``seq_len + 1``), and the row's tail is padding, never learned.
  With ``document_masking`` each conversation of a row is its own document: it attends to
  nothing of the others and its positions start at 0, so it is learned exactly as if alone.
  Without it, packed conversations attend to the earlier ones in their row.
- **Normalisation over the global batch**: the loss is the *sum* of the assistant-token
  cross-entropies of the whole global batch divided by the *global* count of assistant
  tokens. Each rank computes ``local_sum * world / global_count`` with the count all-reduced
  over the data-parallel group; data-parallel gradient averaging (divide by ``world``) then
  yields exactly ``d(global_sum) / global_count``. A per-rank mean would instead weight each
  rank's tokens by how few assistant tokens that rank happened to hold (Tulu 3 found
  sum-normalisation matters with packing, whose rows hold very different counts).
  With gradient accumulation the count is that of the whole optimizer step: the loader
  (``SFTLoader``) reads each accumulation group's micro-batches ahead and gives every one the
  group's count (``group_tokens``); the loss is multiplied by the accumulation factor, which
  Lightning's division undoes, so the step's gradient is ``d(step sum) / step count``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from earthplat.traincore.data import ResumableDataLoader, data_parallel_group
from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.model.transformer import IGNORE_INDEX
from olmo_lm.post.chat import EncodedChat, encode_chat, read_conversations
from olmo_lm.post.common import pad_id_of
from olmo_lm.train.pretrain import CausalLMModule, LMLossConfig, check_document_masking


@dataclass
class SFTDataConfig:
    """A messages JSONL file (one ``{"messages": [...]}`` per line) and how it is batched."""

    path: str = "sft.jsonl"
    """The messages JSONL file."""
    tokenizer: str | None = None
    """A ``tokenizer.json`` or its folder; ``None``: the starting model's own."""
    seq_len: int = 256
    """Tokens per (packed) training row."""
    batch_size: int = 8
    """Rows per micro-batch and device."""
    pack: bool = True
    """Pack several conversations per row (off: one conversation per row, padded)."""
    seed: int = 0
    """Seed of the row order."""
    document_masking: bool = False
    """Packed conversations cannot attend to each other (each is its own document; not for
    Olmo Hybrid's Gated DeltaNet layers)."""

    def __post_init__(self) -> None:
        if self.seq_len < 2 or self.batch_size < 1:
            raise TrainCoreConfigError("data.seq_len must be >= 2 and data.batch_size >= 1")


def pack_conversations(
    chats: list[EncodedChat], seq_len: int, pad_id: int, *, pack: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``ids [R, seq_len + 1]`` and ``mask [R, seq_len + 1]`` (True: learned token)."""
    ids, mask, _ = pack_conversations_with_documents(chats, seq_len, pad_id, pack=pack)
    return ids, mask


def pack_conversations_with_documents(
    chats: list[EncodedChat], seq_len: int, pad_id: int, *, pack: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pack_conversations``' rows plus ``doc_ids [R, seq_len + 1]``: the index of each
    token's conversation within its row (the padding tail is one more document)."""
    width = seq_len + 1
    rows: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    used = width  # forces a first row
    for chat in chats:
        ids, mask = chat.ids[:width], chat.mask[:width]
        if not pack or used + len(ids) > width:
            rows.append(([], []))
            used = 0
        rows[-1][0].append(ids)
        rows[-1][1].append(mask)
        used += len(ids)
    out_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    out_mask = np.zeros((len(rows), width), dtype=bool)
    out_docs = np.empty((len(rows), width), dtype=np.int64)
    for r, (ids, masks) in enumerate(rows):
        flat = np.concatenate(ids)
        out_ids[r, : len(flat)] = flat
        out_mask[r, : len(flat)] = np.concatenate(masks)
        out_docs[r, : len(flat)] = np.repeat(np.arange(len(ids)), [len(i) for i in ids])
        out_docs[r, len(flat) :] = len(ids)
    return out_ids, out_mask, out_docs


def labels_of(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs ``[B, T]``, labels ``[B, T]``) of rows ``[B, T + 1]``: each position's next
    token where that token is learned, else ``IGNORE_INDEX``."""
    labels = ids[:, 1:].masked_fill(~mask[:, 1:], IGNORE_INDEX)
    return ids[:, :-1], labels


class SFTDataset(Dataset):
    """Packed rows of a messages file: each item ``{"ids": [T + 1], "mask": [T + 1]}``."""

    def __init__(self, conversations: list[list[dict]], tokenizer, config: SFTDataConfig):
        chats = [encode_chat(tokenizer, m) for m in conversations]
        if not any(c.mask.any() for c in chats):
            raise TrainCoreConfigError(
                f"{config.path} has no assistant turn to learn; SFT needs assistant messages"
            )
        self.ids, self.mask, self.doc_ids = pack_conversations_with_documents(
            chats, config.seq_len, pad_id_of(tokenizer), pack=config.pack
        )
        self.document_masking = config.document_masking
        self.conversations = len(chats)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"ids": torch.from_numpy(self.ids[i]), "mask": torch.from_numpy(self.mask[i])}
        if self.document_masking:
            item["doc_ids"] = torch.from_numpy(self.doc_ids[i])
        return item


class SFTDataModule(L.LightningDataModule):
    def __init__(self, config: SFTDataConfig, tokenizer) -> None:
        super().__init__()
        self.config, self.tokenizer = config, tokenizer
        self.train_set: SFTDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            conversations = read_conversations(self.config.path)
            self.train_set = SFTDataset(conversations, self.tokenizer, self.config)

    def train_dataloader(self) -> SFTLoader:
        trainer = self.trainer
        return SFTLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            accumulate=1 if trainer is None else trainer.accumulate_grad_batches,
        )


def learned_tokens(batch: dict) -> int:
    """Assistant tokens a micro-batch learns (each row's first token is never a target)."""
    return int(batch["mask"][:, 1:].sum())


class SFTLoader(ResumableDataLoader):
    """Micro-batches carrying ``group_tokens``: the learned tokens of their whole accumulation
    group (the ``accumulate`` micro-batches of one optimizer step), read ahead.

    Groups follow Lightning's boundaries: they restart with each epoch, and a loader resumed
    part-way through a group (``consumed_batches`` not a multiple of ``accumulate``) first
    finishes that group; the last group of an epoch may be shorter, as Lightning's is."""

    def __init__(self, dataset, *, accumulate: int = 1, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.accumulate = accumulate

    def __iter__(self) -> Iterator[dict]:
        batches = super().__iter__()
        size = self.accumulate - self.consumed_batches % self.accumulate
        while group := list(itertools.islice(batches, size)):
            count = torch.tensor(sum(learned_tokens(b) for b in group))
            for batch in group:
                yield {**batch, "group_tokens": count}
            size = self.accumulate


def global_count(local: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(learned tokens summed over the data-parallel ranks, number of those ranks)."""
    group, world = data_parallel_group()
    total = local.detach().float()
    if world > 1 and dist.is_available() and dist.is_initialized():
        total = total.clone()
        dist.all_reduce(total, group=group)
    return total, world


class SFTModule(CausalLMModule):
    """Next-token cross-entropy on assistant tokens, summed and divided by the global count."""

    def tokens_in_batch(self, batch: dict) -> int:
        return batch["ids"].shape[0] * (batch["ids"].shape[1] - 1)

    def samples_in_batch(self, batch: dict) -> int:
        return batch["ids"].shape[0]

    def loss_terms(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, labels = labels_of(batch["ids"], batch["mask"].bool())
        local = (labels != IGNORE_INDEX).sum()
        group = batch.get("group_tokens")
        total, world = global_count(local if group is None else group)
        accumulate = 1 if group is None else self.accumulation()
        scale = local.float() * world * accumulate / total.clamp_min(1.0)
        loss, logs = self.lm_loss_terms(inputs, labels, scale, doc_ids=_input_docs(batch))
        logs["train/assistant_tokens"] = local.float()
        return loss, logs

    def accumulation(self) -> int:
        """Micro-batches per optimizer step (Lightning divides each one's loss by it)."""
        trainer = self._trainer
        return 1 if trainer is None else trainer.accumulate_grad_batches

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        inputs, labels = labels_of(batch["ids"], batch["mask"].bool())
        out = self.model(inputs, labels=labels, doc_ids=_input_docs(batch))
        self.log("val/loss", out.ce_loss, sync_dist=True)


def _input_docs(batch: dict) -> torch.Tensor | None:
    """The inputs' document ids of a document-masked batch, else ``None``."""
    docs = batch.get("doc_ids")
    return None if docs is None else docs[:, :-1]


@dataclass
class SFTJobConfig:
    """One SFT run (what the run's ``config.yaml`` records)."""

    model: str = "runs/pretrain"
    """The starting model: a run directory, a model directory or a transformers checkpoint."""
    data: SFTDataConfig = field(default_factory=SFTDataConfig)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(run_dir="runs/sft", max_steps=100)
    )
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=1e-3))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(warmup_steps=10))
    loss: LMLossConfig = field(default_factory=lambda: LMLossConfig(z_loss_weight=0.0))


def run_sft(job: SFTJobConfig) -> dict[str, float]:
    """Fine-tune ``job.model`` on ``job.data``; writes ``RUN/model`` for the next stage."""
    from earthplat.traincore.trainer import fit
    from olmo_lm.post.common import finish_stage, model_tokenizer, start_module

    tokenizer = model_tokenizer(job.model, job.data.tokenizer)
    if job.data.tokenizer is None and getattr(tokenizer, "path", None) is not None:
        job.data.tokenizer = str(tokenizer.path.parent)  # recorded for the next stage
    module = start_module(
        SFTModule, job.model, job.data.seq_len, job.optimizer, job.scheduler, job.loss
    )
    if job.data.document_masking:
        check_document_masking(module.model_config, "--data.document_masking")
    data = SFTDataModule(job.data, tokenizer)
    trainer = fit(job.trainer, module, data, config_to_save=job)
    return finish_stage(trainer, module, job.trainer.run_dir, tokenizer)
