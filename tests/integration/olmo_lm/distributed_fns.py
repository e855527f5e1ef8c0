"""Rank functions for the olmo_lm distributed tests (module level, so every rank imports them)."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.distributed as dist


def moe_global_load(tokens: torch.Tensor) -> dict:
    """One MoE layer on this rank's half of ``tokens``, balance counted over both ranks."""
    from earthplat.traincore.data import clear_data_parallel, set_data_parallel
    from olmo_lm.model.layers.moe import MoE

    rank, world = dist.get_rank(), dist.get_world_size()
    set_data_parallel(rank, world, None)
    torch.manual_seed(0)
    moe = MoE(16, 8, n_experts=4, top_k=2)
    for p in moe.parameters():
        torch.nn.init.normal_(p, std=0.5)

    class Ctx:
        collect_router_stats = True
        router_stats: ClassVar[list] = []

    ctx = Ctx()
    moe(tokens.chunk(world)[rank], ctx)
    clear_data_parallel()
    stats = ctx.router_stats[0]
    return {"load": stats.load, "lb_loss": stats.lb_loss.detach()}


def fsdp2_meta_setup(preset: str) -> dict:
    """Build ``preset`` on meta, shard it over the ranks with FSDP2, materialise the shards."""
    import psutil
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor

    from earthplat.traincore.parallel import apply_parallelism
    from olmo_lm.model.config import PRESETS
    from olmo_lm.train.pretrain import CausalLMModule

    rss_before = psutil.Process().memory_info().rss
    torch.manual_seed(0)
    module = CausalLMModule(PRESETS[preset](), 64, init_device="meta")
    mesh = init_device_mesh(
        "cpu", (dist.get_world_size(), 1), mesh_dim_names=("data_parallel", "tensor_parallel")
    )
    apply_parallelism(module, mesh, fsdp_units=module.fsdp_units())
    module.materialize("cpu")
    local = sum(
        (p.to_local() if isinstance(p, DTensor) else p).numel() for p in module.parameters()
    )
    w = module.model.blocks[0].mixer.w_q.weight.to_local()
    return {
        "local_params": local,
        "total_params": module.model_config.num_params(),
        "rss_growth": psutil.Process().memory_info().rss - rss_before,
        "std": float(w.std()),
        "norm_weight": float(module.model.norm.weight.to_local().mean()),
        "sample": w[:4, :4].clone(),
    }


def tensor_parallel_forward(preset: str, tokens: torch.Tensor) -> dict:
    """Logits and gradients of a tensor-parallel copy of a seeded model."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor.parallel import parallelize_module

    from olmo_lm.model.config import PRESETS
    from olmo_lm.train.pretrain import CausalLMModule, lm_losses

    torch.manual_seed(0)
    module = CausalLMModule(PRESETS[preset](vocab_size=64), 16)
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    parallelize_module(module, mesh, module.tensor_parallel_plan())
    logits = module.model(tokens[:, :-1])
    ce, _ = lm_losses(logits.flatten(0, 1), tokens[:, 1:].flatten())
    ce.backward()
    grad = module.model.blocks[0].ffn.w_gate.weight.grad
    grad = grad.full_tensor() if isinstance(grad, DTensor) else grad
    return {"logits": logits.detach(), "loss": ce.detach(), "grad": grad}


def fsdp2_mixed_precision_fit(run_dir: str, param_dtype: str | None) -> dict:
    """Two FSDP2 training steps of a meta-initialised LM with the mixed-precision policy of
    the config; records the dtype the blocks computed in and the master weights' dtype."""
    from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
    from earthplat.traincore.trainer import TrainerConfig, fit
    from olmo_lm.model.config import PRESETS
    from olmo_lm.train.pretrain import CausalLMModule
    from tests.helpers.models import DataModule, RandomTokens

    torch.manual_seed(0)
    cfg = PRESETS["tiny"](vocab_size=64).replace(max_seq_len=32)
    module = CausalLMModule(
        cfg, 32, OptimizerConfig(lr=1e-3), SchedulerConfig(warmup_steps=1), init_device="meta"
    )
    seen = []
    module.model.blocks[0].ffn.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    trainer = TrainerConfig(
        run_dir=run_dir,
        strategy="fsdp",
        accelerator="cpu",
        devices=dist.get_world_size(),
        max_steps=2,
        enable_progress_bar=False,
        process_group_backend="gloo",
        fsdp_param_dtype=param_dtype,
    )
    out = fit(trainer, module, DataModule(RandomTokens(n=32, vocab=64), batch_size=4))
    weight = module.model.blocks[0].ffn.w_gate.weight
    return {
        "compute_dtype": str(seen[0]),
        "master_dtype": str(weight.dtype),
        "loss": float(out.callback_metrics["train/loss"]),
    }
