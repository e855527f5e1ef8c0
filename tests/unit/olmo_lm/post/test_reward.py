import itertools
import json
import random

import pytest
import torch

from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.post.dpo import DPODataConfig
from olmo_lm.post.preference import parse_pair, read_pairs
from olmo_lm.post.reward import (
    RewardJobConfig,
    bradley_terry_loss,
    evaluate_pairs,
    load_reward_model,
    run_reward_training,
)
from tests.unit.olmo_lm.post.conftest import shakespeare_lines


def test_bradley_terry_loss_by_hand():
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    # (-log sigmoid(2) - log sigmoid(0)) / 2 = (log(1 + e^-2) + log 2) / 2
    expected = (torch.log1p(torch.exp(torch.tensor(-2.0))) + torch.log(torch.tensor(2.0))) / 2
    assert loss.item() == pytest.approx(expected.item())


def test_pairs_accept_strings_conversations_and_rewardbench2_lists():
    p = parse_pair({"prompt": "hi", "chosen": "a", "rejected": ["b", "c", "d"], "subset": "x"})
    assert p.rejected == ["b", "c", "d"] and p.category == "x"
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]
    bad = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "no"}]
    p = parse_pair({"chosen": conv, "rejected": bad})
    assert p.prompt == conv[:1] and p.chosen == "yes" and p.rejected == ["no"]


def _write_pairs(path, lines, rng, category_of):
    with path.open("w") as f:
        for a, b in itertools.pairwise(lines):
            cat = category_of(b)
            junk = "".join(rng.sample(b, len(b))) if cat == "shuffled" else b[::-1]
            f.write(json.dumps({"prompt": a, "chosen": b, "rejected": junk, "category": cat}))
            f.write("\n")


def test_reward_model_beats_chance_and_rewardbench_reports_categories(
    start_dir, shakespeare, tmp_path
):
    """Separable pairs: the play's real line is chosen, its letters shuffled or reversed are
    rejected. Held-out pairs are scored per category."""
    rng = random.Random(0)
    lines = shakespeare_lines(shakespeare, 200)
    cat = lambda s: "shuffled" if len(s) % 2 else "reversed"  # noqa: E731
    _write_pairs(tmp_path / "train.jsonl", lines[:140], rng, cat)
    _write_pairs(tmp_path / "test.jsonl", lines[140:], rng, cat)
    run = tmp_path / "rm"
    job = RewardJobConfig(
        model=str(start_dir),
        data=DPODataConfig(path=str(tmp_path / "train.jsonl"), seq_len=96, batch_size=8),
        trainer=TrainerConfig(
            run_dir=str(run),
            accelerator="cpu",
            devices=1,
            max_steps=40,
            log_every_n_steps=5,
            enable_progress_bar=False,
        ),
        optimizer={"lr": 2e-3},
        scheduler={"warmup_steps": 2},
    )
    run_reward_training(job)
    model, head = load_reward_model(run)
    from olmo_lm.data.tokenizer import load_tokenizer

    tok = load_tokenizer(run / "model")
    report = evaluate_pairs(model, head, tok, read_pairs(tmp_path / "test.jsonl"), seq_len=96)
    assert set(report["categories"]) == {"shuffled", "reversed"}
    assert sum(c["pairs"] for c in report["categories"].values()) == 59
    assert report["overall"] > 0.75, report
    # from the command line, as RewardBench prints it
    from olmo_lm.cli import main

    main(
        [
            "eval",
            "rewardbench",
            "--model",
            str(run),
            "--pairs",
            str(tmp_path / "test.jsonl"),
            "--seq_len",
            "96",
            "--out",
            str(tmp_path / "rb.json"),
        ]
    )
    saved = json.loads((tmp_path / "rb.json").read_text())
    assert saved["overall"] == pytest.approx(report["overall"])
