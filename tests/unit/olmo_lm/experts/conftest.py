"""A small real-text setting for the expert tests: byte tokens of three domains (Tiny
Shakespeare, the standard library, arithmetic), a public dense model pretrained on all three
briefly, and helpers to train and score."""

import pytest
import torch

from olmo_lm.data.corpora import code_documents, math_documents
from olmo_lm.data.tokenizer import ByteTokenizer
from olmo_lm.model.config import TransformerConfig

SEQ = 64


def _windows(text: str, n: int) -> torch.Tensor:
    ids = torch.tensor(ByteTokenizer().encode(text), dtype=torch.long)
    usable = (len(ids) // (SEQ + 1)) * (SEQ + 1)
    return ids[:usable].view(-1, SEQ + 1)[:n]


@pytest.fixture(scope="session")
def domains(shakespeare):
    """Domain -> (train windows [N, SEQ+1], validation windows)."""
    texts = {
        "literature": shakespeare.read_text()[:200_000],
        "code": "\n".join(d.text for d in code_documents(limit=40)),
        "math": "\n".join(d.text for d in math_documents(n=300)),
    }
    out = {}
    for name, text in texts.items():
        w = _windows(text, 600)
        out[name] = (w[:-64], w[-64:])
    return out


def train_steps(model, windows: torch.Tensor, steps: int, lr: float = 3e-3, seed: int = 0):
    """A plain causal-LM loop over the trainable parameters (seeded batches of 16)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        batch = windows[torch.randint(len(windows), (16,), generator=g)]
        opt.zero_grad()
        model(batch[:, :-1], labels=batch[:, 1:]).loss.backward()
        opt.step()
    return model


@torch.no_grad()
def loss_on(model, windows: torch.Tensor) -> float:
    return float(model(windows[:, :-1], labels=windows[:, 1:]).ce_loss)


@pytest.fixture(scope="session")
def public_model(domains):
    """The public dense model: briefly pretrained on the three domains."""
    torch.manual_seed(0)
    cfg = TransformerConfig(
        vocab_size=260, d_model=64, n_layers=2, n_heads=2, mlp_hidden=128, max_seq_len=SEQ
    )
    model = cfg.build()
    mix = torch.cat([d[0] for d in domains.values()])
    return train_steps(model, mix, 120).eval()
