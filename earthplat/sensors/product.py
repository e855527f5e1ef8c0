"""Which product level a file or STAC item is, read from its metadata.

The facts live in the sensor registry (``earthplat.sensors``): each modality's ``family`` and
``product_ids``, the auxiliary bands only one level carries (``PRODUCT_ONLY_BANDS``) and the
products of a family that no modality holds (``UNREGISTERED_PRODUCTS``). This module only reads
them; ``detect_product`` is importable from ``earthplat.sensors`` as well.
"""

from __future__ import annotations

import re
from typing import Any

from earthplat.errors import SensorError
from earthplat.sensors.builtin import PRODUCT_ONLY_BANDS, UNREGISTERED_PRODUCTS
from earthplat.sensors.registry import _SHORTHANDS, modalities

_LEVEL_PROPERTIES = (
    "processing:level",
    "s2:processing_level",
    "s2:product_type",
    "sar:product_type",
    "landsat:correction",
)


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z]+", text.lower()) if t]


def _has(tokens: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(tokens[i : i + n] == needle for i in range(len(tokens) - n + 1))


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def detect_product(
    family: str,
    *,
    tags: dict[str, str] | None = None,
    descriptions: list[str | None] | None = None,
    name: str | None = None,
    properties: dict | None = None,
    collection: str | None = None,
) -> tuple[str | None, str]:
    """Which product (modality) of ``family`` the metadata of a file or STAC item says it is.

    Returns ``(modality name, evidence)``, e.g. ``("sentinel2_l2a", "tag
    PROCESSING_LEVEL=Level-2A")``; ``(None, "")`` when the metadata says nothing; and
    ``(None, evidence)`` when it says something no modality can take: a product of the family that
    is not registered (Landsat Level-2) or levels that contradict each other.

    ``family`` is a family (``sentinel2``) or any modality of it (``sentinel2_l1c``).

    Evidence is read in this order, and the first kind that says anything decides:

    1. the STAC ``collection`` id and the level ``properties`` (``processing:level``,
       ``s2:processing_level``, ``s2:product_type``, ``sar:product_type``,
       ``landsat:correction``, then any other key naming a level, product type or correction);
    2. GeoTIFF ``tags`` whose key names a level or product (``PROCESSING_LEVEL``,
       ``PRODUCT_TYPE``, ``PRODUCT_LEVEL``, ``LEVEL``, ``PRODUCT_URI``...);
    3. the values of every other tag (``SENSOR=Sentinel-2 L1C (TOA)``);
    4. band ``descriptions``: product ids in them, and bands only one level has (``SCL``,
       ``AOT``, ``WVP`` mean L2A; ``B10`` means L1C). Files without descriptions (EuroSAT) say
       nothing here: a count of 13 bands is not taken as evidence;
    5. the file ``name`` (its last path component).

    A product id matches on token boundaries: texts and ids are split at every character that is
    not a letter or digit and an id's tokens must appear in a row, so ``L2A`` matches
    ``T33_L2A.tif`` and ``MSIL2A`` matches ``S2A_MSIL2A_2020.tif``, ``Level-2A`` matches
    ``PROCESSING_LEVEL=Level-2A``, and nothing matches ``XL2AB``.

    Conflicts: when one kind of evidence names two different products (a tag saying Level-2A and
    another saying S2MSI1C), the result is ``(None, "conflicting ...")`` listing both, and weaker
    kinds are not consulted: a file whose own metadata contradicts itself is not settled by its
    name. A stronger kind always wins over a weaker one (a tag over the file name).
    """
    fam = family.strip().lower()
    registry = modalities()
    if fam and not any(m.family == fam for m in registry):
        named = next((m for m in registry if m.name == _SHORTHANDS.get(fam, fam)), None)
        if named is None:
            families = sorted({m.family for m in registry if m.family})
            raise SensorError(f"unknown sensor family {family!r}; families: {', '.join(families)}")
        fam = named.family
    if not fam:
        return None, ""
    members = [m for m in registry if m.family == fam]
    # (tokens of a product id, modality name or None, label of an unregistered product)
    ids = [(_tokens(p), m.name, "") for m in members for p in m.product_ids]
    ids += [
        (_tokens(p), None, label) for label, ps in UNREGISTERED_PRODUCTS.get(fam, ()) for p in ps
    ]

    def says(text: str) -> list[tuple[str | None, str]]:
        tokens = _tokens(text)
        return [(m, label) for toks, m, label in ids if _has(tokens, toks)]

    tiers: list[list[tuple[str | None, str, str]]] = [[], [], [], [], []]
    if collection:
        tiers[0] += [(m, lb, f"STAC collection {collection}") for m, lb in says(collection)]
    props = properties or {}
    keys = [k for k in _LEVEL_PROPERTIES if k in props] + [
        k
        for k in props
        if k not in _LEVEL_PROPERTIES
        and any(w in k.lower() for w in ("level", "product_type", "correction"))
    ]
    for k in keys:
        if isinstance(props[k], str):
            ev = f"STAC property {k}={_short(props[k])}"
            tiers[0] += [(m, lb, ev) for m, lb in says(props[k])]
    for k, v in (tags or {}).items():
        tier = 1 if any(w in k.upper() for w in ("LEVEL", "PRODUCT")) else 2
        tiers[tier] += [(m, lb, f"tag {k}={_short(v)}") for m, lb in says(str(v))]
    if len(members) > 1:
        keys_of = {
            m.name: {k.lower() for b in m.bands for k in (b.name, b.common_name, *b.aliases) if k}
            | {b.lower() for b in PRODUCT_ONLY_BANDS.get(m.name, ())}
            for m in members
        }
        only = {
            k: name
            for name, ks in keys_of.items()
            for k in ks
            if sum(k in other for other in keys_of.values()) == 1
        }
    else:
        only = {}  # one product: a band name tells nothing about the level
    for d in descriptions or []:
        if not d:
            continue
        tiers[3] += [(m, lb, f"band description {_short(d)!r}") for m, lb in says(d)]
        for tok in _tokens(d):
            if tok in only:
                tiers[3].append((only[tok], "", f"band {d} (only in {only[tok]})"))
    if name:
        base = re.split(r"[/\\]", name.rstrip("/\\"))[-1]
        tiers[4] += [(m, lb, f"file name {base}") for m, lb in says(base)]

    for hits in tiers:
        if not hits:
            continue
        first: dict[str, tuple[str | None, str, str]] = {}
        for m, label, ev in hits:
            first.setdefault(m or label, (m, label, ev))
        if len(first) == 1:
            m, label, ev = next(iter(first.values()))
            if m is not None:
                return m, ev
            return None, f"{ev}: {label}, which no registered modality holds"
        return None, "conflicting product levels: " + "; ".join(
            f"{ev} says {m or label}" for m, label, ev in first.values()
        )
    return None, ""
