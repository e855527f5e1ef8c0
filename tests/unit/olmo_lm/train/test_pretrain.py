import csv

import pytest
import torch

from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig, fit
from olmo_lm.model.config import PRESETS
from olmo_lm.train.pretrain import CausalLMModule, LMLossConfig, lm_losses
from tests.helpers.models import DataModule, RandomTokens


def test_lm_losses_are_cross_entropy_and_squared_logsumexp():
    logits = torch.randn(10, 7)
    targets = torch.randint(7, (10,))
    ce, z = lm_losses(logits, targets)
    torch.testing.assert_close(ce, torch.nn.functional.cross_entropy(logits, targets))
    torch.testing.assert_close(z, torch.logsumexp(logits, -1).square().mean())


def _module(preset: str, z_loss: float = 1e-5) -> CausalLMModule:
    torch.manual_seed(0)
    cfg = PRESETS[preset](vocab_size=64).replace(max_seq_len=32)
    return CausalLMModule(
        cfg,
        32,
        OptimizerConfig(lr=3e-3),
        SchedulerConfig(warmup_steps=2),
        LMLossConfig(z_loss_weight=z_loss),
    )


class _Recorder:
    def __init__(self):
        self.logged = {}

    def __call__(self, name, value, **kwargs):
        self.logged[name] = value


def test_training_loss_includes_z_loss_and_moe_losses(monkeypatch):
    module = _module("olmoe_tiny", z_loss=0.5)
    rec = _Recorder()
    monkeypatch.setattr(module, "log", rec)
    monkeypatch.setattr(module, "log_dict", lambda d, **k: rec.logged.update(d))
    batch = RandomTokens(n=4, vocab=64)
    batch = torch.stack([batch[i] for i in range(4)])
    loss = module.training_step(batch, 0)
    got = rec.logged
    moe = module.model_config.moe
    expected = (
        got["train/ce_loss"]
        + 0.5 * got["train/z_loss"]
        + moe.lb_loss_weight * got["train/lb_loss"]
        + moe.z_loss_weight * got["train/router_z_loss"]
    )
    torch.testing.assert_close(loss.detach(), expected)
    loads = [got[f"train/expert_load/{e}"] for e in range(moe.n_experts)]
    assert torch.stack(loads).mean() == pytest.approx(1.0)  # relative to a fair share
    # the balance loss reaches the routers through the module's loss
    loss.backward()
    assert all(b.ffn.router.weight.grad.abs().sum() > 0 for b in module.model.blocks)


def test_dense_loss_has_no_moe_terms(monkeypatch):
    module = _module("tiny")
    rec = _Recorder()
    monkeypatch.setattr(module, "log", rec)
    monkeypatch.setattr(module, "log_dict", lambda d, **k: rec.logged.update(d))
    batch = torch.stack([RandomTokens(vocab=64)[i] for i in range(2)])
    loss = module.training_step(batch, 0)
    assert "train/lb_loss" not in rec.logged
    expected = rec.logged["train/ce_loss"] + 1e-5 * rec.logged["train/z_loss"]
    torch.testing.assert_close(loss.detach(), expected)


@pytest.mark.parametrize("preset", ["olmoe_tiny", "olmo_hybrid_tiny"])
def test_training_through_the_core_learns_and_logs_expert_load(tmp_path, preset):
    module = _module(preset)
    data = DataModule(RandomTokens(n=64, vocab=64), batch_size=8)
    trainer = TrainerConfig(
        run_dir=str(tmp_path),
        accelerator="cpu",
        devices=1,
        max_steps=12,
        log_every_n_steps=1,
        enable_progress_bar=False,
    )
    fit(trainer, module, data)
    rows = list(csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()))
    losses = [float(r["train/ce_loss"]) for r in rows if r.get("train/ce_loss")]
    assert losses[-1] < losses[0]
    if preset == "olmoe_tiny":
        assert any(r.get("train/expert_load/7") for r in rows)
        assert any(r.get("train/lb_loss") for r in rows)
