"""``olmo-lm``: a thin command line over the language-model training, generation and
conversion functions (each callable from Python with the same arguments).

This module only builds the parser and maps errors; the commands live by group in
``olmo_lm.commands`` (``train``, ``generate``, ``convert``, ``data``, ``post``, ``eval``).
"""

from __future__ import annotations

import sys

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.commands.convert import convert
from olmo_lm.commands.data import (
    corpus,
    curate_dedup,
    curate_filter,
    curate_tag,
    mixture,
    tokenize,
    tokenizer_train,
)
from olmo_lm.commands.eval import eval_rewardbench
from olmo_lm.commands.generate import generate
from olmo_lm.commands.post import dpo, reward_train, rlvr, sft
from olmo_lm.commands.train import PretrainJobConfig, run_pretraining, train

_ALIASES = {"--from-hf": "--from_hf", "--to-hf": "--to_hf", "--max-shard-gb": "--max_shard_gb"}


def _alias(arg: str) -> str:
    """``--from-hf`` spelled as the issue and docs do -> the parameter name ``--from_hf``."""
    name, sep, value = arg.partition("=")
    return _ALIASES.get(name, name) + sep + value


def commands() -> dict:
    """The subcommands: name -> function."""
    return {
        "train": train,
        "generate": generate,
        "convert": convert,
        "tokenizer": {"_help": "Train a byte-level BPE tokenizer.", "train": tokenizer_train},
        "tokenize": tokenize,
        "mixture": mixture,
        "corpus": corpus,
        "curate": {
            "_help": "Tag, deduplicate and filter documents (Dolma-style curation).",
            "tag": curate_tag,
            "dedup": curate_dedup,
            "filter": curate_filter,
        },
        "sft": sft,
        "dpo": dpo,
        "rlvr": rlvr,
        "reward": {"_help": "Train a Bradley-Terry reward model.", "train": reward_train},
        "eval": {
            "_help": "Evaluate trained models (RewardBench accuracy).",
            "rewardbench": eval_rewardbench,
        },
    }


def main(argv: list[str] | None = None) -> None:
    """The ``olmo-lm`` command. Expected errors print what was wrong and the fix, and exit 2;
    ``--debug`` shows their traceback."""
    from jsonargparse import CLI, set_parsing_settings

    args = list(sys.argv[1:] if argv is None else argv)
    args = [_alias(a) for a in args]
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    # the configs' fields document themselves in attribute docstrings: those are the flags' help
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    try:
        CLI(
            commands(),
            args=args,
            as_positional=False,
            description="OLMo-family language models on the earthplat training core. Add "
            "--debug to any command for the traceback of an error.",
        )
    except TrainCoreConfigError as e:
        if debug:
            raise
        print(f"olmo-lm: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = [
    "PretrainJobConfig",
    "convert",
    "corpus",
    "curate_dedup",
    "curate_filter",
    "curate_tag",
    "dpo",
    "eval_rewardbench",
    "generate",
    "main",
    "mixture",
    "reward_train",
    "rlvr",
    "run_pretraining",
    "sft",
    "tokenize",
    "tokenizer_train",
    "train",
]
