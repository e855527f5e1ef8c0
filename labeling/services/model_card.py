"""What a model registry page shows of a model, and two models side by side.

A card is read from what the fine-tune job recorded under ``config.platform`` (``encoder``,
``trained_on``, ``test_windows``, ``throughput``: ``api.jobs.handlers.finetune``); models
registered before those records existed fall back to the fine-tune config (the encoder) and
the job's payload (what it trained on), read in one query for a whole listing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.jobs import Job
from labeling.models import ModelEntry
from labeling.services.encoders import encoder_of
from labeling.services.errors import InvalidInputError

LOWER_IS_BETTER = ("loss", "error", "mae", "rmse")
"""A metric whose name contains one of these is better when lower; any other when higher."""


def test_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics of the test split (names starting ``test``), or all of them if none."""
    tested = {k: v for k, v in (metrics or {}).items() if k.startswith("test")}
    return tested or dict(metrics or {})


def _trained_on_from_payload(payload: dict[str, Any] | None) -> dict[str, Any]:
    payload = payload or {}
    windows = payload.get("windows")
    return {
        "windows": len(windows) if windows else None,
        "statuses": payload.get("statuses", ["accepted"]),
        "layers": payload.get("layers"),
        "dataset": payload.get("dataset", "default"),
    }


def cards(session: Session, entries: list[ModelEntry]) -> list[dict[str, Any]]:
    """``{base_encoder, trained_on, test_metrics, test_windows}`` per entry, in order."""
    platform = [(e.config or {}).get("platform") or {} for e in entries]
    missing = {e.job_id for e, p in zip(entries, platform, strict=True) if "trained_on" not in p}
    missing.discard(None)
    payloads = {}
    if missing:
        payloads = dict(session.execute(select(Job.id, Job.payload).where(Job.id.in_(missing))))
    out = []
    for entry, records in zip(entries, platform, strict=True):
        trained_on = records.get("trained_on")
        if trained_on is None:
            trained_on = (
                _trained_on_from_payload(payloads.get(entry.job_id)) if entry.job_id else {}
            )
        out.append(
            {
                "base_encoder": encoder_of(entry.config or {}, parent_id=entry.parent_id),
                "trained_on": trained_on,
                "test_metrics": test_metrics(entry.metrics),
                "test_windows": records.get("test_windows"),
            }
        )
    return out


def better(name: str, a: float, b: float) -> str | None:
    """``"a"``, ``"b"`` or ``None`` (a tie) for metric ``name`` (see ``LOWER_IS_BETTER``)."""
    if a == b:
        return None
    lower = any(word in name.lower() for word in LOWER_IS_BETTER)
    return ("a" if a < b else "b") if lower else ("a" if a > b else "b")


def compare(
    a: ModelEntry, b: ModelEntry, card_a: dict[str, Any], card_b: dict[str, Any]
) -> dict[str, Any]:
    """The metrics both models have (numbers only, by name) with the better of each, and the
    test windows of each and their intersection (``None`` where a model did not record
    them). Models of different task types are a 422: their metrics do not compare."""
    if a.task_type != b.task_type:
        raise InvalidInputError(
            f"model {a.id} is a {a.task_type} model and model {b.id} a {b.task_type} model; "
            "their metrics do not compare",
            fix="compare two models of the same task type",
        )

    def numbers(entry: ModelEntry) -> dict[str, float]:
        return {
            k: float(v)
            for k, v in (entry.metrics or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }

    ma, mb = numbers(a), numbers(b)
    metrics = [
        {"name": name, "a": ma[name], "b": mb[name], "better": better(name, ma[name], mb[name])}
        for name in sorted(ma.keys() & mb.keys())
    ]
    wa, wb = card_a.get("test_windows"), card_b.get("test_windows")
    both = sorted(set(wa) & set(wb)) if wa is not None and wb is not None else None
    return {
        "metrics": metrics,
        "test_windows": {"a": wa, "b": wb, "intersection": both},
    }
