"""olmo_lm on 2 gloo ranks: global-batch MoE balance, FSDP2 set-up from the meta device, and
tensor parallelism equal to one process."""

from typing import ClassVar

import pytest
import torch

from earthplat.traincore.distributed import run_distributed_test
from tests.integration.olmo_lm import distributed_fns as fns

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def test_moe_balance_is_counted_over_the_global_batch():
    tokens = torch.randn(40, 16, generator=torch.Generator().manual_seed(1))
    ranks = run_distributed_test(fns.moe_global_load, tokens, timeout=120)
    from olmo_lm.model.layers.moe import MoE

    torch.manual_seed(0)
    moe = MoE(16, 8, n_experts=4, top_k=2)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.5)

    class Ctx:
        collect_router_stats = True
        router_stats: ClassVar[list] = []

    moe(tokens, Ctx)
    single = Ctx.router_stats[0]
    for r in ranks:  # every rank sees the global load
        torch.testing.assert_close(r["load"], single.load)
    # the mean of the ranks' losses (what gradient averaging optimises) is one process's loss
    torch.testing.assert_close((ranks[0]["lb_loss"] + ranks[1]["lb_loss"]) / 2, single.lb_loss)


def test_1b_preset_sets_up_under_fsdp2_with_half_the_parameters_per_rank():
    ranks = run_distributed_test(fns.fsdp2_meta_setup, "olmo2_1B", timeout=400)
    total = ranks[0]["total_params"]
    assert total == pytest.approx(1.485e9, rel=0.01)
    for r in ranks:
        assert r["local_params"] == pytest.approx(total / 2, rel=0.01)
        # no rank ever allocated the whole model (4 bytes x 1.48B = 5.9 GB)
        assert r["rss_growth"] < 0.75 * 4 * total
        assert r["std"] == pytest.approx(0.02, rel=0.1) and r["norm_weight"] == 1.0
    assert not torch.equal(ranks[0]["sample"], ranks[1]["sample"])  # shards drawn apart


def test_tensor_parallel_equals_one_process():
    tokens = torch.randint(64, (2, 17), generator=torch.Generator().manual_seed(2))
    ranks = run_distributed_test(fns.tensor_parallel_forward, "tiny", tokens, timeout=120)
    from olmo_lm.model.config import PRESETS
    from olmo_lm.train.pretrain import CausalLMModule, lm_losses

    torch.manual_seed(0)
    module = CausalLMModule(PRESETS["tiny"](vocab_size=64), 16)
    logits = module.model(tokens[:, :-1])
    ce, _ = lm_losses(logits.flatten(0, 1), tokens[:, 1:].flatten())
    ce.backward()
    for r in ranks:
        torch.testing.assert_close(r["logits"], logits.detach(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(r["loss"], ce.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            r["grad"], module.model.blocks[0].ffn.w_gate.weight.grad, rtol=1e-4, atol=1e-6
        )


def test_fsdp2_mixed_precision_from_the_config(tmp_path):
    ranks = run_distributed_test(
        fns.fsdp2_mixed_precision_fit, str(tmp_path / "bf16"), "bfloat16", timeout=300
    )
    for r in ranks:
        assert r["compute_dtype"] == "torch.bfloat16"  # gathered for compute in bf16
        assert r["master_dtype"] == "torch.float32"  # sharded master weights stay fp32
    assert abs(ranks[0]["loss"] - 4.16) < 0.2  # ln(64): an untrained model, finite in bf16


def test_fsdp_param_dtype_needs_the_fsdp_strategy():
    from earthplat.traincore.errors import TrainCoreConfigError
    from earthplat.traincore.trainer import TrainerConfig

    with pytest.raises(TrainCoreConfigError, match="strategy: fsdp"):
        TrainerConfig(max_steps=1, fsdp_param_dtype="bfloat16")
