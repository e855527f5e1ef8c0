"""MFU of LM training: FLOPs count the LM head and attention; an implausible CPU peak (measured
while the machine was busy) is measured again."""

import json

import torch

from earthplat.traincore import flops
from earthplat.traincore.optim import OptimizerConfig
from earthplat.traincore.trainer import TrainerConfig, fit
from olmo_lm.model.config import PRESETS
from olmo_lm.train.pretrain import CausalLMModule
from tests.helpers.models import DataModule, RandomTokens


def test_flops_per_sample_counts_head_and_attention():
    cfg = PRESETS["tiny"](vocab_size=64)
    module = CausalLMModule(cfg, 32)
    weights = cfg.num_params(embeddings=False) + 64 * cfg.d_model  # + LM head
    attention = 12 * cfg.n_layers * cfg.d_model * 32
    assert module.flops_per_sample == (6 * weights + attention) * 32


def test_implausible_cpu_peak_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHPLAT_CACHE_DIR", str(tmp_path / "cache"))
    peaks = iter([1e3, 1e15])  # first a peak "measured under load", then a real one
    monkeypatch.setattr(flops, "measure_cpu_matmul_flops", lambda *a, **k: next(peaks))
    torch.manual_seed(0)
    module = CausalLMModule(
        PRESETS["tiny"](vocab_size=64).replace(max_seq_len=32), 32, OptimizerConfig(lr=1e-3)
    )
    trainer = TrainerConfig(
        run_dir=str(tmp_path / "run"),
        accelerator="cpu",
        devices=1,
        max_steps=4,
        enable_progress_bar=False,
        throughput_warmup_steps=1,
    )
    fit(trainer, module, DataModule(RandomTokens(n=32, vocab=64), batch_size=4))
    summary = json.loads((tmp_path / "run" / "throughput.json").read_text())
    assert summary["peak_remeasured"] is True
    assert summary["peak_flops_per_device"] == 1e15
    assert 0 < summary["mfu"] < 1
    assert summary["tokens_per_sec"] > 0
