"""Fixtures of the data-pipeline tests: a BPE tokenizer trained once on Tiny Shakespeare."""

import pytest


@pytest.fixture(scope="session")
def bpe_dir(shakespeare, tmp_path_factory):
    """A 512-token byte-level BPE trained on Tiny Shakespeare's speeches."""
    from olmo_lm.data.bpe import train_bpe

    out = tmp_path_factory.mktemp("bpe")
    train_bpe(shakespeare, 512, out, split_paragraphs=True)
    return out
