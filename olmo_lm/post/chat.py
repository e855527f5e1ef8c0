"""Conversations as token ids with a loss mask: the tokenizer's chat template, token by token.

The text is exactly what ``CHAT_TEMPLATE`` (``olmo_lm.data.tokenizer``, the Jinja template
``tokenizer_config.json`` records) renders: per message ``<|role|>\\n{content}`` then, for an
assistant turn, ``<|endoftext|>``, then ``\\n``. Rendering here, segment by segment, is what
lets each token know which message it came from: the loss mask is True on the tokens of
assistant contents and the EOS that closes them (the model learns to answer and to stop), and
False on role markers, system and user text (Tulu 3 / open-instruct's masking).

Messages files are JSONL, one conversation per line: ``{"messages": [{"role", "content"}]}``
(roles ``system``, ``user``, ``assistant``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.tokenizer import CHAT_TOKENS, DOCUMENT_TOKENS

ROLES = tuple(t[2:-2] for t in CHAT_TOKENS)
"""``("system", "user", "assistant")``: the roles the template has a marker for."""


@dataclass
class EncodedChat:
    """One conversation: ``ids [T]`` and ``mask [T]`` (True where the loss applies)."""

    ids: np.ndarray
    mask: np.ndarray


def chat_special_ids(tokenizer) -> dict[str, int]:
    """Role -> marker id, plus ``"eos"``, from a tokenizer trained with the chat tokens."""
    special = getattr(tokenizer, "special_ids", None) or {}
    ids = {role: special.get(tok) for role, tok in zip(ROLES, CHAT_TOKENS, strict=True)}
    ids["eos"] = special.get(DOCUMENT_TOKENS["eos"], getattr(tokenizer, "eos_id", None))
    missing = [role for role, i in ids.items() if i is None]
    if missing:
        raise TrainCoreConfigError(
            f"the tokenizer has no chat tokens for {missing}; train one with "
            "`olmo-lm tokenizer train` (it adds <|system|>, <|user|>, <|assistant|>)"
        )
    return ids


def check_messages(messages: list[dict]) -> None:
    """Raise when ``messages`` is not a list of ``{"role": ROLE, "content": str}``."""
    if not isinstance(messages, list) or not messages:
        raise TrainCoreConfigError("a conversation needs a non-empty 'messages' list")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise TrainCoreConfigError(f"message {m!r} needs a role among {ROLES}")
        if not isinstance(m.get("content"), str):
            raise TrainCoreConfigError(f"message {m!r} needs a string 'content'")


def render_text(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The template's text of ``messages`` (what the Jinja ``CHAT_TEMPLATE`` renders)."""
    check_messages(messages)
    eos = DOCUMENT_TOKENS["eos"]
    parts = []
    for m in messages:
        end = eos if m["role"] == "assistant" else ""
        parts.append(f"<|{m['role']}|>\n{m['content']}{end}\n")
    if add_generation_prompt:
        parts.append("<|assistant|>\n")
    return "".join(parts)


def encode_chat(
    tokenizer, messages: list[dict], *, add_generation_prompt: bool = False
) -> EncodedChat:
    """Token ids of ``render_text(messages)`` and the assistant-token loss mask.

    Each content is encoded on its own (BPE merges never cross a role boundary); the
    marker, the newline after it and the newline after a turn are their own tokens."""
    check_messages(messages)
    special = chat_special_ids(tokenizer)
    newline = tokenizer.encode("\n")
    ids: list[int] = []
    mask: list[bool] = []

    def add(tokens: list[int], learn: bool) -> None:
        ids.extend(tokens)
        mask.extend([learn] * len(tokens))

    for m in messages:
        learn = m["role"] == "assistant"
        add([special[m["role"]], *newline], False)
        add(tokenizer.encode(m["content"]), learn)
        if learn:
            add([special["eos"]], True)
        add(newline, False)
    if add_generation_prompt:
        add([special["assistant"], *newline], False)
    return EncodedChat(np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool))


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSONL file (blank lines skipped), with the line of a bad one named."""
    path = Path(path)
    if not path.is_file():
        raise TrainCoreConfigError(f"{path} not found; pass a JSONL file")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise TrainCoreConfigError(f"{path}:{n} is not JSON ({e.msg})") from None
    if not records:
        raise TrainCoreConfigError(f"{path} holds no records")
    return records


def read_conversations(path: str | Path) -> list[list[dict]]:
    """The ``messages`` of each line of a messages JSONL file, validated."""
    conversations = []
    for n, record in enumerate(read_jsonl(path), 1):
        messages = record.get("messages") if isinstance(record, dict) else None
        try:
            check_messages(messages)
        except TrainCoreConfigError as e:
            raise TrainCoreConfigError(f"{path} record {n}: {e}") from None
        conversations.append(messages)
    return conversations
