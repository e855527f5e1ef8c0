"""Bradley-Terry reward models and their RewardBench evaluation.

A reward model is the decoder with its LM head set aside and a scalar head on the final
hidden state of a response's last token (its EOS): ``r(prompt, response)``. Trained on
preference pairs, the Bradley-Terry likelihood ``P(chosen > rejected) = sigmoid(r_c - r_r)``
gives the loss ``-log sigmoid(r_c - r_r)`` (Tulu 3's and RewardBench's reward models).

``evaluate_pairs`` scores a pairs file as RewardBench does: a pair is right when the chosen
reply outscores the rejected one (RewardBench 2: *every* rejected one, best-of-4), accuracy is
reported per ``category`` and as the mean over categories (RewardBench's section scores
average subsets, not pairs, so a large subset does not drown a small one).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.post.common import MODEL_SUBDIR, pad_id_of
from olmo_lm.post.dpo import DPODataConfig, PairDataModule, PairDataset
from olmo_lm.post.preference import encode_response, fit_width, read_pairs
from olmo_lm.train.pretrain import CausalLMModule

HEAD_FILE = "reward_head.pt"
"""The scalar head beside the backbone's model directory."""


def last_token_scores(model, head: nn.Linear, ids: torch.Tensor, mask: torch.Tensor):
    """``[B]`` rewards: the head on the final hidden state of each row's last masked token
    (right-padded ``ids [B, T]``; under causal attention it has read the whole response)."""
    h = model(ids, hidden_states=True)  # [B, T, C]
    positions = torch.arange(ids.shape[1], device=ids.device)
    last = torch.where(mask.bool(), positions, -1).amax(-1)  # [B]
    if bool((last < 0).any()):
        raise TrainCoreConfigError("a sequence has no response token to score; raise seq_len")
    picked = h[torch.arange(ids.shape[0], device=ids.device), last]  # [B, C]
    return head(picked).squeeze(-1).float()


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """``mean(-log sigmoid(r_c - r_r))``."""
    return -F.logsigmoid(chosen - rejected).mean()


class RewardModule(CausalLMModule):
    """Bradley-Terry training of a scalar head (and the backbone) on ``PairDataset`` batches."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = nn.Linear(self.model_config.d_model, 1, bias=True)
        nn.init.normal_(self.head.weight, std=1.0 / (self.model_config.d_model + 1) ** 0.5)
        nn.init.zeros_(self.head.bias)

    def samples_in_batch(self, batch: dict) -> int:
        return batch["chosen_ids"].shape[0]

    def tokens_in_batch(self, batch: dict) -> int:
        return int(batch["chosen_ids"].numel() + batch["rejected_ids"].numel())

    def scores(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return last_token_scores(self.model, self.head, ids, mask)

    def loss_terms(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        b = batch["chosen_ids"].shape[0]
        ids = torch.cat([batch["chosen_ids"], batch["rejected_ids"]])
        r = self.scores(ids, torch.cat([batch["chosen_mask"], batch["rejected_mask"]]))
        chosen, rejected = r[:b], r[b:]
        loss = bradley_terry_loss(chosen, rejected)
        logs = {
            "train/accuracy": (chosen > rejected).float().mean(),
            "train/margin": (chosen - rejected).detach().mean(),
        }
        return loss, logs

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val/loss", self.loss_terms(batch)[0], sync_dist=True)


def save_reward_model(module: RewardModule, run_dir: str | Path, tokenizer) -> Path:
    """``RUN/model``: the backbone's model directory plus ``reward_head.pt``."""
    from olmo_lm.post.common import save_stage_model

    out = save_stage_model(module.model, run_dir, tokenizer)
    torch.save({k: v.detach().cpu() for k, v in module.head.state_dict().items()}, out / HEAD_FILE)
    return out


def load_reward_model(path: str | Path) -> tuple[nn.Module, nn.Linear]:
    """(backbone, head) of a reward run directory or its ``model/`` folder."""
    from olmo_lm.model.store import load_model

    path = Path(path)
    folder = path / MODEL_SUBDIR if (path / MODEL_SUBDIR / HEAD_FILE).exists() else path
    if not (folder / HEAD_FILE).exists():
        raise TrainCoreConfigError(
            f"{path} holds no reward head ({HEAD_FILE}); train one with `olmo-lm reward train`"
        )
    model, _ = load_model(folder)
    state = torch.load(folder / HEAD_FILE, map_location="cpu", weights_only=True)
    head = nn.Linear(model.config.d_model, 1, bias=True)
    head.load_state_dict(state)
    return model, head.eval()


@torch.no_grad()
def evaluate_pairs(model, head, tokenizer, pairs, seq_len: int = 512) -> dict[str, dict]:
    """RewardBench accuracy: ``{"categories": {name: {"accuracy", "pairs"}}, "mean": m,
    "overall": a}`` where a pair is right when its chosen reply outscores every rejected one."""
    pad = pad_id_of(tokenizer)
    right: dict[str, list[bool]] = defaultdict(list)
    for p in pairs:
        rows = [
            fit_width(*encode_response(tokenizer, p.prompt, reply), seq_len, pad)
            for reply in (p.chosen, *p.rejected)
        ]
        ids = torch.stack([torch.from_numpy(r[0]) for r in rows])
        mask = torch.stack([torch.from_numpy(r[1]) for r in rows])
        scores = last_token_scores(model, head, ids, mask)
        right[p.category].append(bool((scores[0] > scores[1:]).all()))
    categories = {
        name: {"accuracy": sum(v) / len(v), "pairs": len(v)} for name, v in sorted(right.items())
    }
    every = [x for v in right.values() for x in v]
    mean = sum(c["accuracy"] for c in categories.values()) / max(1, len(categories))
    return {"categories": categories, "mean": mean, "overall": sum(every) / max(1, len(every))}


@dataclass
class RewardJobConfig:
    """One reward-model run (what the run's ``config.yaml`` records)."""

    model: str = "runs/sft"
    """The backbone to start from: a run directory or a model directory."""
    data: DPODataConfig = field(default_factory=DPODataConfig)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(run_dir="runs/reward", max_steps=100)
    )
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig(lr=5e-4))
    scheduler: SchedulerConfig = field(default_factory=lambda: SchedulerConfig(warmup_steps=10))


def run_reward_training(job: RewardJobConfig) -> dict[str, float]:
    """Train a Bradley-Terry reward model; writes ``RUN/model`` with ``reward_head.pt``."""
    from earthplat.traincore.trainer import fit
    from olmo_lm.post.common import model_tokenizer, start_module

    tokenizer = model_tokenizer(job.model, job.data.tokenizer)
    if job.data.tokenizer is None and getattr(tokenizer, "path", None) is not None:
        job.data.tokenizer = str(tokenizer.path.parent)
    module = start_module(RewardModule, job.model, job.data.seq_len, job.optimizer, job.scheduler)
    dataset = PairDataset(read_pairs(job.data.path), tokenizer, job.data.seq_len)
    trainer = fit(
        job.trainer,
        module,
        PairDataModule(dataset, job.data.batch_size, job.data.seed),
        config_to_save=job,
    )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if trainer.is_global_zero:
        print(
            f"reward model written to {save_reward_model(module, job.trainer.run_dir, tokenizer)}"
        )
    return metrics
