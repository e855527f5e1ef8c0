"""Causal-LM pretraining as a ``TrainCoreModule``.

The training loss is what the OLMo recipes optimise:

- cross-entropy of the next token;
- OLMo 2's z-loss, ``weight * mean(logsumexp(logits)^2)`` (1e-5), which keeps the softmax
  normaliser near 1 and the output logits from drifting (a bf16 stability fix);
- for MoE models, each MoE layer's load-balancing and router z-loss (OLMoE: 0.01 and 0.001),
  averaged over the MoE layers and weighted by ``MoEConfig``; the load balance is over the
  global batch under data parallelism (see ``olmo_lm.model.layers.moe``).

The log has each term, and per expert its load relative to a perfect balance
(``train/expert_load/{e}``: 1.0 = its fair share, averaged over layers) and the worst layer's
most loaded expert (``train/expert_load_max``).

Batches are ``[B, T + 1]`` ids, or with document masking (``--data.document_masking``) dicts of
``input_ids`` and ``doc_ids`` (both ``[B, T + 1]``), whose inputs' document ids go to the model
so attention never crosses a document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.module import TrainCoreModule, coerce_config, plain_hparams
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from olmo_lm.model.config import TransformerConfig
from olmo_lm.model.layers.lm_loss import lm_losses
from olmo_lm.model.transformer import document_masking_error

__all__ = [
    "CausalLMModule",
    "LMLossConfig",
    "build_data_module",
    "check_document_masking",
    "lm_losses",
    "split_batch",
]


def check_document_masking(model: TransformerConfig, flag: str) -> None:
    """Refuse ``flag`` (the option that turned document masking on) for a model that cannot
    mask documents (Gated DeltaNet layers), before any data is read."""
    refused = document_masking_error(model)
    if refused is not None:
        raise TrainCoreConfigError(f"{flag}: {refused} ({flag} false)")


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(inputs ``[B, T]``, targets ``[B, T]``, inputs' document ids or ``None``) of a batch of
    ``[B, T + 1]`` ids or of a document-masked ``{"input_ids", "doc_ids"}`` batch."""
    if isinstance(batch, dict):
        ids, docs = batch["input_ids"], batch["doc_ids"]
        return ids[:, :-1], ids[:, 1:], docs[:, :-1]
    return batch[:, :-1], batch[:, 1:], None


def build_data_module(config):
    """The training data of a ``TextDataConfig``: its ``mixture`` YAML when set (batches of
    token-shard sources, ``olmo_lm.data.mixture_loader``), else its text file."""
    if config.mixture is not None:
        from olmo_lm.data.mixture_loader import MixtureDataModule

        return MixtureDataModule(config)
    if getattr(config, "document_masking", False):
        raise TrainCoreConfigError(
            "--data.document_masking needs --data.mixture: a text file has no document "
            "boundaries (token shards keep them)"
        )
    from olmo_lm.data.text import TextDataModule

    return TextDataModule(config)


@dataclass
class LMLossConfig:
    """Terms of the language-model training loss besides cross-entropy."""

    z_loss_weight: float = 1e-5
    """Weight of the z-loss ``mean(logsumexp(logits)^2)`` (OLMo 2: 1e-5; 0 turns it off)."""

    def __post_init__(self) -> None:
        if self.z_loss_weight < 0:
            raise TrainCoreConfigError("loss.z_loss_weight must be >= 0")


class CausalLMModule(TrainCoreModule):
    """Next-token cross-entropy (plus z-loss and MoE losses) on batches of ``[B, T + 1]`` ids."""

    def __init__(
        self,
        model: TransformerConfig | dict,
        seq_len: int,
        optimizer: OptimizerConfig | dict | None = None,
        scheduler: SchedulerConfig | dict | None = None,
        loss: LMLossConfig | dict | None = None,
        init_device: str = "cpu",
        activation_checkpointing: bool = False,
        compile_blocks: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        """``init_device="meta"`` builds the model without memory; ``configure_model``
        allocates and initialises it after FSDP2 sharding, so each rank only ever holds its
        own shards (a model larger than one rank's memory can be set up).
        ``activation_checkpointing`` recomputes each block in backward;
        ``compile_blocks`` compiles each block with ``torch.compile`` (``compile_backend``)
        before sharding, the order torchtitan uses."""
        super().__init__(optimizer, scheduler)
        model = coerce_config(TransformerConfig, model)
        self.loss_config = coerce_config(LMLossConfig, loss) or LMLossConfig()
        self.save_hyperparameters(
            plain_hparams(
                model=model,
                seq_len=seq_len,
                optimizer=self.optimizer_config,
                scheduler=self.scheduler_config,
                loss=self.loss_config,
            )
        )
        self.model_config = model
        self.seq_len = seq_len
        if init_device == "meta":
            with torch.device("meta"):
                self.model = model.build()
        else:
            self.model = model.build()
        self.flops_per_sample = model.train_flops_per_token(seq_len) * seq_len
        self.model.activation_checkpointing = activation_checkpointing
        self.compile_blocks, self.compile_backend = compile_blocks, compile_backend

    # --- parallelism ---------------------------------------------------------------------------
    def fsdp_units(self) -> list[nn.Module]:
        return list(self.model.blocks)

    def tensor_parallel_plan(self) -> dict | None:
        """Megatron-style plan: SwiGLU gate/up column-wise and down row-wise, the LM head
        column-wise. QK-norm normalises over *all* heads, so q/k/v are column-sharded matmuls
        whose outputs are gathered before the norm (as transformers' plan does) and the output
        projection splits its replicated input row-wise. Dense attention models only."""
        from torch.distributed.tensor import Replicate
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

        cfg = self.model_config
        if cfg.ffn != "mlp" or "gated_deltanet" in cfg.resolved_layer_types:
            raise TrainCoreConfigError(
                "tensor parallelism is planned for dense attention models; train MoE and "
                "hybrid models with tensor_parallel_size=1 (FSDP2 shards them)"
            )
        plan: dict = {"model.lm_head": ColwiseParallel(output_layouts=Replicate())}
        for i in range(cfg.n_layers):
            pre = f"model.blocks.{i}."
            for name in ("w_q", "w_k", "w_v"):
                plan[pre + "mixer." + name] = ColwiseParallel(output_layouts=Replicate())
            plan[pre + "mixer.w_o"] = RowwiseParallel(input_layouts=Replicate())
            plan[pre + "ffn.w_gate"] = ColwiseParallel()
            plan[pre + "ffn.w_up"] = ColwiseParallel()
            plan[pre + "ffn.w_down"] = RowwiseParallel()
        return plan

    def configure_model(self) -> None:
        if self.compile_blocks and not getattr(self, "_compiled", False):
            for block in self.model.blocks:
                block.compile(backend=self.compile_backend)  # in place: names unchanged
            self._compiled = True
        super().configure_model()
        self.materialize()

    def materialize(self, device: torch.device | str | None = None) -> None:
        """Allocate and initialise parameters still on the meta device (a no-op otherwise).

        Under FSDP2 this runs after sharding: ``to_empty`` allocates each rank's shards only.
        Every rank draws its shards from its own stream (seeded from the global seed and the
        rank), so no two shards of a weight repeat each other.
        """
        if not any(p.is_meta for p in self.model.parameters()):
            return
        if device is None:
            device = self.trainer.strategy.root_device if self._trainer else "cpu"
        import torch.distributed as dist

        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.model.to_empty(device=device)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed((torch.initial_seed() + 1_000_003 * rank) % 2**63)
            self.model.reset_parameters()

    def tokens_in_batch(self, batch) -> int:
        ids = batch["input_ids"] if isinstance(batch, dict) else batch
        return ids.shape[0] * (ids.shape[1] - 1)

    def samples_in_batch(self, batch) -> int:
        return (batch["input_ids"] if isinstance(batch, dict) else batch).shape[0]

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss, logs = self.loss_terms(batch)
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({k: v.detach() for k, v in logs.items()})
        return loss

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        """The training loss of ``batch`` (what ``training_step`` optimises), not logged."""
        return self.loss_terms(batch)[0]

    def loss_terms(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(training loss, its terms and the expert loads by log name) of ``batch``."""
        inputs, targets, doc_ids = split_batch(batch)
        return self.lm_loss_terms(inputs, targets, doc_ids=doc_ids)

    def lm_loss_terms(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        scale: torch.Tensor | float = 1.0,
        doc_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(training loss, terms) of ``inputs [B, T]`` against ``targets [B, T]`` (positions
        labelled ``IGNORE_INDEX`` left out); ``scale`` multiplies the token loss only (SFT's
        global-batch normalisation), not the MoE terms; ``doc_ids [B, T]`` masks attention
        across documents."""
        out = self.model(
            inputs,
            labels=targets,
            z_loss_weight=self.loss_config.z_loss_weight,
            doc_ids=doc_ids,
        )
        loss = out.loss * scale
        logs = {"train/ce_loss": out.ce_loss, "train/z_loss": out.z_loss}
        if out.router_stats:
            moe = self.model_config.moe
            lb = torch.stack([s.lb_loss for s in out.router_stats]).mean()
            router_z = torch.stack([s.z_loss for s in out.router_stats]).mean()
            loss = loss + moe.lb_loss_weight * lb + moe.z_loss_weight * router_z
            logs.update({"train/lb_loss": lb, "train/router_z_loss": router_z})
            logs.update(self._expert_load(out.router_stats))
        return loss, logs

    @staticmethod
    def _expert_load(stats) -> dict[str, torch.Tensor]:
        load = torch.stack([s.load for s in stats])  # [L, E] routed copies per expert
        relative = load / load.sum(-1, keepdim=True).clamp_min(1.0) * load.shape[-1]
        out = {f"train/expert_load/{e}": v for e, v in enumerate(relative.mean(0))}
        out["train/expert_load_max"] = relative.max()
        return out

    def validation_step(self, batch, batch_idx: int) -> None:
        inputs, targets, doc_ids = split_batch(batch)
        ce = self.model(inputs, labels=targets, doc_ids=doc_ids).ce_loss
        self.log("val/loss", ce, prog_bar=True, sync_dist=True)
        self.log("val/bits_per_byte", ce / math.log(2), sync_dist=True)
