"""The core on a CUDA device: bf16 training, NVML energy, MFU from the GPU peak table, FSDP2.

Marked ``gpu``: ``make test`` never runs these; run them on a GPU machine with
``python -m pytest -m gpu tests/gpu``.
"""

import json

import pytest
import torch

from earthplat.traincore.checkpoint import CheckpointConfig
from earthplat.traincore.trainer import TrainerConfig, fit
from olmo_lm.model.config import TransformerConfig
from olmo_lm.train.pretrain import CausalLMModule
from tests.helpers.models import DataModule, RandomTokens

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _lm(seq_len=256):
    cfg = TransformerConfig(
        vocab_size=512, d_model=512, n_layers=6, n_heads=8, mlp_hidden=1536, max_seq_len=seq_len
    )
    return CausalLMModule(cfg, seq_len), DataModule(
        RandomTokens(n=4096, seq_len=seq_len, vocab=512), 32
    )


@pytest.mark.parametrize("strategy, clip", [("auto", None), ("auto", 1.0), ("fsdp", 1.0)])
def test_bf16_training_reports_nvml_energy_and_mfu(tmp_path, strategy, clip):
    torch.manual_seed(0)
    module, data = _lm()
    cfg = TrainerConfig(
        run_dir=str(tmp_path),
        accelerator="gpu",
        devices=1,
        strategy=strategy,
        precision="bf16-mixed",
        max_steps=60,
        enable_progress_bar=False,
        gradient_clip_val=clip,
        throughput_warmup_steps=10,
        checkpoint=CheckpointConfig(every_n_steps=30),
    )
    trainer = fit(cfg, module, data)
    # fused AdamW unless Lightning's mixed-precision clipping forbids it
    assert trainer.optimizers[0].defaults["fused"] is (clip is None)
    throughput = json.loads((tmp_path / "throughput.json").read_text())
    energy = json.loads((tmp_path / "energy.json").read_text())
    print(strategy, json.dumps(throughput), json.dumps(energy["devices"]))
    assert throughput["peak_flops_per_device"] > 1e14  # the table's bf16 peak, not a guess
    assert 0 < throughput["mfu"] < 1
    assert energy["energy_source"].startswith("measured:nvml")
    assert energy["energy_kwh"] > 0
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    losses = trainer.callback_metrics["train/loss"]
    assert torch.isfinite(losses)
