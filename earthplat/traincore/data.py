"""Deterministic, resumable data order.

A resumed run must see exactly the batches an uninterrupted run would have seen. Lightning saves
the state of any train dataloader that has ``state_dict``/``load_state_dict`` into its checkpoints
and restores it just before the first iterator of the resumed epoch is created.
``ResumableDataLoader`` uses that: its state is (epoch, batches already consumed in that epoch),
and ``DataProgressCallback`` keeps the count of consumed batches exact, because Lightning
pre-fetches one batch ahead and counting yields would be off by that look-ahead.

``ResumableSampler`` shards one seeded permutation per epoch across data-parallel ranks with a
stride (rank r takes positions r, r + world, ...), so the union of the ranks' k-th batches is the
k-th batch of a single process at the same global batch size. Set ``use_distributed_sampler=False``
on the Trainer (the core's ``TrainerConfig`` does) so Lightning keeps this sampler.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

_data_parallel: tuple[int, int] | None = None
_data_parallel_group: Any = None


def set_data_parallel(rank: int, world: int, group: Any = None) -> None:
    """Declare this process's (rank, size) in the data-parallel mesh dimension, and that
    dimension's process group.

    Under tensor parallelism the ranks of one TP group must read the same batches, so samplers
    shard over the data-parallel dimension, not the global rank. ``apply_parallelism`` calls this.
    """
    global _data_parallel, _data_parallel_group
    _data_parallel = (rank, world)
    _data_parallel_group = group


def clear_data_parallel() -> None:
    """Forget what ``set_data_parallel`` declared (a run ends; a later run in this process
    must not inherit its mesh)."""
    global _data_parallel, _data_parallel_group
    _data_parallel = None
    _data_parallel_group = None


def data_parallel_group() -> tuple[Any, int]:
    """(process group, size) of the data-parallel dimension; the group is ``None`` (the default
    group) unless ``set_data_parallel`` named one, and the size is 1 outside distributed runs."""
    return _data_parallel_group, _data_parallel_rank_world()[1]


def _data_parallel_rank_world() -> tuple[int, int]:
    if _data_parallel is not None:
        return _data_parallel
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EvalShardSampler(Sampler[int]):
    """Evaluation order ``0..n-1`` split across data-parallel ranks: rank r takes r, r + world,
    ..., so each rank scores its share and metrics that sync their state across ranks see every
    sample. Shards have equal lengths (the order is wrapped to a multiple of ``world``, as
    torch's ``DistributedSampler`` does), so every rank runs the same number of batches: under
    FSDP2/TP each forward is a collective. When ``n`` is not a multiple of ``world``, up to
    ``world - 1`` samples are scored twice."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def indices(self) -> list[int]:
        rank, world = _data_parallel_rank_world()
        n = len(self.data_source)
        if world == 1 or n == 0:
            return list(range(n))
        per_rank = -(-n // world)
        order = [i % n for i in range(per_rank * world)]
        return order[rank::world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())


class ResumableSampler(Sampler[int]):
    """Seeded per-epoch permutation, strided across ranks, able to skip already-consumed samples.

    ``num_replicas``/``rank`` default to the initialised process group, read lazily at iteration
    time because samplers are usually built before the process group exists.
    """

    def __init__(
        self,
        data_source: Sized,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self.data_source = data_source
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._num_replicas = num_replicas
        self._rank = rank
        self.epoch = 0
        self._skip_samples = 0

    @property
    def rank_world(self) -> tuple[int, int]:
        rank, world = _data_parallel_rank_world()
        world = self._num_replicas if self._num_replicas is not None else world
        rank = self._rank if self._rank is not None else rank
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside [0, {world})")
        return rank, world

    def __len__(self) -> int:
        _, world = self.rank_world
        n = len(self.data_source)
        return n // world if self.drop_last else -(-n // world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip(self, num_samples: int) -> None:
        """Skip the first ``num_samples`` of this rank's order on the next iteration only."""
        self._skip_samples = num_samples

    def indices(self) -> list[int]:
        """This rank's full order for the current epoch (before any skip)."""
        rank, world = self.rank_world
        n = len(self.data_source)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        per_rank = len(self)
        total = per_rank * world
        if total > n:  # pad by wrapping so every rank gets the same count
            order += order[: total - n]
        return order[:total][rank::world]

    def __iter__(self) -> Iterator[int]:
        order = self.indices()
        skip, self._skip_samples = self._skip_samples, 0
        return iter(order[skip:])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``ResumableSampler`` whose position is saved in Lightning checkpoints."""

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        **kwargs: Any,
    ) -> None:
        sampler = kwargs.pop("sampler", None)
        if sampler is None:  # not `or`: an empty sampler is falsy but still the caller's choice
            sampler = ResumableSampler(dataset, seed=seed, shuffle=shuffle, drop_last=drop_last)
        if not isinstance(sampler, ResumableSampler):
            raise TypeError("ResumableDataLoader needs a ResumableSampler")
        super().__init__(
            dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **kwargs
        )
        self.consumed_batches = 0

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.sampler.epoch,
            "consumed_batches": self.consumed_batches,
            "batch_size": self.batch_size,
            "seed": self.sampler.seed,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("batch_size", self.batch_size) != self.batch_size:
            raise ValueError(
                f"cannot resume: the checkpoint's batch size is {state['batch_size']} but the "
                f"dataloader's is {self.batch_size}; resume with the original batch size"
            )
        epoch, consumed = state["epoch"], state["consumed_batches"]
        if consumed >= len(self):  # the checkpoint was taken at the very end of an epoch
            epoch, consumed = epoch + 1, 0
        self.sampler.set_epoch(epoch)
        self.sampler.skip(consumed * self.batch_size)
        self.consumed_batches = consumed


def iter_resumable_loaders(loaders: Any) -> Iterator[ResumableDataLoader]:
    """Yield every ``ResumableDataLoader`` inside a loader or a nested list/dict of loaders."""
    if isinstance(loaders, ResumableDataLoader):
        yield loaders
    elif isinstance(loaders, dict):
        for value in loaders.values():
            yield from iter_resumable_loaders(value)
    elif isinstance(loaders, list | tuple):
        for value in loaders:
            yield from iter_resumable_loaders(value)
