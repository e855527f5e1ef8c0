"""Training options at LM scale: activation checkpointing, compiled blocks, token durations."""

import pytest
import torch

from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.cli import PretrainJobConfig
from olmo_lm.data.text import TextDataConfig
from olmo_lm.model.config import PRESETS
from olmo_lm.train.pretrain import CausalLMModule


@pytest.mark.parametrize("preset", ["tiny", "olmoe_tiny", "olmo_hybrid_tiny"])
def test_activation_checkpointing_gives_the_same_gradients(preset):
    batch = torch.randint(64, (2, 17), generator=torch.Generator().manual_seed(0))
    grads = []
    for recompute in (False, True):
        torch.manual_seed(0)
        module = CausalLMModule(
            PRESETS[preset](vocab_size=64), 16, activation_checkpointing=recompute
        )
        module._loss(batch).backward()
        grads.append([p.grad.clone() for p in module.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_compiled_blocks_compute_the_same(monkeypatch):
    torch.manual_seed(0)
    module = CausalLMModule(
        PRESETS["tiny"](vocab_size=64), 16, compile_blocks=True, compile_backend="aot_eager"
    )
    batch = torch.randint(64, (2, 17), generator=torch.Generator().manual_seed(0))
    eager = module._loss(batch).detach()
    monkeypatch.setattr(CausalLMModule, "device_mesh", None, raising=False)
    module.configure_model()
    assert all(b._compiled_call_impl is not None for b in module.model.blocks)
    torch.testing.assert_close(module._loss(batch).detach(), eager, rtol=1e-5, atol=1e-6)
    assert "model.blocks.0.mixer.w_q.weight" in module.state_dict()  # names unchanged


def test_duration_in_tokens():
    job = PretrainJobConfig(
        data=TextDataConfig(seq_len=128, batch_size=16),
        trainer=TrainerConfig(max_steps=1, devices=2, accumulate_grad_batches=2),
        max_tokens=1_000_000,
    )
    assert job.steps_for_tokens() == -(-1_000_000 // (16 * 128 * 2 * 2))  # 123 steps
