"""Every job kind has a typed payload: defaults fill in, unknown fields and bad values are a
422 that names them, and the worker retries only transient failures."""

from __future__ import annotations

import pytest

from api.errors import InvalidInputError
from api.jobs.handlers import kinds
from api.jobs.payloads import PAYLOADS, parse

EXAMPLES = {
    "materialize": {"layers": [{"source": "s2", "period": "15d"}]},
    "finetune": {"overrides": {"trainer.max_steps": 4}, "name": "m"},
    "inference": {"model_id": 3, "bbox": [0, 0, 1, 1], "outputs": ["cog"]},
    "embeddings": {"model_path": "models/x", "name": "idx"},
    "export_dataset": {"statuses": ["accepted", "submitted"]},
    "steps": {"steps": 3},
}


def test_every_registered_kind_has_a_payload_and_an_example() -> None:
    assert set(PAYLOADS) == set(kinds()) == set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_a_valid_payload_parses_and_defaults_fill_in(kind) -> None:
    parsed = parse(kind, EXAMPLES[kind])
    again = parse(kind, parsed.model_dump(mode="json"))
    assert again == parsed


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_an_unknown_field_is_refused_by_name(kind) -> None:
    with pytest.raises(InvalidInputError, match="colour"):
        parse(kind, {**EXAMPLES[kind], "colour": "red"})


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("inference", {"bbox": [0, 0, 1, 1]}, "model_id"),  # neither model_id nor model_path
        ("inference", {"model_id": 1, "bbox": [5, 0, 1, 1]}, "bbox"),
        ("inference", {"model_id": 1, "outputs": ["png"]}, "outputs"),
        ("finetune", {"statuses": ["done"]}, "statuses"),
        ("materialize", {"layers": [{"source": "s2", "method": "mean"}]}, "method"),
        ("steps", {"steps": -1}, "steps"),
        ("embeddings", {"model_id": 0}, "model_id"),
    ],
)
def test_bad_values_name_the_field(kind, payload, field) -> None:
    with pytest.raises(InvalidInputError, match=field):
        parse(kind, payload)


def test_only_transient_failures_are_retried() -> None:
    from sqlalchemy.exc import OperationalError

    from api.jobs.context import PermanentJobError, TransientJobError
    from api.jobs.worker import _transient
    from earthplat.errors import DataError

    assert _transient(TransientJobError("x")) and _transient(TimeoutError())
    assert _transient(ConnectionResetError()) and _transient(OSError("disk"))
    assert _transient(OperationalError("select", {}, Exception("gone")))
    for permanent in (
        PermanentJobError("bad payload"),
        DataError("the model reads L1C, not L2A"),
        FileNotFoundError("model.safetensors"),
        ValueError("a bug"),
        KeyError("x"),
    ):
        assert not _transient(permanent), permanent
