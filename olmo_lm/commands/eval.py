"""``olmo-lm eval``: evaluations of trained models (RewardBench accuracy)."""

from __future__ import annotations

from pathlib import Path


def eval_rewardbench(
    model: str,
    pairs: str,
    tokenizer: str | None = None,
    seq_len: int = 512,
    out: str | None = None,
) -> dict:
    """RewardBench accuracy of a reward model, per category and averaged over categories.

    A pair is right when chosen outscores rejected (all of them, for RewardBench 2's lists).

    Args:
        model: A reward run directory (olmo-lm reward train) or its model/ folder.
        pairs: Pairs JSONL with an optional "category" (or "subset") per line.
        tokenizer: A tokenizer.json or its folder (default: the model's own).
        seq_len: Tokens per prompt + response.
        out: Also write the report as JSON here.
    """
    import json

    from olmo_lm.post.common import model_tokenizer
    from olmo_lm.post.preference import read_pairs
    from olmo_lm.post.reward import evaluate_pairs, load_reward_model

    backbone, head = load_reward_model(model)
    tok = model_tokenizer(model, tokenizer)
    report = evaluate_pairs(backbone, head, tok, read_pairs(pairs), seq_len=seq_len)
    for name, c in report["categories"].items():
        print(f"{name}: {c['accuracy']:.3f} ({c['pairs']} pairs)")
    print(f"mean over categories: {report['mean']:.3f}; all pairs: {report['overall']:.3f}")
    if out is not None:
        Path(out).write_text(json.dumps(report, indent=2))
    return report
