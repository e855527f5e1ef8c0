"""Small models and datasets the core's tests train: a vision classifier and a causal LM.

Everything is seeded and generated per index, so every rank and every restart sees identical data.
Module-level definitions only: ``run_distributed_test`` imports them in each rank.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from earthplat.traincore.data import ResumableDataLoader
from earthplat.traincore.module import TrainCoreModule
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from olmo_lm.model.config import TransformerConfig
from olmo_lm.train.pretrain import CausalLMModule


class SyntheticImages(Dataset):
    """Images whose class is encoded as a brighter channel plus noise, generated per index."""

    def __init__(
        self, n: int = 256, channels: int = 4, size: int = 16, classes: int = 4, seed: int = 0
    ) -> None:
        self.n, self.channels, self.size, self.classes, self.seed = n, channels, size, classes, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + i)
        label = int(torch.randint(self.classes, (1,), generator=g))
        x = torch.randn(self.channels, self.size, self.size, generator=g) * 0.5
        x[label % self.channels] += 1.0
        return x, torch.tensor(label)


class RandomTokens(Dataset):
    """Sequences with a learnable rule (each token = previous + 1 mod vocab) plus noise."""

    def __init__(self, n: int = 256, seq_len: int = 32, vocab: int = 64, seed: int = 0) -> None:
        self.n, self.seq_len, self.vocab, self.seed = n, seq_len, vocab, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100_003 + i)
        start = torch.randint(self.vocab, (1,), generator=g)
        seq = (start + torch.arange(self.seq_len + 1)) % self.vocab
        noise = torch.rand(self.seq_len + 1, generator=g) < 0.1
        return torch.where(noise, torch.randint(self.vocab, (self.seq_len + 1,), generator=g), seq)


class TinyConvNet(nn.Module):
    def __init__(self, channels: int = 4, classes: int = 4, width: int = 16) -> None:
        super().__init__()
        # GroupNorm, not BatchNorm: batch statistics would differ between 1 and N ranks
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.GroupNorm(4, width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2),
            nn.GroupNorm(4, width),
            nn.GELU(),
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))  # [B, classes]


class VisionClassifier(TrainCoreModule):
    def __init__(
        self,
        optimizer: OptimizerConfig | None = None,
        scheduler: SchedulerConfig | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(optimizer or OptimizerConfig(lr=1e-2), scheduler)
        self.model = TinyConvNet()
        self.dropout = nn.Dropout(dropout)
        # 2 convs + head, x3 for forward and backward (multiply-adds counted as 2 FLOPs)
        self.flops_per_sample = 3 * 2 * (4 * 16 * 9 * 16 * 16 + 16 * 16 * 9 * 8 * 8 + 16 * 4)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(self.dropout(x)), y)
        self.log("train/loss", loss)
        return loss


class DataModule(L.LightningDataModule):
    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int = 0, num_workers: int = 0
    ) -> None:
        super().__init__()
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.num_workers = num_workers

    def train_dataloader(self) -> ResumableDataLoader:
        return ResumableDataLoader(
            self.dataset, batch_size=self.batch_size, seed=self.seed, num_workers=self.num_workers
        )


def tiny_lm(seq_len: int = 32) -> CausalLMModule:
    cfg = TransformerConfig(
        vocab_size=64, d_model=32, n_layers=2, n_heads=4, mlp_hidden=64, max_seq_len=seq_len
    )
    return CausalLMModule(cfg, seq_len, OptimizerConfig(lr=3e-3), SchedulerConfig(warmup_steps=2))


def build(kind: str, seed: int, global_batch: int, world_size: int = 1):
    """(module, datamodule) of a test model, seeded, with the per-rank batch for ``world_size``."""
    L.seed_everything(seed, workers=True, verbose=False)
    per_rank = global_batch // world_size
    if kind == "vision":
        return VisionClassifier(), DataModule(SyntheticImages(seed=seed), per_rank, seed)
    if kind == "lm":
        return tiny_lm(), DataModule(RandomTokens(seed=seed), per_rank, seed)
    raise ValueError(kind)


def state_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) parameters as plain CPU tensors."""
    out = {}
    for name, p in module.named_parameters():
        t = p.detach()
        if hasattr(t, "full_tensor"):
            t = t.full_tensor()
        out[name] = t.cpu().clone()
    return out
