"""``TaskModule``: the LightningModule every fine-tuning task derives from.

It builds the ``TaskModel`` (held at ``self.model``, so its state-dict prefix is ``model.``),
saves ``task_spec`` in the hparams (``load_task_model`` rebuilds from it without Lightning),
applies the backbone freeze schedule, and runs the metric loop: subclasses define ``task``,
``compute_loss``, ``build_metrics``, ``update_metrics`` and ``predict_outputs``.

Freeze modes: ``none`` trains everything; ``frozen`` keeps the backbone fixed (not in the
optimizer, eval mode); ``warmup`` keeps it fixed (eval mode, no gradients, so AdamW neither
steps nor decays it; under data parallelism it computes gradients that are dropped before each
optimizer step) for the first ``unfreeze_fraction`` of the optimizer steps, then trains it. The
state is derived from ``global_step`` at every batch, so a resumed run is in the same phase as
an uninterrupted one.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torchmetrics import MeanMetric

from earthplat.batch import Batch, ModalityInput, to_model_inputs
from earthplat.errors import EarthplatError
from earthplat.nn.backbones import FREEZE_MODES, resolved_backbone_dict
from earthplat.nn.task_model import TaskModel, TaskSpec
from earthplat.tasks import TASKS, TaskKind
from earthplat.traincore.module import TrainCoreModule, plain_hparams
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.reduce import global_mean


def batch_inputs(batch: Batch) -> dict[str, ModalityInput]:
    """A batch as the task model's inputs (``earthplat.batch.to_model_inputs``)."""
    return to_model_inputs(batch)


class TaskModule(TrainCoreModule):
    task: ClassVar[str] = ""
    """The task's name in the registry (``earthplat.tasks``), which holds its facts."""

    @property
    def kind(self) -> TaskKind:
        return TASKS[self.task]

    @property
    def default_head(self) -> str:
        return self.kind.default_head

    def __init__(
        self,
        inputs: dict[str, list[str]] | None = None,
        num_outputs: int | None = None,
        classes: list[dict] | None = None,
        backbone: dict | None = None,
        head: dict | None = None,
        patch_size: int = 4,
        chip_size: int | None = None,
        num_periods: int | None = None,
        gsd_m: float = 10.0,
        freeze: str = "none",
        unfreeze_fraction: float = 0.1,
        class_weights: list[float] | None = None,
        optimizer: OptimizerConfig | dict | None = None,
        scheduler: SchedulerConfig | dict | None = None,
        task_spec: dict | None = None,
    ) -> None:
        """
        Args:
            inputs: modality -> band names the model reads (in order); ``None``: the
                datamodule's ``input_bands`` at setup.
            num_outputs: classes / targets (default: ``len(classes)``, or 1).
            classes: class schema ``[{value, label, color}]``; ``None``: the datamodule's.
            backbone: ``{"name": "earthplat", "encoder": {"preset": "nano", ...},
                "pretrained": EXPORT_DIR_OR_CKPT}`` or ``{"name": "timm", "model": "resnet18"}``.
            head: ``{"name": "linear"|"mlp"|"upernet"|"centernet", ...kwargs}``.
            patch_size: encoder patch size in pixels (timm backbones ignore it).
            chip_size: training chip size in pixels (recorded for inference tiling);
                ``None``: the datamodule's.
            num_periods: time steps per input; ``None``: the datamodule's.
            gsd_m: ground sample distance in metres.
            freeze: ``none``, ``frozen`` or ``warmup`` (see the module docstring).
            unfreeze_fraction: ``warmup`` only: fraction of the steps the backbone stays frozen.
            class_weights: per-class loss weights (class tasks).
            optimizer: AdamW settings.
            scheduler: learning-rate schedule (warmup, then cosine, linear or WSD decay).
            task_spec: a saved ``TaskSpec`` dict; when given it replaces the arguments above
                and no pretrained weights are loaded (checkpoint reloads).
        """
        super().__init__(optimizer, scheduler)
        if freeze not in FREEZE_MODES:
            raise EarthplatError(f"freeze must be one of {FREEZE_MODES}, got {freeze!r}")
        if not 0.0 <= unfreeze_fraction <= 1.0:
            raise EarthplatError("unfreeze_fraction must lie in [0, 1]")
        self.freeze, self.unfreeze_fraction = freeze, unfreeze_fraction
        self.class_weights_list = class_weights
        self.spec_args: dict[str, Any] = dict(
            inputs=inputs,
            num_outputs=num_outputs,
            classes=classes,
            backbone=backbone,
            head=head,
            patch_size=patch_size,
            chip_size=chip_size,
            num_periods=num_periods,
            gsd_m=gsd_m,
        )
        self.save_hyperparameters(
            plain_hparams(
                **self.spec_args,
                freeze=freeze,
                unfreeze_fraction=unfreeze_fraction,
                class_weights=class_weights,
                optimizer=self.optimizer_config,
                scheduler=self.scheduler_config,
                task_spec=task_spec,
            )
        )
        self.model: TaskModel | None = None
        self.spec_given = task_spec is not None
        if task_spec is not None:
            self._build(TaskSpec.from_dict(task_spec), load_pretrained=False)
        elif inputs is not None and (classes is not None or not TASKS[self.task].class_task):
            self._build(self._spec_from(self.spec_args), load_pretrained=True)

    # --- building the model (now, or from the datamodule at setup) ----------------------------
    def _spec_from(self, args: dict[str, Any]) -> TaskSpec:
        if not args["inputs"]:
            raise EarthplatError("model.inputs is required: {modality: [band, ...]} it reads")
        classes = list(args["classes"] or [])
        backbone = args["backbone"] or {"name": "earthplat", "encoder": {"preset": "nano"}}
        return TaskSpec(
            task=self.task,
            inputs=args["inputs"],
            num_outputs=args["num_outputs"] or len(classes) or 1,
            classes=classes,
            patch_size=args["patch_size"],
            chip_size=args["chip_size"] or 32,
            num_periods=args["num_periods"] or 1,
            gsd_m=args["gsd_m"],
            backbone=dict(backbone),
            head={"name": self.default_head, **(args["head"] or {})},
        )

    def _build(self, spec: TaskSpec, load_pretrained: bool) -> None:
        if spec.task != self.task:
            raise EarthplatError(f"{type(self).__name__} cannot load a {spec.task} task spec")
        self.model = TaskModel(spec, load_pretrained=load_pretrained)
        spec.backbone = resolved_backbone_dict(spec.backbone, self.model.backbone)
        self.spec = spec
        weights = self.class_weights_list
        if weights is not None and len(weights) != spec.num_outputs:
            raise EarthplatError(f"{len(weights)} class_weights for {spec.num_outputs} outputs")
        w = None if weights is None else torch.tensor(weights, dtype=torch.float)
        self.register_buffer("class_weights", w, persistent=False)
        self.val_metrics = self.build_metrics()
        self.test_metrics = self.build_metrics()
        # the eval loss: a mean over every rank's batches weighted by ``loss_weight`` (Lightning's
        # sync_dist would average per-rank means, weighing a short last shard like a full one)
        self.eval_loss = nn.ModuleDict(
            {stage: MeanMetric(nan_strategy="disable") for stage in ("val", "test")}
        )  # a NaN loss stays visible (a diverged run must not look healthy)
        self._apply_freeze(0)
        self.hparams["task_spec"] = spec.to_dict()

    def setup(self, stage: str) -> None:
        """Fill what the model config left open (``inputs``, ``classes``, ``chip_size``,
        ``num_periods``) from the datamodule, and build the model."""
        dm = getattr(self.trainer, "datamodule", None)
        cfg = getattr(dm, "config", None)
        args = dict(self.spec_args)
        for key in ("classes", "chip_size", "num_periods"):
            if args[key] is None and cfg is not None:
                args[key] = getattr(cfg, key, None)
        if self.model is not None:
            if self.spec_given:
                return
            for key in ("chip_size", "num_periods"):  # recorded for inference, no weights
                if self.spec_args[key] is None and args[key] is not None:
                    setattr(self.spec, key, args[key])
            self.hparams["task_spec"] = self.spec.to_dict()
            return
        if args["inputs"] is None and hasattr(dm, "input_bands"):
            args["inputs"] = dm.input_bands
        self._build(self._spec_from(args), load_pretrained=True)

    # --- freeze schedule ---------------------------------------------------------------------
    def backbone_frozen_at(self, step: int) -> bool:
        if self.freeze == "none":
            return False
        if self.freeze == "frozen":
            return True
        total = self._total_steps()
        return total is None or step < self.unfreeze_fraction * total

    def _total_steps(self) -> int | None:
        if self._trainer is None:
            return None
        return int(self.trainer.estimated_stepping_batches)

    def _apply_freeze(self, step: int) -> None:
        frozen = self.backbone_frozen_at(step)
        trainable = self.freeze == "none" or (self.freeze == "warmup" and not frozen)
        if self.freeze == "warmup" and self._data_parallel():
            # parameters that start without ``requires_grad`` are left out of DDP's gradient
            # sync for good, so a data-parallel warmup backbone requires gradients throughout;
            # its frozen-phase gradients are dropped before each optimizer step
            trainable = True
        self.model.set_backbone_trainable(trainable)
        if frozen:
            self.model.backbone.eval()  # no BatchNorm statistics updates, no drop path
        elif self.training:
            self.model.backbone.train()

    def _data_parallel(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._apply_freeze(self.global_step)

    def configure_optimizers(self) -> dict:
        # warmup: the backbone joins the optimizer now and gets gradients once unfrozen
        self.model.set_backbone_trainable(self.freeze != "frozen")
        try:
            return super().configure_optimizers()
        finally:
            self._apply_freeze(self.global_step)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # before clipping: a fixed backbone neither steps, decays, nor counts in the grad norm
        if self.freeze == "warmup" and self.backbone_frozen_at(self.global_step):
            for p in self.model.backbone.parameters():
                p.grad = None

    # --- parallelism -------------------------------------------------------------------------
    def fsdp_units(self) -> list[nn.Module]:
        """Each encoder block is its own FSDP2 unit (timm backbones shard as one unit)."""
        encoder = getattr(self.model.backbone, "encoder", None)
        return list(getattr(encoder, "blocks", []))

    # --- steps -------------------------------------------------------------------------------
    def forward(self, batch: Batch) -> torch.Tensor | dict:
        return self.model(batch_inputs(batch))

    def samples_in_batch(self, batch: Batch) -> int:
        return len(batch)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(self(batch), batch)
        # sync_dist: each rank's loss is its share of the global-batch loss (``global_mean``)
        self.log(
            "train/loss",
            loss,
            prog_bar=True,
            batch_size=self.samples_in_batch(batch),
            sync_dist=self._data_parallel(),
        )
        return loss

    def _eval_step(self, batch: Batch, stage: str) -> None:
        out = self(batch)
        loss = self.compute_loss(out, batch)
        self.eval_loss[stage].update(loss.detach(), weight=self.loss_weight(batch))
        self.update_metrics(self.val_metrics if stage == "val" else self.test_metrics, out, batch)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.test_metrics, "test")

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0):
        out = self(batch)
        return {
            "window": batch.window,
            "chip": batch.chip,
            "output": self.predict_outputs(out),
        }

    # --- metrics -----------------------------------------------------------------------------
    def _log_metrics(self, metrics: nn.ModuleDict, stage: str) -> None:
        values: dict[str, torch.Tensor] = {}
        loss = self.eval_loss[stage]
        if self._updated_on_some_rank(loss):
            values[f"{stage}/loss"] = loss.compute().float()
            loss.reset()
        for name, metric in metrics.items():
            if not self._updated_on_some_rank(metric):
                continue
            result = metric.compute()
            items = result.items() if isinstance(result, dict) else [(name, result)]
            for key, value in items:
                value = torch.as_tensor(value, dtype=torch.float)
                if value.numel() == 1:
                    values[f"{stage}/{key}"] = value.reshape(())
                elif key == name:  # per-class values
                    for i, v in enumerate(value):
                        values[f"{stage}/{name}_{self.class_label(i)}"] = v
            metric.reset()
        if values:
            self.log_dict(values, sync_dist=True)

    def _updated_on_some_rank(self, metric) -> bool:
        """Whether any rank updated ``metric``: every rank must then compute (a collective) and
        log the same keys, also a rank whose shard held no valid target."""
        flag = torch.tensor(float(metric.update_called))
        if self._data_parallel():
            flag = self.trainer.strategy.reduce(flag, reduce_op="max")
        return bool(flag.item())

    def class_label(self, i: int) -> str:
        classes = self.spec.classes
        return str(classes[i].get("label", i)) if i < len(classes) else str(i)

    # --- per task ------------------------------------------------------------------------------
    def compute_loss(self, out: Any, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def loss_weight(self, batch: Batch) -> float:
        """What ``compute_loss`` averaged over in ``batch`` (chips by default; labelled pixels
        or targets where the loss is a masked mean), so the eval loss over many batches is
        the mean over all of them, however they were batched or sharded."""
        return float(self.samples_in_batch(batch))

    def build_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict()

    def update_metrics(self, metrics: nn.ModuleDict, out: Any, batch: Batch) -> None:
        pass

    def predict_outputs(self, out: Any) -> Any:
        return out


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` over the global batch (``global_mean``); 0 (with a
    graph) when nothing is valid."""
    mask = mask.to(values.dtype)
    return global_mean((values * mask).sum(), mask.sum())


def class_weighted_ce(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy ignoring ``-1`` targets, as ``F.cross_entropy``'s mean (weighted by the
    targets' class weights) but over the global batch; 0 (with a graph) when nothing is
    labelled."""
    per = torch.nn.functional.cross_entropy(
        logits, target, weight=weight, ignore_index=-1, reduction="sum"
    )
    return global_mean(per, ce_count(target, weight), min_count=1e-12)


def ce_count(target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """The denominator of ``class_weighted_ce``: labelled targets, each counted by its class
    weight."""
    valid = target >= 0
    if weight is None:
        return valid.sum()
    return weight[target.clamp_min(0)].masked_fill(~valid, 0).sum()
