"""Batches of a mixture for training: a sampler, a resumable loader and a Lightning DataModule.

``MixtureSampler`` is the core's ``ResumableSampler`` (ranks take strided positions, a resume
skips what was consumed) over the mixture's instance stream, but its order is a ``range``: the
mixture computes instance ``i`` itself (``olmo_lm.data.mixture``), so nothing of size
O(instances) is ever built. Epoch ``e`` continues the stream at ``e * len(dataset)``.

``MixtureDataLoader`` is a ``ResumableDataLoader`` (Lightning saves its state in checkpoints and
``DataProgressCallback`` keeps the consumed count exact); its state adds the mixture's
fingerprint, so a run never resumes onto a different mixture, and the per-source positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from earthplat.traincore.data import ResumableDataLoader, ResumableSampler
from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.mixture import MixtureConfig, MixtureDataset, SequentialSequences


class MixtureSampler(ResumableSampler):
    """Instance ids ``e * n + rank, e * n + rank + world, ...`` for epoch ``e`` (never shuffled
    here: the mixture's own order is the shuffle)."""

    def __init__(self, data_source: MixtureDataset, **kwargs: Any) -> None:
        super().__init__(data_source, shuffle=False, drop_last=True, **kwargs)

    def indices(self) -> range:
        rank, world = self.rank_world
        base = self.epoch * len(self.data_source)
        return range(base + rank, base + len(self) * world, world)


class MixtureDataLoader(ResumableDataLoader):
    """A resumable loader of ``[B, T + 1]`` batches of a ``MixtureDataset``."""

    def __init__(self, dataset: MixtureDataset, *, batch_size: int, **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, sampler=MixtureSampler(dataset), **kwargs)

    def instances_consumed(self) -> int:
        """Instances of the stream consumed by all data-parallel ranks together."""
        _, world = self.sampler.rank_world
        epoch_start = self.sampler.epoch * len(self.dataset)
        return epoch_start + self.consumed_batches * self.batch_size * world

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["mixture"] = self.dataset.fingerprint
        state["source_positions"] = self.dataset.source_positions(self.instances_consumed())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("mixture")
        if saved is not None and saved != self.dataset.fingerprint:
            raise TrainCoreConfigError(
                "cannot resume: the checkpoint was trained on a different mixture (sources, "
                "shards, weights, seq_len or seed changed); resume with the original "
                "--data.mixture or start a new --trainer.run_dir"
            )
        super().load_state_dict(state)


class MixtureDataModule(L.LightningDataModule):
    """``--data.mixture``: training batches from a mixture YAML, validation from its held-out
    shards (none: no validation). ``seq_len``, ``batch_size``, ``seed`` and ``num_workers`` come
    from the data config as for a text file."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.mixture = MixtureConfig.from_yaml(Path(config.mixture))
        self.train_set: MixtureDataset | None = None
        self.val_set: SequentialSequences | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        c = self.config
        docs = c.document_masking
        self.train_set = MixtureDataset(self.mixture, c.seq_len, c.seed, documents=docs)
        if c.tokenizer is not None:
            from olmo_lm.data.tokenizer import load_tokenizer

            if load_tokenizer(c.tokenizer).fingerprint != self.train_set.tokenizer_sha256:
                raise TrainCoreConfigError(
                    f"--data.tokenizer {c.tokenizer} is not the tokenizer the mixture's shards "
                    "were tokenized with; pass that one (or re-tokenize the sources)"
                )
        if self.mixture.validation:
            self.val_set = SequentialSequences(self.mixture.validation, c.seq_len, documents=docs)

    def train_dataloader(self) -> MixtureDataLoader:
        return MixtureDataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=self.config.batch_size, shuffle=False)
