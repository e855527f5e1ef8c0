import json

import pytest

tokenizers = pytest.importorskip(
    "tokenizers", reason="missing component: tokenizers (installed with the dev extra)"
)

from olmo_lm.data.text import TextDataConfig, TextDataModule  # noqa: E402
from olmo_lm.data.tokenizer import ByteTokenizer, JsonTokenizer, load_tokenizer  # noqa: E402

CORPUS = ["To be, or not to be, that is the question:"] * 20 + ["Whether 'tis nobler"] * 20


def write_tokenizer(folder, vocab_size: int = 300):
    """A byte-level BPE tokenizer.json trained on a few lines (the OLMo tokenizers' kind)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": "<|endoftext|>", "pad_token": "<|pad|>"})
    )
    return folder


def test_tokenizer_json_round_trips_and_finds_special_ids(tmp_path):
    tok = JsonTokenizer(write_tokenizer(tmp_path))
    text = "To be, or not — ünïcode"
    ids = tok.encode(text, eos=True)
    assert ids[-1] == tok.eos_id == 0 and tok.pad_id == 1
    assert tok.decode(ids) == text
    assert len(tok.encode("To be, or not to be")) < len("To be, or not to be")  # merges apply
    assert tok.encode_array(text).tolist() == ids[:-1]


def test_load_tokenizer_picks_the_kind(tmp_path):
    assert isinstance(load_tokenizer(None), ByteTokenizer)
    assert isinstance(load_tokenizer(write_tokenizer(tmp_path) / "tokenizer.json"), JsonTokenizer)
    from earthplat.traincore.errors import TrainCoreConfigError

    with pytest.raises(TrainCoreConfigError, match=r"tokenizer\.json"):
        load_tokenizer(tmp_path / "nowhere")


def test_text_data_with_a_tokenizer_json(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 5))
    folder = write_tokenizer(tmp_path / "tok")
    dm = TextDataModule(
        TextDataConfig(path=str(corpus), tokenizer=str(folder), seq_len=16, batch_size=2)
    )
    dm.setup()
    assert dm.tokenizer.decode(dm.train_set[0].tolist()).startswith("To be")
