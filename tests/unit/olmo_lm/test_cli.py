"""``olmo-lm convert`` both ways and ``generate`` on the result, through ``main``."""

import json

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="missing component: transformers (the dev extra)"
)

from olmo_lm.cli import main  # noqa: E402
from tests.unit.olmo_lm.data.test_tokenizer import write_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    config = transformers.Olmo2Config(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        pad_token_id=1,
        eos_token_id=0,
    )
    transformers.Olmo2ForCausalLM(config).save_pretrained(folder)
    write_tokenizer(folder)
    return folder


def test_convert_from_hf_generate_and_back(hf_dir, tmp_path, capsys):
    ours = tmp_path / "ours"
    main(["convert", "--from-hf", str(hf_dir), "--out", str(ours)])
    assert (ours / "olmo_lm.json").exists() and (ours / "tokenizer.json").exists()
    assert "olmo2 model" in capsys.readouterr().out
    main(
        [
            "generate",
            "--run_dir",
            str(ours),
            "--prompt",
            "To be",
            "--max_new_tokens",
            "6",
            "--temperature",
            "0",
        ]
    )
    out = capsys.readouterr()
    assert out.out.startswith("To be") and "tokens/s" in out.err

    back = tmp_path / "back"
    main(
        [
            "convert",
            "--to-hf",
            str(ours),
            "--out",
            str(back),
            "--dtype",
            "bfloat16",
            "--max-shard-gb",
            "0.00001",
        ]
    )
    config = json.loads((back / "config.json").read_text())
    assert config["model_type"] == "olmo2" and config["eos_token_id"] == 0
    assert (back / "model.safetensors.index.json").exists() and (back / "tokenizer.json").exists()
    reference = transformers.Olmo2ForCausalLM.from_pretrained(hf_dir)
    loaded = transformers.Olmo2ForCausalLM.from_pretrained(back)
    assert loaded.dtype == torch.bfloat16
    for (name, a), b in zip(reference.state_dict().items(), loaded.state_dict().values()):
        torch.testing.assert_close(a.to(torch.bfloat16), b, rtol=0, atol=0, msg=name)


def test_train_starts_from_converted_weights(hf_dir, tmp_path):
    ours = tmp_path / "ours"
    main(["convert", "--from-hf", str(hf_dir), "--out", str(ours)])
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question. " * 200)
    run = tmp_path / "run"
    main(
        [
            "train",
            "--init_from",
            str(ours),
            "--data.path",
            str(corpus),
            "--data.tokenizer",
            str(ours),
            "--data.seq_len",
            "16",
            "--data.batch_size",
            "4",
            "--trainer.run_dir",
            str(run),
            "--trainer.max_steps",
            "2",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
        ]
    )
    assert (run / "checkpoints" / "last.ckpt").exists()
    back = tmp_path / "back"
    main(["convert", "--to-hf", str(run), "--out", str(back)])
    assert (back / "tokenizer.json").exists()  # the run's tokenizer travels with it
    transformers.Olmo2ForCausalLM.from_pretrained(back)


def test_generate_reads_a_transformers_checkpoint_directly(hf_dir, capsys):
    main(
        [
            "generate",
            "--run_dir",
            str(hf_dir),
            "--prompt",
            "To be",
            "--max_new_tokens",
            "4",
            "--temperature",
            "0",
        ]
    )
    assert capsys.readouterr().out.startswith("To be")


def test_convert_needs_exactly_one_source(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["convert", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--from-hf" in capsys.readouterr().err
