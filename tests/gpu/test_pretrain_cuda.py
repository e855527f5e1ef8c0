"""Latent MIM pretraining of the nano encoder on a CUDA device in bf16 (marked ``gpu``)."""

import json

import pytest
import torch
from torch.utils.data import DataLoader

from earthplat.nn.encoder import EncoderConfig
from earthplat.train.pretrain import LatentMIMModule
from earthplat.traincore.checkpoint import CheckpointConfig
from earthplat.traincore.trainer import TrainerConfig, fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _batches(n=64, b=16, t=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        valid = torch.rand(b, t, size, size, generator=g) > 0.1  # ragged token counts
        valid[:, :, :8] &= torch.rand(b, 1, 1, 1, generator=g) > 0.5
        out.append(
            {
                "index": torch.arange(b),
                "patch_size": 4,
                "modalities": {
                    "sentinel2_l2a": {
                        "data": torch.randn(b, t, 12, size, size, generator=g),
                        "valid": valid,
                        "timestamps": torch.tensor([[[15, m, 2022] for m in range(t)]] * b),
                        "bands": None,
                    },
                    "worldcover": {
                        "data": torch.randn(b, 1, 1, size, size, generator=g),
                        "valid": torch.ones(b, 1, size, size, dtype=torch.bool),
                        "timestamps": torch.zeros(b, 1, 3, dtype=torch.long),
                        "bands": None,
                    },
                },
            }
        )
    return out


@pytest.mark.parametrize("strategy", ["auto", "fsdp"])
def test_nano_pretraining_bf16(tmp_path, strategy):
    torch.manual_seed(0)
    module = LatentMIMModule(encoder=EncoderConfig.nano())
    loader = DataLoader(_batches(), batch_size=None, shuffle=False)
    cfg = TrainerConfig(
        run_dir=str(tmp_path),
        accelerator="gpu",
        devices=1,
        strategy=strategy,
        precision="bf16-mixed",
        max_steps=60,
        enable_progress_bar=False,
        throughput_warmup_steps=10,
        log_every_n_steps=10,
        checkpoint=CheckpointConfig(every_n_steps=30),
    )
    trainer = fit(cfg, module, train_dataloaders=loader)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    throughput = json.loads((tmp_path / "throughput.json").read_text())
    print(strategy, json.dumps(throughput))
    assert throughput["tokens_per_sec"] > 0
