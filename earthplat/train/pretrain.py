"""Latent MIM Lite pretraining (OlmoEarth v1) as a ``TrainCoreModule``.

Per batch: tokenise once; compute targets with the *frozen initial* patch projections (no
encodings, no gradient); draw two masked views; for each, encode the visible tokens, predict
the decoded ones, and score them with patch discrimination; tie the two views' pooled
embeddings with InfoNCE (weight 0.1). Masks come from a generator seeded by
(seed, global step, rank), so a resumed run masks exactly as an uninterrupted one.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

import torch

from earthplat.batch import Batch, to_model_inputs
from earthplat.nn.encoder import EncoderConfig
from earthplat.nn.predictor import PredictorConfig
from earthplat.train.losses import LOSSES
from earthplat.train.masking import MaskingConfig
from earthplat.traincore.module import TrainCoreModule, coerce_config, plain_hparams
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig


class LatentMIMModule(TrainCoreModule):
    def __init__(
        self,
        encoder: EncoderConfig | dict | None = None,
        predictor: PredictorConfig | dict | None = None,
        masking: MaskingConfig | dict | None = None,
        tau: float = 0.1,
        infonce_weight: float = 0.1,
        loss: str = "patch_discrimination",
        gsd_m: float = 10.0,
        seed: int = 0,
        optimizer: OptimizerConfig | dict | None = None,
        scheduler: SchedulerConfig | dict | None = None,
    ) -> None:
        """
        Args:
            encoder: the encoder to pretrain (a preset name or ``EncoderConfig`` fields;
                default: nano).
            predictor: the cross-attention predictor that decodes masked tokens.
            masking: how tokens are split into encoded and decoded sets per view.
            tau: temperature of the patch-discrimination loss.
            infonce_weight: weight of the InfoNCE loss between the two views' pooled embeddings.
            loss: the registered latent loss (``patch_discrimination`` ...).
            gsd_m: ground sample distance of the inputs in metres (for the 2-D encodings).
            seed: seeds the masking.
            optimizer: AdamW settings.
            scheduler: learning-rate schedule (warmup, then cosine, linear or WSD decay).
        """
        super().__init__(optimizer, scheduler)
        self.encoder_config = coerce_config(EncoderConfig, encoder) or EncoderConfig.nano()
        if isinstance(self.encoder_config.modalities, list):
            self.encoder_config.modalities = tuple(self.encoder_config.modalities)
        self.predictor_config = coerce_config(PredictorConfig, predictor) or PredictorConfig()
        self.masking = coerce_config(MaskingConfig, masking) or MaskingConfig()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; registered: {', '.join(LOSSES)}")
        self.tau, self.infonce_weight, self.loss_name = tau, infonce_weight, loss
        self.gsd_m, self.seed = gsd_m, seed
        self.encoder = self.encoder_config.build()
        self.predictor = self.predictor_config.build(self.encoder)
        # targets: the frozen *initial* random projections (copied before any update)
        self.target_embed = copy.deepcopy(self.encoder.patch_embed).requires_grad_(False)
        self.save_hyperparameters(
            plain_hparams(
                encoder=self.encoder_config,
                predictor=self.predictor_config,
                masking=self.masking,
                tau=tau,
                infonce_weight=infonce_weight,
                loss=loss,
                gsd_m=gsd_m,
                seed=seed,
                optimizer=self.optimizer_config,
                scheduler=self.scheduler_config,
            )
        )

    # --- throughput bookkeeping ------------------------------------------------------------
    def samples_in_batch(self, batch: Batch) -> int:
        return len(batch)

    def tokens_in_batch(self, batch: Batch) -> int:
        inputs, p = to_model_inputs(batch), int(batch.patch_size)
        channels = self.encoder.channel_map(inputs)
        total = 0
        for (name, _), _chan in channels.items():
            b, t, _, h, w = inputs[name].data.shape
            total += b * t * (h // p) * (w // p)
        return total

    # --- the objective -----------------------------------------------------------------------
    def mask_generator(self) -> torch.Generator:
        step = self.global_step if self._trainer is not None else 0
        rank = self.global_rank if self._trainer is not None else 0
        return torch.Generator().manual_seed(hash((self.seed, step, rank)) & 0x7FFF_FFFF_FFFF)

    def compute_loss(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        inputs, p = to_model_inputs(batch), int(batch.patch_size)
        tokens = self.encoder.tokenize(inputs, p, self.gsd_m)
        with torch.no_grad():
            targets = self.encoder.tokenize(
                inputs, p, self.gsd_m, embed=self.target_embed, with_encodings=False
            ).x  # [B, N, D]
        b, n, d = targets.shape
        gen = generator or self.mask_generator()
        losses, pooled = [], []
        for _ in range(2):
            encode, decode = self.masking(tokens, gen)
            out = self.encoder.encode_tokens(tokens, encode)
            pred, flat = self.predictor(out, decode, self.gsd_m)  # [Q, D], [Q]
            target = targets.reshape(b * n, d)[flat]
            group = tokens.layout.modality[flat % n]
            losses.append(LOSSES[self.loss_name](pred, target, flat // n, group, tau=self.tau))
            pooled.append(out.pooled)
        mim = torch.stack(losses).mean()
        contrastive = LOSSES["infonce"](pooled[0], pooled[1], tau=self.tau)
        return {"loss": mim + self.infonce_weight * contrastive, "mim": mim, "infonce": contrastive}

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        parts = self.compute_loss(batch)
        self.log_dict(
            {f"train/{k}": v for k, v in parts.items()},
            prog_bar=True,
            batch_size=self.samples_in_batch(batch),
        )
        return parts["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        gen = torch.Generator().manual_seed(self.seed * 7919 + batch_idx)  # same masks each time
        parts = self.compute_loss(batch, gen)
        self.log_dict(
            {f"val/{k}": v for k, v in parts.items()},
            sync_dist=True,
            batch_size=self.samples_in_batch(batch),
        )

    def fsdp_units(self) -> list[torch.nn.Module]:
        return [*self.encoder.blocks, *self.predictor.blocks]

    def fsdp_forward_methods(self) -> dict[torch.nn.Module, list[str]]:
        return {self.encoder: ["tokenize", "encode_tokens"]}

    def config_dict(self) -> dict[str, Any]:
        return {"encoder": asdict(self.encoder_config)}
