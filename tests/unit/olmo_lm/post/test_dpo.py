import csv
import itertools
import json
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.post.dpo import (
    DPOConfig,
    DPODataConfig,
    DPOJobConfig,
    DPOModule,
    PairDataset,
    dpo_loss,
    run_dpo,
)
from olmo_lm.post.logprobs import sequence_logprobs
from olmo_lm.post.preference import read_pairs
from tests.unit.olmo_lm.post.conftest import shakespeare_lines, tiny_config


class FixedProbs(nn.Module):
    """A two-token 'model' that gives token 1 probability ``p`` at every position."""

    def __init__(self, p: float):
        super().__init__()
        self.logits = torch.log(torch.tensor([1 - p, p]))

    def forward(self, ids, attention_mask=None):
        return self.logits.expand(*ids.shape, 2)


CHOSEN = torch.tensor([[0, 1, 1, 1]]), torch.tensor([[False, True, True, True]])
REJECTED = torch.tensor([[0, 1, 0, 0]]), torch.tensor([[False, True, True, False]])


def _logps(model, average):
    return [sequence_logprobs(model, ids, m, average=average) for ids, m in (CHOSEN, REJECTED)]


def test_dpo_loss_by_hand():
    """Policy p(1) = 0.8, reference 0.5. Chosen scores 1 1 1, rejected 1 0.

    Summed, beta = 1: margin = (3 ln .8 - 3 ln .5) - (ln .8 + ln .2 - 2 ln .5) = ln 6.4, so the
    loss is ln(1 + 1/6.4) = ln(37/32). Length-normalised, beta = 5: margin =
    5 [(ln .8 - ln .5) - ((ln .8 + ln .2)/2 - ln .5)] = 5 ln 2, loss ln(1 + 2^-5) = ln(33/32).
    """
    pi, ref = FixedProbs(0.8), FixedProbs(0.5)
    loss, chosen, rejected = dpo_loss(*_logps(pi, False), *_logps(ref, False), beta=1.0)
    assert loss.item() == pytest.approx(math.log(37 / 32), abs=1e-6)
    assert (chosen - rejected).item() == pytest.approx(math.log(6.4), abs=1e-6)
    loss, chosen, _ = dpo_loss(*_logps(pi, True), *_logps(ref, True), beta=5.0)
    assert loss.item() == pytest.approx(math.log(33 / 32), abs=1e-6)
    assert chosen.item() == pytest.approx(5 * math.log(0.8 / 0.5), abs=1e-6)
    # equal policy and reference: no preference yet, the loss is ln 2
    loss, _, _ = dpo_loss(*_logps(ref, True), *_logps(ref, True), beta=5.0)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)


@pytest.fixture
def pairs_jsonl(tmp_path, shakespeare):
    """The true next line is chosen; the same words shuffled are rejected."""
    rng = random.Random(0)
    lines = shakespeare_lines(shakespeare, 65)
    path = tmp_path / "pairs.jsonl"
    with path.open("w") as f:
        for a, b in itertools.pairwise(lines):
            words = b.split()
            rng.shuffle(words)
            record = {"prompt": a, "chosen": b, "rejected": " ".join(words[::-1])}
            f.write(json.dumps(record) + "\n")
    return path


@pytest.mark.parametrize("loss_type", ["dpo", "dpo_norm"])
def test_precomputed_and_live_references_give_the_same_loss(chat_tok, pairs_jsonl, loss_type):
    torch.manual_seed(0)
    dpo = DPOConfig(loss_type=loss_type, beta=0.1 if loss_type == "dpo" else 5.0)
    module = DPOModule(tiny_config(), 64, dpo=dpo)
    dataset = PairDataset(read_pairs(pairs_jsonl)[:8], chat_tok, 64)
    dataset.score_reference(module.model, dpo.average)
    with torch.no_grad():  # move the policy away from the reference
        for p in module.model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    batch = {k: torch.stack([dataset[i][k] for i in range(8)]) for k in dataset[0]}
    precomputed = module.loss_terms(batch)[0]
    live = DPOModule(tiny_config(), 64, dpo=dpo)
    torch.manual_seed(0)
    live.model = DPOModule(tiny_config(), 64, dpo=dpo).model  # the same start as `module`
    live.freeze_reference()
    live.model.load_state_dict(module.model.state_dict())
    no_ref = {k: v for k, v in batch.items() if not k.startswith("ref_")}
    torch.testing.assert_close(live.loss_terms(no_ref)[0], precomputed)
    assert precomputed.item() != pytest.approx(math.log(2), abs=1e-5)


def test_dpo_run_prefers_the_chosen_replies(start_dir, pairs_jsonl, tmp_path):
    run = tmp_path / "dpo_run"
    job = DPOJobConfig(
        model=str(start_dir),
        data=DPODataConfig(path=str(pairs_jsonl), seq_len=64, batch_size=8),
        dpo=DPOConfig(beta=5.0, loss_type="dpo_norm"),
        trainer=TrainerConfig(
            run_dir=str(run),
            accelerator="cpu",
            devices=1,
            max_steps=16,
            log_every_n_steps=1,
            enable_progress_bar=False,
        ),
        optimizer={"lr": 2e-3},
        scheduler={"warmup_steps": 2},
    )
    run_dpo(job)
    rows = list(csv.DictReader(next(run.rglob("metrics.csv")).open()))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    margins = [float(r["train/reward_margin"]) for r in rows if r.get("train/reward_margin")]
    assert losses[0] == pytest.approx(math.log(2), abs=1e-3)  # starts at the reference
    assert np.mean(losses[-4:]) < 0.5 and np.mean(margins[-4:]) > 0.5
    assert (run / "model" / "olmo_lm.json").exists()
