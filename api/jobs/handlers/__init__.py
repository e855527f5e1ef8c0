"""Job handlers by kind. A handler is ``fn(ctx: JobContext) -> dict | None`` (the job result).

The registry holds ``module:function`` paths, imported when a job of that kind runs, so the
worker (and the API, which validates kinds on submit) never imports torch up front.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from api.jobs.context import PermanentJobError

Handler = Callable[[Any], dict | None]

HANDLERS: dict[str, str | Handler] = {
    "materialize": "api.jobs.handlers.materialize:run",
    "finetune": "api.jobs.handlers.finetune:run",
    "inference": "api.jobs.handlers.inference:run",
    "embeddings": "api.jobs.handlers.embeddings:run",
    "export_dataset": "api.jobs.handlers.export:run",
    "steps": "api.jobs.handlers.steps:run",
}
"""kind -> handler (or its ``module:function`` path)."""


def register(kind: str, handler: str | Handler, payload: type | None = None) -> None:
    """Add (or replace) the handler of ``kind`` and its payload model (an
    ``api.jobs.payloads.Payload`` subclass; default: a payload without fields)."""
    from api.jobs.payloads import PAYLOADS, Payload

    HANDLERS[kind] = handler
    PAYLOADS[kind] = payload or Payload


def kinds() -> list[str]:
    return sorted(HANDLERS)


def get_handler(kind: str) -> Handler:
    target = HANDLERS.get(kind)
    if target is None:
        raise PermanentJobError(f"unknown job kind {kind!r}; known: {', '.join(kinds())}")
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
