"""Which band of a file is which (band, date): the one mapping, shared by ingest and predict.

A file band maps to exactly one (band, date) pair, and no two file bands map to the same pair.
How each file band is named, in order of precedence:

1. the user's names (``--file_bands`` for ingest, ``--bands`` for predict): one per file band,
   each ``BAND`` or ``DATE_BAND`` (``B04``, ``2020-06-01_B04``); or the bands of *one* date
   together with ``--dates``, for a date-major file (all bands of the first date, then all of
   the second, ...);
2. the band descriptions: tokens split on ``_``, ``:`` or space; a token that parses as an ISO
   date gives the date and one that names a band of the modality gives the band
   (``2015-07-11_B04``, ``B2_blue``, ``VV``);
3. the modality's own band order, when the file has exactly that many bands (or that many
   times the number of ``--dates``).

Bands without a date of their own take the file's date (:func:`file_date`). Anything that does
not map one-to-one (a count that does not fit, a band named twice for one date, a name the
modality does not know) is a ``DataError`` naming the file, what was found and the flag that
fixes it; nothing is guessed and no date is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from earthplat.data.window import parse_time
from earthplat.errors import DataError, SensorError
from earthplat.sensors import S2_L1C_ORDER, Modality

_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2}(?:T[0-9:.]+Z?)?)[_\s:]+(.+)$")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
DATE_TAGS = ("DATETIME", "DATE", "TIFFTAG_DATETIME", "ACQUISITION_DATE")


@dataclass(frozen=True)
class BandFlags:
    """How the command the user runs spells the options named in error messages."""

    bands: str = "--file_bands"
    dates: str = "--dates"
    date: str = "--datetime"


INGEST_FLAGS = BandFlags()
PREDICT_FLAGS = BandFlags(bands="--bands", dates="--dates", date="--date")


def date_token(token: str | None) -> datetime | None:
    """An ISO date or datetime at the start of ``token``, else None."""
    if not token or not re.match(r"^\d{4}-\d{2}-\d{2}", token):
        return None
    try:
        return parse_time(token)
    except Exception:
        return None


def _band_of(modality: Modality, text: str | None) -> str | None:
    """The canonical band a name or description names (``B04``, ``red``, ``B2_blue``)."""
    if not text:
        return None
    for candidate in (text, *[t for t in re.split(r"[_:\s]+", text) if t]):
        try:
            return modality.band(candidate).name
        except SensorError:
            continue
    return None


def _split_dated(text: str) -> tuple[datetime | None, str]:
    m = _DATE_PREFIX.match(text.strip())
    if m and date_token(m.group(1)):
        return date_token(m.group(1)), m.group(2)
    return None, text.strip()


def _parse_dates(values: list[str], path: str, flags: BandFlags) -> list[datetime]:
    out = []
    for v in values:
        when = date_token(str(v))
        if when is None:
            raise DataError(f"{path}: {flags.dates} value {v!r} is not a date (YYYY-MM-DD)")
        out.append(when)
    if len(set(out)) != len(out):
        dup = sorted({f"{d:%Y-%m-%d}" for d in out if out.count(d) > 1})
        raise DataError(f"{path}: {flags.dates} lists {', '.join(dup)} more than once")
    return out


def _from_names(
    path: str,
    count: int,
    names: list[str],
    dates: list[datetime] | None,
    modality: Modality,
    flags: BandFlags,
) -> list[tuple[str, datetime | None]]:
    parsed = [_split_dated(str(n)) for n in names]
    if dates:
        if any(d is not None for d, _ in parsed):
            raise DataError(
                f"{path}: {flags.bands} names dated bands (DATE_BAND) and {flags.dates} is "
                "given too; use one of the two"
            )
        if len(names) * len(dates) == count:  # date-major blocks (one date: every band)
            parsed = [(d, b) for d in dates for _, b in parsed]
        elif len(names) == count and len(dates) == count:  # a date per file band
            parsed = [(d, b) for d, (_, b) in zip(dates, parsed)]
        else:
            raise DataError(
                f"{path} has {count} bands, but {flags.bands} names {len(names)} and "
                f"{flags.dates} lists {len(dates)} dates ({len(names)} x {len(dates)} = "
                f"{len(names) * len(dates)}); give the bands of one date with every date "
                f"(date-major), or one name and one date per file band"
            )
    elif len(names) != count:
        raise DataError(
            f"{path} has {count} bands but {flags.bands} names {len(names)}; give one name per "
            f"file band in file order (DATE_BAND, e.g. 2020-06-01_B04, for a multi-date file), "
            f"or the bands of one date plus {flags.dates} listing every date"
        )
    out = []
    for i, (when, text) in enumerate(parsed, start=1):
        band = _band_of(modality, text)
        if band is None:
            raise DataError(
                f"{path}: {flags.bands} entry {i} ({text!r}) is not a {modality.name} band; "
                f"its bands are {', '.join(modality.band_names)}"
            )
        out.append((band, when))
    return out


def _from_descriptions(
    descriptions: list[str | None], modality: Modality
) -> list[tuple[str, datetime | None]] | None:
    """The mapping the band descriptions give, or None when they do not name every band."""
    if not descriptions or not all(descriptions):
        return None
    out = []
    for d in descriptions:
        when = next((t for t in (date_token(x) for x in re.split(r"_", d)) if t), None)
        band = _band_of(modality, d)
        if band is None:
            return None
        out.append((band, when))
    return out


def _default_order(modality: Modality, count: int, n_dates: int) -> list[str] | None:
    """The modality's band order when the file holds exactly those bands (per date)."""
    order = list(modality.band_names)
    return order if count == len(order) * n_dates else None


def _no_mapping_error(
    path: str, count: int, descriptions: list[str | None], modality: Modality, flags: BandFlags
) -> DataError:
    described = [d for d in descriptions if d]
    seen = f"descriptions {described[:4]}" if described else "no band descriptions"
    hint = ""
    if modality.name == "sentinel2_l2a" and count == len(S2_L1C_ORDER):
        hint = (
            f" {count} bands look like Sentinel-2 L1C (B10, cirrus, exists only in L1C): "
            "ingest it with --modality sentinel2_l1c, or"
        )
    return DataError(
        f"{path}: cannot tell which {modality.name} band each of its {count} bands is ({seen})"
        f";{hint} pass {flags.bands} naming each file band in order (e.g. {flags.bands} "
        f"[{', '.join(modality.band_names[:3])}, ...]), or check --modality (is this "
        f"{modality.name} data?)"
    )


def map_file_bands(
    path: str,
    *,
    count: int,
    descriptions: list[str | None],
    modality: Modality,
    names: list[str] | None = None,
    dates: list[str] | None = None,
    flags: BandFlags = INGEST_FLAGS,
) -> list[tuple[str, datetime | None]]:
    """(band, date or None) of every file band, one-to-one (see the module docstring)."""
    when = _parse_dates(list(dates), path, flags) if dates else None
    if names:
        mapping = _from_names(path, count, list(names), when, modality, flags)
    else:
        mapping = _from_descriptions(list(descriptions), modality)
        if mapping is not None and when:
            if any(d for _, d in mapping):
                raise DataError(
                    f"{path}: its band descriptions carry dates already; drop {flags.dates}"
                )
            mapping = _from_names(path, count, [b for b, _ in mapping], when, modality, flags)
        if mapping is None:
            order = _default_order(modality, count, len(when) if when else 1)
            if order is None:
                raise _no_mapping_error(path, count, list(descriptions), modality, flags)
            mapping = _from_names(path, count, order, when, modality, flags)
    _check_unique(path, mapping, flags)
    return mapping


def _check_unique(path: str, mapping: list[tuple[str, datetime | None]], flags: BandFlags) -> None:
    seen: dict[tuple[str, datetime | None], int] = {}
    for i, key in enumerate(mapping, start=1):
        if key in seen:
            band, when = key
            at = f"date {when:%Y-%m-%d}" if when else "no date of its own"
            raise DataError(
                f"{path}: file bands {seen[key]} and {i} are both {band} with {at}, so one would "
                f"be lost; a multi-date file needs a date per band: name them DATE_BAND in "
                f"{flags.bands} (e.g. 2020-06-01_{band}) or list the dates with {flags.dates}"
            )
        seen[key] = i


def file_date(path: str, tags: dict[str, str], fallback: str | None = None) -> datetime | None:
    """A file's acquisition date: a date tag, a ``YYYY-MM-DD``/``YYYYMMDD`` in its name, or
    ``fallback``."""
    for key in DATE_TAGS:
        if tags.get(key):
            text = tags[key].replace(":", "-", 2) if key == "TIFFTAG_DATETIME" else tags[key]
            try:
                return parse_time(text.split(",")[0].replace(" ", "T"))
            except Exception:
                continue
    for m in _DATE_IN_NAME.finditer(Path(path).name):  # the first run of digits that is a date
        try:
            return parse_time(f"{m.group(1)}-{m.group(2)}-{m.group(3)}")
        except Exception:
            continue
    return parse_time(fallback) if fallback else None
