"""Which local files a source may read: the folders (roots) a server confines its sources to.

A server that reads paths its users give (a STAC catalogue registered by path, the asset hrefs
inside such a catalogue, which may point anywhere) must not read ``/etc``. Sources built with
``allowed_roots`` check every local path against them after resolving symlinks and ``..``
(``Path.resolve()``), so neither leads out of a root; ``allowed_roots=None`` (the CLI, which runs
as its user) reads anything.

``local_path`` says which hrefs are local files: plain paths, ``file://`` URLs, GDAL wrappers of
local files (``/vsizip/``, ``/vsigzip/``, ``/vsitar/`` ...) and rasterio's ``zip://`` archive
URLs; http(s), cloud buckets and ``/vsicurl/`` of such URLs are remote (``None``). An href that is
neither (an unknown scheme or GDAL virtual file system) is refused rather than guessed at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from earthplat.errors import DataError

REMOTE_SCHEMES = frozenset(
    {"http", "https", "s3", "gs", "gcs", "az", "azure", "abfs", "abfss", "adls", "oss", "ftp"}
    | {"ftps", "hdfs", "webhdfs", "swift", "wasb", "wasbs"}
)
"""URL schemes that name remote objects (never a file of this machine)."""
ARCHIVE_SCHEMES = frozenset({"zip", "tar", "gzip"})
"""rasterio's archive schemes: ``zip://archive.zip!inner.tif`` reads a local archive."""
REMOTE_VSI = frozenset(
    {"vsis3", "vsigs", "vsiaz", "vsiadls", "vsioss", "vsiswift", "vsihdfs", "vsiwebhdfs"}
)
"""GDAL virtual file systems of cloud buckets (each also has a ``_streaming`` twin)."""
WRAPPER_VSI = frozenset({"vsizip", "vsigzip", "vsitar", "vsi7z", "vsirar"})
"""GDAL virtual file systems that read another path (given after them)."""
HARMLESS_VSI = frozenset({"vsimem"})
"""GDAL virtual file systems that touch no file (the process's own memory)."""


class SourceRootError(DataError):
    """A local path a source was given lies outside the folders it may read."""

    def __init__(self, message: str, *, path: str = "", roots: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.roots = list(roots)


def parse_roots(value: str) -> list[Path]:
    """Folders from an ``os.pathsep``- or comma-separated list, resolved (blanks dropped)."""
    parts = re.split(f"[,{re.escape(os.pathsep)}]", value)
    return [Path(p.strip()).expanduser().resolve() for p in parts if p.strip()]


def local_path(href: str) -> Path | None:
    """The resolved local file ``href`` reads, or ``None`` when it is remote.

    Raises ``SourceRootError`` for an href that is neither a path nor a URL sources read."""
    href = str(href)
    if href.startswith("/vsi"):
        return _vsi_path(href)
    parsed = urlparse(href)
    scheme = parsed.scheme.lower()
    if len(scheme) <= 1:  # a plain path (or a Windows drive letter)
        return Path(href).expanduser().resolve()
    parts = set(scheme.split("+"))
    if parts & REMOTE_SCHEMES:
        return None
    if scheme == "file":
        return Path(unquote(parsed.path)).resolve()
    if parts <= ARCHIVE_SCHEMES | {"file"}:  # zip://archive.zip!inner.tif, tar+file://...
        archive = unquote(parsed.netloc + parsed.path).split("!", 1)[0]
        return Path(archive).expanduser().resolve()
    raise SourceRootError(
        f"{href!r} is neither a local path nor a URL a source reads (scheme {scheme!r}); give "
        "a path, a file:// URL or an http(s)/s3/gs/az URL",
        path=href,
    )


def _vsi_path(href: str) -> Path | None:
    """The local file behind a GDAL virtual path (``/vsizip//data/a.zip/b.tif``)."""
    m = re.match(r"/(vsi[A-Za-z0-9_]*)([/?]|$)(.*)", href, re.DOTALL)
    kind, sep, rest = m.groups() if m else (href[1:], "", "")
    base = kind.removesuffix("_streaming")
    if base == "vsicurl":  # /vsicurl/URL or /vsicurl?opt=v&url=URL: the URL decides
        url = next(iter(parse_qs(rest).get("url", [])), "") if sep == "?" else rest
        return local_path(url) if url else None
    if base in REMOTE_VSI or base in HARMLESS_VSI:
        return None
    if base in WRAPPER_VSI:
        # /vsizip//abs/a.zip/inner.tif, /vsizip/{/abs/a.zip}/inner.tif, /vsizip/rel/a.zip: the
        # archive path (absolute, or relative to the working directory) plus the member, which
        # resolves under the archive's own folder
        inner = rest[1:].partition("}")[0] if rest.startswith("{") else rest
        return local_path(inner) if inner.startswith("/vsi") else Path(inner).resolve()
    raise SourceRootError(
        f"{href!r} uses the GDAL virtual file system /{kind}/, which a server source does not "
        "read; give a plain path, a /vsizip/ (or /vsigzip/, /vsitar/) path or an http(s) URL",
        path=href,
    )


def check_under_roots(
    path: str | Path, roots: Sequence[str | Path], *, label: str | None = None
) -> Path:
    """``path`` resolved (symlinks and ``..`` followed), if it lies under one of ``roots``;
    otherwise ``SourceRootError`` naming the path (as ``label``, e.g. the href it came from)
    and the roots."""
    resolved = Path(path).expanduser().resolve()
    allowed = [Path(r).expanduser().resolve() for r in roots]
    if any(resolved.is_relative_to(root) for root in allowed):
        return resolved
    name = label or str(path)
    shown = f"{name} (resolved: {resolved})" if str(resolved) != name else name
    where = ", ".join(str(r) for r in allowed) or "none are allowed"
    raise SourceRootError(
        f"{shown} is outside the folders this server's sources may read ({where}); move the "
        "file under one of them or allow its folder",
        path=name,
        roots=allowed,
    )


def check_href(href: str, roots: Sequence[str | Path] | None) -> None:
    """Refuse a local ``href`` outside ``roots`` (``None``: no restriction; remote: allowed)."""
    if roots is None:
        return
    path = local_path(href)
    if path is not None:
        check_under_roots(path, roots, label=str(href))
