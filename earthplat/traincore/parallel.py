"""Strategies: DDP, FSDP2 (``fully_shard``) and tensor parallelism under ModelParallelStrategy.

Lightning's ``"fsdp"`` strategy wraps modules with FSDP1 and refuses CPU; FSDP2 under
``ModelParallelStrategy`` runs on CPU/gloo and GPU/nccl alike, so ``fsdp`` here means FSDP2.
The model side (which submodules become FSDP units, the tensor-parallel plan) is declared by the
LightningModule through ``TrainCoreModule`` hooks and applied by ``apply_parallelism``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from lightning.pytorch.strategies import DDPStrategy, ModelParallelStrategy, Strategy
from torch import nn

from earthplat.traincore.data import set_data_parallel
from earthplat.traincore.errors import TrainCoreConfigError

StrategyName = Literal["auto", "ddp", "fsdp"]


class FSDP2Strategy(ModelParallelStrategy):
    """ModelParallelStrategy whose data-parallel size is the world size over the TP size.

    Lightning's own ``"auto"`` sets data-parallel = number of nodes, which is meant for TP within a
    node; FSDP over every rank is the common case, so it is the default here.
    """

    def __init__(
        self,
        tensor_parallel_size: int = 1,
        mixed_precision: tuple[str, str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(
            data_parallel_size="auto", tensor_parallel_size=tensor_parallel_size, **kwargs
        )
        self._tp_size = tensor_parallel_size
        self.mixed_precision = mixed_precision

    @property
    def mp_policy(self):
        """The FSDP2 ``MixedPrecisionPolicy`` of ``mixed_precision`` (param, reduce dtype)."""
        if self.mixed_precision is None:
            return None
        from torch.distributed.fsdp import MixedPrecisionPolicy

        param, reduce = (_dtype(name) for name in self.mixed_precision)
        return MixedPrecisionPolicy(param_dtype=param, reduce_dtype=reduce)

    def _setup_distributed(self) -> None:
        super()._setup_distributed()
        if self.world_size % self._tp_size:
            raise TrainCoreConfigError(
                f"world size {self.world_size} is not divisible by tensor_parallel_size "
                f"{self._tp_size}; choose a tensor-parallel size that divides the rank count"
            )
        self._data_parallel_size = self.world_size // self._tp_size


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise TrainCoreConfigError(f"{name!r} is not a torch dtype (e.g. bfloat16, float32)")
    return dtype


def build_strategy(
    name: str,
    *,
    tensor_parallel_size: int = 1,
    process_group_backend: str | None = None,
    mixed_precision: tuple[str, str] | None = None,
) -> Strategy | str:
    """The Lightning strategy for ``name`` (``auto``, ``ddp`` or ``fsdp``); ``mixed_precision``
    (param dtype, reduce dtype) is FSDP2's policy."""
    if tensor_parallel_size < 1:
        raise TrainCoreConfigError("tensor_parallel_size must be >= 1")
    if tensor_parallel_size > 1 and name != "fsdp":
        raise TrainCoreConfigError(
            f"tensor_parallel_size={tensor_parallel_size} needs strategy 'fsdp' (FSDP2 + TP "
            f"through ModelParallelStrategy), not {name!r}"
        )
    if name == "auto":
        return "auto"
    if name == "ddp":
        return DDPStrategy(
            process_group_backend=process_group_backend,
            find_unused_parameters=False,
            gradient_as_bucket_view=True,
        )
    if name == "fsdp":
        return FSDP2Strategy(
            tensor_parallel_size=tensor_parallel_size,
            process_group_backend=process_group_backend,
            mixed_precision=mixed_precision,
        )
    raise TrainCoreConfigError(f"unknown strategy {name!r}; use one of auto, ddp, fsdp")


def apply_parallelism(
    root: nn.Module,
    device_mesh,
    *,
    fsdp_units: Sequence[nn.Module] = (),
    tp_plan: dict | None = None,
    mp_policy=None,
    forward_methods: dict[nn.Module, list[str]] | None = None,
) -> None:
    """Apply a tensor-parallel plan, then shard with FSDP2, on ``root`` (a LightningModule).

    ``fsdp_units`` are sharded first, each as its own unit (e.g. transformer blocks, so only one
    block's full parameters exist at a time). Then each direct child of ``root`` that still holds
    unsharded parameters becomes a unit, so no parameter is left replicated by accident
    (containers without ``forward`` are descended into). ``forward_methods`` names methods
    other than ``forward`` through which a sharded module is called (FSDP2 gathers the
    parameters only around registered methods).
    """
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method
    from torch.distributed.tensor.parallel import parallelize_module

    tp_mesh = device_mesh["tensor_parallel"]
    dp_mesh = device_mesh["data_parallel"]
    set_data_parallel(dp_mesh.get_local_rank(), dp_mesh.size(), dp_mesh.get_group())
    if is_parallelized(root):
        return  # a later trainer.validate/test on the same module: already sharded
    if tp_mesh.size() > 1:
        if not tp_plan:
            raise TrainCoreConfigError(
                f"tensor_parallel_size={tp_mesh.size()} but {type(root).__name__} defines no "
                "tensor_parallel_plan(); define one or set tensor_parallel_size=1"
            )
        parallelize_module(root, tp_mesh, tp_plan)
    if dp_mesh.size() == 1 and tp_mesh.size() > 1:
        return  # pure tensor parallelism: nothing to shard across data-parallel ranks
    if list(root.parameters(recurse=False)):
        raise TrainCoreConfigError(
            f"{type(root).__name__} holds parameters directly; put them in a submodule so FSDP2 "
            "can shard them"
        )
    kwargs = {"mesh": dp_mesh}
    if mp_policy is not None:
        kwargs["mp_policy"] = mp_policy
    sharded: set[int] = set()

    def shard(module: nn.Module) -> None:
        if type(module).forward is nn.Module.forward:  # a container (ModuleDict/List)
            for child in module.children():
                if any(id(p) not in sharded for p in child.parameters()):
                    shard(child)
            return
        fully_shard(module, **kwargs)
        sharded.update(id(p) for p in module.parameters())

    for unit in fsdp_units:
        shard(unit)
    for child in root.children():
        if any(id(p) not in sharded for p in child.parameters()):
            shard(child)
    for module, names in (forward_methods or {}).items():
        for name in names:  # methods other than forward that use the sharded parameters
            register_fsdp_forward_method(module, name)


def is_parallelized(module: nn.Module) -> bool:
    """Whether FSDP2 or tensor parallelism was applied to ``module``: some submodule is an
    FSDP2 unit (whose parameters may be unsharded plain tensors between an eval forward and
    the next reshard) or some parameter is a DTensor."""
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor

    return any(isinstance(m, FSDPModule) for m in module.modules()) or any(
        isinstance(p, DTensor) for p in module.parameters()
    )


def full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module.state_dict()`` with every DTensor gathered into a full CPU tensor.

    Under FSDP2/TP this is a collective: every rank must call it (in the same order), even
    when only one rank writes the result.
    """
    from torch.distributed.tensor import DTensor

    out = {}
    for key, value in module.state_dict().items():
        if isinstance(value, DTensor):
            value = value.full_tensor()
        out[key] = value.detach().cpu()
    return out


def is_sharded(param: torch.Tensor) -> bool:
    """Whether ``param`` is a DTensor sharded over some mesh dimension."""
    from torch.distributed.tensor import DTensor, Shard

    return isinstance(param, DTensor) and any(isinstance(p, Shard) for p in param.placements)
