"""Plain-text corpora as fixed-length token chunks, with a held-out tail for validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from earthplat.traincore.data import ResumableDataLoader
from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.tokenizer import load_tokenizer


class TokenChunkDataset(Dataset):
    """Non-overlapping chunks of ``seq_len + 1`` tokens (inputs and shifted targets)."""

    def __init__(self, tokens: np.ndarray, seq_len: int) -> None:
        self.tokens = tokens
        self.seq_len = seq_len

    def __len__(self) -> int:
        return max(0, (len(self.tokens) - 1) // self.seq_len)

    def __getitem__(self, i: int) -> torch.Tensor:
        start = i * self.seq_len
        chunk = self.tokens[start : start + self.seq_len + 1]
        return torch.from_numpy(chunk.astype(np.int64))  # [T + 1]


@dataclass
class TextDataConfig:
    """A UTF-8 text file, tokenised by bytes or by a ``tokenizer.json``."""

    path: str = "../shared/data/text/tinyshakespeare.txt"
    """Text file (relative paths are resolved from the working directory)."""
    tokenizer: str | None = None
    """A ``tokenizer.json`` (or a checkpoint folder with one); ``None``: byte-level tokens."""
    mixture: str | None = None
    """A mixture YAML of token shards (``olmo_lm.data.mixture``); replaces ``path`` when set."""
    seq_len: int = 128
    """Tokens per training sequence."""
    batch_size: int = 16
    """Sequences per micro-batch and device."""
    val_fraction: float = 0.05
    """Fraction of the corpus, taken from its end, held out for validation."""
    num_workers: int = 0
    """DataLoader worker processes."""
    seed: int = 0
    """Seed of the data order."""
    document_masking: bool = False
    """Mask attention across documents of a packed sequence and restart positions per
    document (needs --data.mixture; not for Olmo Hybrid's Gated DeltaNet layers)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise TrainCoreConfigError("data.val_fraction must lie in [0, 1)")
        if self.seq_len < 1 or self.batch_size < 1:
            raise TrainCoreConfigError("data.seq_len and data.batch_size must be >= 1")


class TextDataModule(L.LightningDataModule):
    def __init__(self, config: TextDataConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = load_tokenizer(config.tokenizer)
        self.train_set: TokenChunkDataset | None = None
        self.val_set: TokenChunkDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        path = Path(self.config.path)
        if not path.is_file():
            raise TrainCoreConfigError(
                f"text corpus {path} not found; pass --data.path pointing at a UTF-8 text file"
            )
        tokens = self.tokenizer.encode_array(path.read_text(encoding="utf-8"))
        split = int(len(tokens) * (1.0 - self.config.val_fraction))
        self.train_set = TokenChunkDataset(tokens[:split], self.config.seq_len)
        self.val_set = TokenChunkDataset(tokens[split:], self.config.seq_len)
        if len(self.train_set) < self.config.batch_size:
            raise TrainCoreConfigError(
                f"{path} yields {len(self.train_set)} training sequences of {self.config.seq_len} "
                f"tokens, fewer than one batch of {self.config.batch_size}; use a longer text or "
                "a smaller seq_len/batch_size"
            )

    def train_dataloader(self) -> ResumableDataLoader:
        return ResumableDataLoader(
            self.train_set,
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.config.batch_size, shuffle=False)
