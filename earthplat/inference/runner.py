"""Running chunks: in this process, or sharded over ranks with Lightning DDP.

Each rank predicts the chunks with ``index % world_size == rank`` that are not already on disk
(sharding by index, not by a list of what is left, so ranks that look at the disk at different
moments still agree), writes each as a part, and waits for the others; rank 0 then assembles.
Lightning is imported only for ``devices > 1``: single-process inference needs no training
stack.
"""

from __future__ import annotations

from collections.abc import Callable

from earthplat.inference.engine import ChunkEngine
from earthplat.inference.parts import PartStore
from earthplat.inference.tiling import Chunk

Progress = Callable[[int, int], None]


def run_chunks(
    engine: ChunkEngine,
    chunks: list[Chunk],
    store: PartStore,
    progress: Progress | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> int:
    """Predict this rank's unfinished chunks; returns how many were predicted."""
    done = store.done()
    mine = [c for c in chunks if c.index % world_size == rank and c.index not in done]
    finished = len([c for c in chunks if c.index % world_size == rank]) - len(mine)
    try:
        for k, chunk in enumerate(mine):
            store.save(engine.process(chunk))
            if progress is not None:
                progress(finished + k + 1, finished + len(mine))
    finally:
        engine.close()
    return len(mine)


def run_chunks_ddp(
    engine: ChunkEngine,
    chunks: list[Chunk],
    store: PartStore,
    devices: int,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Shard the chunks over ``devices`` CPU ranks (DDP, gloo) through ``Trainer.predict``;
    returns (rank, world size). All ranks have finished when it returns."""
    import lightning as L
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    from earthplat.traincore.parallel import build_strategy

    class ChunkPredictModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = engine.model

        def predict_dataloader(self) -> DataLoader:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            done = store.done()
            self.mine = [c.index for c in chunks if c.index % world == rank and c.index not in done]
            return DataLoader(self.mine, batch_size=1, collate_fn=list)

        def predict_step(self, batch: list[int], batch_idx: int) -> None:
            for index in batch:
                store.save(engine.process(chunks[index]))
                if progress is not None:
                    progress(batch_idx + 1, len(self.mine))

    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=build_strategy("ddp", process_group_backend="gloo"),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    try:
        trainer.predict(ChunkPredictModule(), return_predictions=False)
    finally:
        engine.close()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    return trainer.global_rank, trainer.world_size


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    import sys

    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
