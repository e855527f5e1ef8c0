"""Preference pairs: a prompt, a chosen and a rejected response, as DPO and reward models read
them.

A pairs JSONL line is ``{"prompt", "chosen", "rejected"}`` with optional ``"category"``
(RewardBench's subset). ``prompt`` is a string (one user turn) or a messages list; ``chosen``
and ``rejected`` are strings (the assistant's reply) or messages lists. Without ``prompt``,
``chosen`` and ``rejected`` are whole conversations sharing their prompt (the UltraFeedback /
Tulu 3 preference layout): the last message is the response. ``rejected`` may be a list of
several replies (RewardBench 2's one chosen against three rejected).

A response is encoded as the chat template continues the prompt: ``<|assistant|>\\n``,
the reply, EOS; only the reply and its EOS are the response tokens (the mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.post.chat import check_messages, encode_chat, read_jsonl


@dataclass
class PreferencePair:
    prompt: list[dict]
    chosen: str
    rejected: list[str]
    """One rejected reply for DPO and reward training; several for RewardBench 2."""
    category: str = "all"


def _reply(value, where: str) -> tuple[list[dict] | None, str]:
    """(prompt messages if ``value`` is a conversation, reply text)."""
    if isinstance(value, str):
        return None, value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return None, value["content"]
    check_messages(value)
    if value[-1]["role"] != "assistant":
        raise TrainCoreConfigError(f"{where} must end with an assistant message")
    return value[:-1], value[-1]["content"]


def parse_pair(record: dict, where: str = "pair") -> PreferencePair:
    """One pairs-JSONL record as a ``PreferencePair``, or an error naming what is missing."""
    if not isinstance(record, dict) or "chosen" not in record or "rejected" not in record:
        raise TrainCoreConfigError(f"{where} needs 'chosen' and 'rejected' (and a 'prompt')")
    prompt = record.get("prompt")
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    from_chosen, chosen = _reply(record["chosen"], f"{where} 'chosen'")
    rejected_values = record["rejected"]
    if not isinstance(rejected_values, list) or (
        rejected_values and isinstance(rejected_values[0], dict) and "role" in rejected_values[0]
    ):
        rejected_values = [rejected_values]
    replies = [_reply(r, f"{where} 'rejected'") for r in rejected_values]
    if prompt is None:
        prompt = from_chosen
        if prompt is None or not prompt:
            raise TrainCoreConfigError(
                f"{where} has no 'prompt' and 'chosen' is not a conversation to take it from"
            )
    check_messages(prompt)
    if not replies:
        raise TrainCoreConfigError(f"{where} has no rejected reply")
    category = str(record.get("category", record.get("subset", "all")))
    return PreferencePair(prompt, chosen, [r for _, r in replies], category)


def read_pairs(path) -> list[PreferencePair]:
    """Every pair of a pairs JSONL file."""
    return [parse_pair(r, f"{path} record {n}") for n, r in enumerate(read_jsonl(path), 1)]


def encode_response(tokenizer, prompt: list[dict], reply: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, response mask) of ``prompt`` continued by the assistant ``reply``: the mask is
    True on the reply and its EOS only (earlier assistant turns are prompt)."""
    start = len(encode_chat(tokenizer, prompt, add_generation_prompt=True).ids)
    chat = encode_chat(tokenizer, [*prompt, {"role": "assistant", "content": reply}])
    mask = chat.mask.copy()
    mask[:start] = False
    return chat.ids, mask


def fit_width(ids: np.ndarray, mask: np.ndarray, width: int, pad_id: int):
    """``ids``/``mask`` cut or right-padded to ``width`` (the prompt's start is kept)."""
    out_ids = np.full(width, pad_id, dtype=np.int64)
    out_mask = np.zeros(width, dtype=bool)
    n = min(width, len(ids))
    out_ids[:n], out_mask[:n] = ids[:n], mask[:n]
    return out_ids, out_mask
