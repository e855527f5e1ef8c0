import pytest
import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.text import TextDataConfig, TextDataModule, TokenChunkDataset
from olmo_lm.data.tokenizer import ByteTokenizer


def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    text = "Thou art — ünïcode"
    ids = tok.encode(text, bos=True, eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == text
    assert tok.encode_array(text).tolist() == ids[1:-1]


def test_chunks_shift_by_one():
    ds = TokenChunkDataset(torch.arange(21).numpy(), seq_len=5)
    assert len(ds) == 4
    assert ds[1].tolist() == [5, 6, 7, 8, 9, 10]


def test_real_corpus_splits_train_and_validation(shakespeare):
    dm = TextDataModule(TextDataConfig(path=str(shakespeare), seq_len=64, batch_size=8))
    dm.setup()
    n = shakespeare.stat().st_size
    assert len(dm.train_set) == pytest.approx(0.95 * n / 64, rel=0.01)
    assert len(dm.val_set) == pytest.approx(0.05 * n / 64, rel=0.02)
    assert dm.tokenizer.decode(dm.train_set[0].tolist()).startswith("First Citizen")


def test_missing_corpus_names_the_fix(tmp_path):
    dm = TextDataModule(TextDataConfig(path=str(tmp_path / "nope.txt")))
    with pytest.raises(TrainCoreConfigError, match=r"--data\.path"):
        dm.setup()


def test_too_short_corpus_is_refused(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("to be or not to be")
    with pytest.raises(TrainCoreConfigError, match="fewer than one batch"):
        TextDataModule(TextDataConfig(path=str(path), seq_len=8, batch_size=4)).setup()
