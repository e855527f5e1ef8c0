"""Product levels: a file (or STAC item) whose metadata names another product of the modality's
family (Sentinel-2 L2A given as L1C, or the reverse) is refused, or, when the user accepts the
substitution explicitly, used and recorded.

The registry (``earthplat.sensors.detect_product``) knows which metadata names which product;
this module only decides what to do about a mismatch, so ingest, predict and the platform
refuse alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from earthplat.errors import DataError
from earthplat.sensors import Modality


class ProductMismatchError(DataError):
    """Data of one product level (or modality) offered as another."""


def substitution_record(found: str, used_as: str, evidence: str, where: str) -> dict[str, str]:
    """What the outputs record about an accepted substitution."""
    return {"from": found, "to": used_as, "evidence": evidence, "where": where}


def check_product(
    path: str,
    spec: Modality,
    *,
    tags: dict[str, str] | None = None,
    descriptions: list[str | None] | None = None,
    properties: dict[str, Any] | None = None,
    collection: str | None = None,
    allow: bool = False,
    action: str = "ingest",
) -> dict[str, str] | None:
    """``None`` when the metadata agrees with ``spec`` (or says nothing); the substitution
    record when it names another product and ``allow``; else ``ProductMismatchError`` whose fix
    fits ``action`` (``ingest``: re-ingest with the right modality; ``predict``: a model of
    that modality)."""
    from earthplat.sensors import detect_product

    if not spec.family:
        return None
    found, evidence = detect_product(
        spec.family,
        tags=tags,
        descriptions=descriptions,
        name=Path(str(path)).name,
        properties=properties,
        collection=collection,
    )
    if found == spec.name or (found is None and not evidence):
        return None
    if found is None:  # conflicting metadata, or a product no modality describes
        if not allow:
            raise ProductMismatchError(
                f"{path}: its metadata does not say it is {spec.name} ({evidence}); check the "
                f"file, or pass --allow_substitution true to use it as {spec.name} anyway "
                "(recorded in the metadata)"
            )
        return substitution_record("unknown", spec.name, evidence, str(path))
    if not allow:
        if action == "predict":
            fix = (
                f"use a model trained on {found}, or pass --allow_substitution true to read it "
                f"as {spec.name} anyway (recorded in the outputs' metadata)"
            )
        else:
            fix = (
                f"ingest it with --modality {found}, or pass --allow_substitution true to "
                f"store it as {spec.name} anyway (recorded in the layer's metadata)"
            )
        raise ProductMismatchError(f"{path} is {found} ({evidence}), not {spec.name}: {fix}")
    return substitution_record(found, spec.name, evidence, str(path))


def check_model_modality(
    data_modality: str, model_modalities: list[str], *, allow: bool, where: str
) -> tuple[str | None, dict[str, str] | None]:
    """Which model input a layer of ``data_modality`` feeds: (model modality or None, the
    substitution record when it feeds another product of the same family).

    A layer of the model's own modality feeds it; one of a sibling product (L2A for a model
    trained on L1C) is refused with the fix, unless ``allow``."""
    from earthplat.sensors import get_modality

    if data_modality in model_modalities:
        return data_modality, None
    data = get_modality(data_modality)
    siblings = [
        m for m in model_modalities if data.family and get_modality(m).family == data.family
    ]
    if not siblings:
        return None, None
    target = siblings[0]
    if not allow:
        raise ProductMismatchError(
            f"{where} holds {data_modality} but the model was trained on {target}: ingest "
            f"{target} data for it (earthplat ingest --modality {target}), or pass "
            f"--allow_substitution true to feed {data_modality} as {target} (recorded in the "
            "outputs' metadata)"
        )
    return target, substitution_record(data_modality, target, "layer modality", where)
