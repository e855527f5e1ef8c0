"""Functions that ``run_distributed_test`` runs on each rank (importable, module level)."""

from __future__ import annotations

import copy
import os

import torch
import torch.distributed as dist

from earthplat.traincore.trainer import TrainerConfig, fit
from tests.helpers.models import build, state_of


def report_environment(names: list[str]) -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in names} | {"rank": dist.get_rank()}


def fail_on_rank(bad_rank: int) -> int:
    if dist.get_rank() == bad_rank:
        raise ValueError(f"rank {bad_rank} fails on purpose")
    return dist.get_rank()


def train_and_return_weights(
    kind: str, strategy: str, run_dir: str, global_batch: int, steps: int, world_size: int
) -> dict[str, torch.Tensor]:
    module, data = build(kind, seed=0, global_batch=global_batch, world_size=world_size)
    cfg = TrainerConfig(
        run_dir=run_dir,
        strategy=strategy,
        accelerator="cpu",
        devices=world_size,
        max_steps=steps,
        enable_progress_bar=False,
        process_group_backend="gloo",
    )
    fit(cfg, module, data)
    return state_of(module)


def fsdp_shards_and_grads(global_batch: int = 8) -> dict:
    """Shard the LM with FSDP2 over all ranks; compare its gradients with an unsharded copy."""
    from torch.distributed.device_mesh import init_device_mesh

    from earthplat.traincore.parallel import apply_parallelism, is_sharded

    world, rank = dist.get_world_size(), dist.get_rank()
    module, data = build("lm", seed=0, global_batch=global_batch)
    reference = copy.deepcopy(module)
    batch = torch.stack([data.dataset[i] for i in range(global_batch)])

    mesh = init_device_mesh("cpu", (world, 1), mesh_dim_names=("data_parallel", "tensor_parallel"))
    apply_parallelism(module, mesh, fsdp_units=module.fsdp_units())
    shard_info = {}
    for name, p in module.named_parameters():
        shard_info[name] = {
            "sharded": is_sharded(p),
            "local": p.to_local().numel(),
            "full": p.numel(),
        }

    per_rank = global_batch // world
    mine = batch[rank * per_rank : (rank + 1) * per_rank]
    module._loss(mine).backward()
    reference._loss(batch).backward()

    max_diff = 0.0
    for p, q in zip(module.parameters(), reference.parameters()):
        full_grad = p.grad.full_tensor()
        max_diff = max(max_diff, (full_grad - q.grad).abs().max().item())
    return {"shards": shard_info, "max_grad_diff": max_diff}


def tensor_parallel_forward() -> dict:
    """Column/row-parallel MLP on 2 ranks gives the unsharded output and sharded weights."""
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    from earthplat.traincore.parallel import apply_parallelism, is_sharded

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))

        def forward(self, x):
            return self.mlp(x)

    torch.manual_seed(0)
    model = Holder()
    reference = copy.deepcopy(model)
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    mesh = init_device_mesh(
        "cpu", (1, dist.get_world_size()), mesh_dim_names=("data_parallel", "tensor_parallel")
    )
    apply_parallelism(model, mesh, tp_plan={"mlp.0": ColwiseParallel(), "mlp.2": RowwiseParallel()})
    out = model(x)
    loss = out.square().mean()
    loss.backward()
    ref_out = reference(x)
    ref_out.square().mean().backward()
    g = model.mlp[0].weight.grad.full_tensor()
    return {
        "max_out_diff": (out - ref_out).abs().max().item(),
        "max_grad_diff": (g - reference.mlp[0].weight.grad).abs().max().item(),
        "sharded": is_sharded(model.mlp[0].weight) and is_sharded(model.mlp[2].weight),
        "local_rows": model.mlp[0].weight.to_local().shape[0],
    }


def train_crash_then_resume(
    kind: str, strategy: str, run_dir: str, steps: int, crash_at: int, world_size: int
) -> dict[str, torch.Tensor]:
    """Crash at ``crash_at`` (after a checkpoint), then run again in the same directory."""
    import lightning as L

    from earthplat.traincore.checkpoint import CheckpointConfig

    class Crash(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == crash_at:
                raise RuntimeError("simulated crash")

    cfg = TrainerConfig(
        run_dir=run_dir,
        strategy=strategy,
        accelerator="cpu",
        devices=world_size,
        max_steps=steps,
        enable_progress_bar=False,
        process_group_backend="gloo",
        checkpoint=CheckpointConfig(every_n_steps=2),
    )
    module, data = build(kind, seed=0, global_batch=8, world_size=world_size)
    try:
        fit(cfg, module, data, callbacks=[Crash()])
    except RuntimeError as e:
        assert "simulated crash" in str(e)
    else:
        raise AssertionError("the crash did not happen")
    module, data = build(kind, seed=5, global_batch=8, world_size=world_size)
    data.seed = 0
    data.dataset.seed = 0
    fit(cfg, module, data)
    return state_of(module)


def pretrain_steps(pack: str, run_dir: str, strategy: str = "ddp") -> dict[str, torch.Tensor]:
    """Two Latent MIM steps of the pico encoder under DDP or FSDP2 on a packed dataset."""
    from earthplat.data.pretrain import PretrainDataConfig, PretrainDataModule
    from earthplat.data.pretrain import PretrainSamplingConfig as Sampling
    from earthplat.nn.encoder import EncoderConfig
    from earthplat.train.pretrain import LatentMIMModule

    torch.manual_seed(0)
    module = LatentMIMModule(encoder=EncoderConfig.pico(modalities=("sentinel2_l1c",)))
    data = PretrainDataModule(
        PretrainDataConfig(
            path=pack,
            batch_size=4,
            val_fraction=0.0,
            num_workers=0,
            sampling=Sampling(min_patch_size=4, max_patch_size=8, token_budget=256, max_periods=1),
        )
    )
    cfg = TrainerConfig(
        run_dir=run_dir,
        strategy=strategy,
        accelerator="cpu",
        devices=2,
        max_steps=2,
        enable_progress_bar=False,
        process_group_backend="gloo",
    )
    fit(cfg, module, data)
    return state_of(module.encoder)


def finetune_run(
    dataset: str, run_dir: str, strategy: str, world_size: int, freeze: str = "warmup"
) -> dict:
    """Fine-tune a pico segmentation model on real flood windows through ``run_finetune`` (the
    path of ``earthplat finetune``) at a global batch of 8; return its metrics, its exported
    weights, and the model loaded back from the run dir."""
    from earthplat.nn.task_model import load_task_model
    from earthplat.train.finetune import run_finetune

    cfg = {
        "seed_everything": 0,
        "model": {
            "class_path": "earthplat.train.tasks.SegmentationTask",
            "init_args": {
                "backbone": {"name": "earthplat", "encoder": {"preset": "pico"}},
                "head": {"name": "linear"},
                "patch_size": 4,
                "freeze": freeze,
                "unfreeze_fraction": 0.5,
                "optimizer": {"lr": 5e-3},
                "class_weights": [1.0, 2.0],  # water is rare: the model must find some
            },
        },
        "data": {
            "class_path": "earthplat.data.finetune.FinetuneDataModule",
            "init_args": {
                "config": {
                    "path": dataset,
                    "task": "segmentation",
                    "inputs": {"s2": "sentinel2_l1c"},
                    "label": {"kind": "layer", "name": "label"},
                    "classes": [{"value": 0, "label": "land"}, {"value": 1, "label": "water"}],
                    "split": {
                        "kind": "spatial",
                        "cell_size_m": 640,
                        "fractions": {"train": 0.7, "val": 0.15, "test": 0.15},
                    },
                    "chip_size": 32,
                    "batch_size": 8 // world_size,
                }
            },
        },
        "trainer": {
            "run_dir": run_dir,
            "strategy": strategy,
            "accelerator": "cpu",
            "devices": world_size,
            "process_group_backend": "gloo",
            "max_steps": 8,
            "val_check_interval": 100,
            "enable_progress_bar": False,
        },
    }
    result = run_finetune(cfg)
    exported = load_task_model(result.model_dir)
    return {
        "metrics": result.metrics,
        "state": {k: v.detach().clone() for k, v in exported.state_dict().items()},
        # the run dir resolves to a model (for FSDP2, past its sharded checkpoint)
        "from_run_dir": load_task_model(run_dir).state_dict(),
    }


def validate_with_a_rank_without_targets(task: str) -> dict:
    """Validate a task on 2 DDP ranks where rank 1's only batch has no valid target (its
    metrics see no update): both ranks must still meet in every metric collective and log the
    same keys."""
    import lightning as L
    from lightning.pytorch.strategies import DDPStrategy
    from torch.utils.data import DataLoader

    from tests.unit.earthplat.train.test_tasks import make_batch, make_module

    module = make_module(task)
    batch = make_batch(task)
    if dist.get_rank() == 1:
        batch.target_valid = torch.zeros_like(batch.target_valid)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(process_group_backend="gloo"),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    (results,) = trainer.validate(module, DataLoader([batch], batch_size=None), verbose=False)
    return {k: float(v) for k, v in results.items()}
