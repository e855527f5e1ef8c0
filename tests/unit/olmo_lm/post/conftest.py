"""Fixtures of the post-training tests: a chat BPE trained once on Tiny Shakespeare, a tiny
starting model directory, and conversations built from the play's own lines."""

import itertools
import json

import pytest
import torch

from olmo_lm.model.config import TransformerConfig


@pytest.fixture(scope="session")
def chat_tok_dir(shakespeare, tmp_path_factory):
    """A 512-token byte-level BPE (with the chat tokens) trained on Tiny Shakespeare."""
    from olmo_lm.data.bpe import train_bpe

    out = tmp_path_factory.mktemp("chat_bpe")
    train_bpe(shakespeare, 512, out, split_paragraphs=True)
    return out


@pytest.fixture(scope="session")
def chat_tok(chat_tok_dir):
    from olmo_lm.data.tokenizer import load_tokenizer

    return load_tokenizer(chat_tok_dir)


def tiny_config(vocab_size: int = 512) -> TransformerConfig:
    return TransformerConfig(
        vocab_size=vocab_size, d_model=64, n_layers=2, n_heads=2, mlp_hidden=128, max_seq_len=128
    )


@pytest.fixture
def start_dir(tmp_path, chat_tok_dir):
    """A randomly initialised tiny model directory carrying the chat tokenizer."""
    from olmo_lm.model.store import save_model_dir

    torch.manual_seed(0)
    cfg = tiny_config()
    model = cfg.build()
    return save_model_dir(cfg, model.state_dict(), tmp_path / "start", tokenizer_dir=chat_tok_dir)


def shakespeare_lines(shakespeare, n: int) -> list[str]:
    lines = [ln.strip() for ln in shakespeare.read_text().splitlines() if len(ln.strip()) > 20]
    return lines[:n]


@pytest.fixture
def chats_jsonl(tmp_path, shakespeare):
    """Conversations from the play: the user quotes a line, the assistant gives the next."""
    lines = shakespeare_lines(shakespeare, 81)
    path = tmp_path / "sft.jsonl"
    with path.open("w") as f:
        for a, b in itertools.pairwise(lines):
            messages = [
                {"role": "system", "content": "You complete verse."},
                {"role": "user", "content": a},
                {"role": "assistant", "content": b},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path
