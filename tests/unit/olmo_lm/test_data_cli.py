"""The data pipeline through ``olmo-lm``: corpus -> tokenizer -> tokenize -> curate -> mixture
-> a few training steps on it."""

import json

import pytest

pytest.importorskip("tokenizers", reason="missing component: tokenizers (a dependency)")

from olmo_lm.cli import main


def test_data_pipeline_round_trip(shakespeare, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    main(["corpus", "--out", str(corpus), "--shakespeare", str(shakespeare), "--limit", "40"])
    docs = corpus / "documents"
    main(["curate", "tag", "--documents", str(docs)])
    main(["curate", "dedup", "--documents", str(docs)])
    main(
        [
            "curate",
            "filter",
            "--documents",
            str(docs),
            "--out",
            str(tmp_path / "clean"),
            "--attributes",
            "[tags,dedup]",
            "--exclude",
            "near__duplicate == 1 or length__words < 5",
        ]
    )
    assert "kept=" in capsys.readouterr().out
    clean = tmp_path / "clean" / "documents"
    main(
        [
            "tokenizer",
            "train",
            "--input",
            str(clean),
            "--vocab_size",
            "400",
            "--out",
            str(tmp_path / "tok"),
        ]
    )
    assert (tmp_path / "tok" / "tokenizer.json").exists()
    for domain in ("literature", "code", "math"):
        main(
            [
                "tokenize",
                "--input",
                str(clean / f"{domain}.jsonl"),
                "--tokenizer",
                str(tmp_path / "tok"),
                "--out",
                str(tmp_path / "tokens" / domain),
                "--progress",
                "false",
            ]
        )
    assert "shards" in capsys.readouterr().out
    mix = tmp_path / "mix.yaml"
    mix.write_text(
        "sources:\n"
        "  - {name: literature, paths: [tokens/literature], weight: 0.6}\n"
        "  - {name: code, paths: [tokens/code], weight: 0.3}\n"
        "  - {name: math, paths: [tokens/math], weight: 0.1}\n"
        "validation: [tokens/math]\n"
    )
    main(["mixture", "--mixture", str(mix), "--seq_len", "32"])
    assert "repetitions" in capsys.readouterr().out
    run = tmp_path / "run"
    main(
        [
            "train",
            "--model.vocab_size",
            "400",
            "--model.d_model",
            "32",
            "--model.n_layers",
            "1",
            "--model.n_heads",
            "2",
            "--model.mlp_hidden",
            "64",
            "--data.mixture",
            str(mix),
            "--data.tokenizer",
            str(tmp_path / "tok"),
            "--data.seq_len",
            "32",
            "--data.batch_size",
            "4",
            "--trainer.run_dir",
            str(run),
            "--trainer.max_steps",
            "3",
            "--trainer.val_check_interval",
            "3",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "1",
        ]
    )
    assert (run / "checkpoints" / "last.ckpt").exists()
    import torch

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    states = json.dumps(ckpt.get("loops", {}), default=str)
    assert '"source_positions"' in states  # the mixture's position rode in the checkpoint


def test_errors_name_the_fix(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["tokenize", "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "--input" in capsys.readouterr().err
