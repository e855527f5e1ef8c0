import csv

import numpy as np
import torch

from earthplat.traincore.trainer import TrainerConfig
from olmo_lm.model.transformer import IGNORE_INDEX
from olmo_lm.post import sft
from olmo_lm.post.chat import EncodedChat, encode_chat, read_conversations
from olmo_lm.post.sft import (
    SFTDataConfig,
    SFTDataset,
    SFTJobConfig,
    SFTLoader,
    SFTModule,
    labels_of,
    pack_conversations,
    run_sft,
)
from tests.unit.olmo_lm.post.conftest import tiny_config


def _chat(n: int, learned: slice) -> EncodedChat:
    mask = np.zeros(n, dtype=bool)
    mask[learned] = True
    return EncodedChat(np.arange(1, n + 1), mask)


def test_packing_keeps_conversations_whole_and_pads_the_tail():
    chats = [
        _chat(4, slice(2, 4)),
        _chat(3, slice(1, 3)),
        _chat(5, slice(3, 5)),
        _chat(12, slice(0, 12)),
    ]
    ids, mask = pack_conversations(chats, seq_len=8, pad_id=0)  # rows of 9
    assert ids.shape == (3, 9)
    # row 0: the first two conversations (4 + 3 tokens), then padding
    assert ids[0].tolist() == [1, 2, 3, 4, 1, 2, 3, 0, 0]
    assert mask[0].tolist() == [0, 0, 1, 1, 0, 1, 1, 0, 0]
    # the third did not fit in the 2 left: it starts row 1; the long one is cut to a row
    assert ids[1, :5].tolist() == [1, 2, 3, 4, 5] and not mask[1, 5:].any()
    assert ids[2].tolist() == list(range(1, 10)) and mask[2].all()
    unpacked, _ = pack_conversations(chats, seq_len=8, pad_id=0, pack=False)
    assert unpacked.shape == (4, 9)


def test_sft_learns_only_assistant_tokens(chat_tok, chats_jsonl):
    torch.manual_seed(0)
    conversations = read_conversations(chats_jsonl)[:6]
    ds = SFTDataset(conversations, chat_tok, SFTDataConfig(path=str(chats_jsonl), seq_len=96))
    batch = {k: torch.stack([ds[i][k] for i in range(len(ds))]) for k in ("ids", "mask")}
    inputs, labels = labels_of(batch["ids"], batch["mask"])
    learned = labels != IGNORE_INDEX
    # every learned label is an assistant token; no user, system or marker token is
    targets = batch["ids"][:, 1:]
    user_ids = set(encode_chat(chat_tok, conversations[0][:2]).ids.tolist())
    assistant_ids = set()
    for m in conversations:
        chat = encode_chat(chat_tok, m)
        assistant_ids |= set(chat.ids[chat.mask].tolist())
    assert set(targets[learned].tolist()) <= assistant_ids
    markers = {chat_tok.special_ids[t] for t in ("<|user|>", "<|system|>", "<|assistant|>")}
    assert not markers & set(targets[learned].tolist())
    assert markers <= user_ids | {chat_tok.special_ids["<|assistant|>"]}
    # the loss is the cross-entropy of exactly those positions
    module = SFTModule(tiny_config(), 96, loss={"z_loss_weight": 0.0})
    loss, _ = module.loss_terms(batch)
    logits = module.model(inputs)
    expected = torch.nn.functional.cross_entropy(logits[learned], targets[learned])
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    assert learned.sum() < learned.numel() / 2  # most tokens are prompt and padding


def test_loss_is_normalised_over_the_global_batch(monkeypatch):
    """Two data-parallel ranks with different assistant-token counts: the average of their
    gradients is the gradient of the whole batch's sum over its count (one process)."""
    torch.manual_seed(0)
    module = SFTModule(tiny_config(64), 16, loss={"z_loss_weight": 0.0})
    ids = torch.randint(64, (4, 17))
    mask = torch.zeros(4, 17, dtype=torch.bool)
    mask[0, 3:15] = True  # rank 0: 12 + 2 learned tokens
    mask[1, 10:12] = True
    mask[2:, 15:] = True  # rank 1: 2 + 2
    full = {"ids": ids, "mask": mask}

    def grads(batch):
        module.zero_grad()
        module.loss_terms(batch)[0].backward()
        return [p.grad.clone() for p in module.parameters()]

    expected = grads(full)
    total = (mask[:, 1:]).sum()
    monkeypatch.setattr(sft, "global_count", lambda local: (total.float(), 2))
    rank_grads = [grads({"ids": ids[s], "mask": mask[s]}) for s in (slice(0, 2), slice(2, 4))]
    averaged = [(a + b) / 2 for a, b in zip(*rank_grads, strict=True)]
    for got, want in zip(averaged, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # a per-rank mean would weight rank 1's four tokens as much as rank 0's fourteen
    monkeypatch.setattr(sft, "global_count", lambda local: (local.float(), 1))
    per_rank = [grads({"ids": ids[s], "mask": mask[s]}) for s in (slice(0, 2), slice(2, 4))]
    naive = [(a + b) / 2 for a, b in zip(*per_rank, strict=True)]
    assert not torch.allclose(naive[0], expected[0], rtol=1e-3, atol=1e-6)


class _Rows(torch.utils.data.Dataset):
    def __init__(self, ids, mask):
        self.ids, self.mask = ids, mask

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"ids": self.ids[i], "mask": self.mask[i]}


def _uneven_rows():
    torch.manual_seed(0)
    ids = torch.randint(64, (4, 17))
    mask = torch.zeros(4, 17, dtype=torch.bool)
    mask[0, 3:15] = True  # 12 learned tokens
    mask[1, 10:12] = True  # 2
    mask[2, 15:] = True  # 2
    mask[3, 8:] = True  # 9
    return ids, mask


def test_loader_gives_each_micro_batch_its_accumulation_groups_count():
    ids, mask = _uneven_rows()
    loader = SFTLoader(_Rows(ids, mask), batch_size=1, shuffle=False, accumulate=2)
    counts = [int(b["group_tokens"]) for b in loader]
    assert counts == [14, 14, 11, 11]
    # resumed after one micro-batch: the loader first finishes that group
    loader = SFTLoader(_Rows(ids, mask), batch_size=1, shuffle=False, accumulate=2)
    loader.load_state_dict({"epoch": 0, "consumed_batches": 1, "batch_size": 1, "seed": 0})
    assert [int(b["group_tokens"]) for b in loader] == [2, 11, 11]
    # an epoch whose length is not a multiple of the group ends with a shorter group
    loader = SFTLoader(_Rows(ids[:3], mask[:3]), batch_size=1, shuffle=False, accumulate=2)
    assert [int(b["group_tokens"]) for b in loader] == [14, 14, 2]


def test_accumulated_micro_batches_match_one_step_over_their_union():
    """Two micro-batches of very different counts, accumulated as Lightning does (each loss
    divided by the factor): the gradient is that of the union's sum over its count."""
    ids, mask = _uneven_rows()
    module = SFTModule(tiny_config(64), 16, loss={"z_loss_weight": 0.0})

    class _Trainer:
        accumulate_grad_batches = 2

    def grads(batches, divide):
        module.zero_grad()
        for b in batches:
            (module.loss_terms(b)[0] / divide).backward()
        return [p.grad.clone() for p in module.parameters()]

    expected = grads([{"ids": ids, "mask": mask}], 1)
    module._trainer = _Trainer()
    loader = SFTLoader(_Rows(ids, mask), batch_size=2, shuffle=False, accumulate=2)
    got = grads(list(loader), 2)
    for g, want in zip(got, expected, strict=True):
        torch.testing.assert_close(g, want, rtol=1e-4, atol=1e-6)
    # normalising each micro-batch by its own count instead weights them unequally
    plain = [{"ids": ids[s], "mask": mask[s]} for s in (slice(0, 2), slice(2, 4))]
    module._trainer = None
    per_micro = grads(plain, 2)
    assert not torch.allclose(per_micro[0], expected[0], rtol=1e-3, atol=1e-6)


def test_sft_run_through_the_core_lowers_the_assistant_loss(start_dir, chats_jsonl, tmp_path):
    run = tmp_path / "sft_run"
    job = SFTJobConfig(
        model=str(start_dir),
        data=SFTDataConfig(path=str(chats_jsonl), seq_len=128, batch_size=4),
        trainer=TrainerConfig(
            run_dir=str(run),
            accelerator="cpu",
            devices=1,
            max_steps=30,
            log_every_n_steps=1,
            enable_progress_bar=False,
        ),
        optimizer={"lr": 3e-3},
        scheduler={"warmup_steps": 2},
    )
    run_sft(job)
    rows = list(csv.DictReader(next(run.rglob("metrics.csv")).open()))
    losses = [float(r["train/ce_loss"]) for r in rows if r.get("train/ce_loss")]
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5
    assert (run / "model" / "olmo_lm.json").exists() and (run / "model" / "tokenizer.json").exists()


def test_sft_command_line(start_dir, chats_jsonl, tmp_path):
    from olmo_lm.cli import main

    run = tmp_path / "cli_sft"
    main(
        [
            "sft",
            "--model",
            str(start_dir),
            "--data",
            str(chats_jsonl),
            "--seq_len",
            "96",
            "--batch_size",
            "4",
            "--trainer.run_dir",
            str(run),
            "--trainer.max_steps",
            "2",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.accumulate_grad_batches",
            "2",
            "--trainer.log_every_n_steps",
            "1",
        ]
    )
    assert (run / "model" / "olmo_lm.json").exists() and (run / "config.yaml").exists()
    rows = list(csv.DictReader(next(run.rglob("metrics.csv")).open()))
    assert max(int(r["step"]) for r in rows) >= 1  # two optimizer steps of two micro-batches
