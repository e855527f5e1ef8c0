"""Build a source from plain arguments (what the CLI and the API receive)."""

from __future__ import annotations

from pathlib import Path

from earthplat.errors import DataError


def build_source(
    modality: str,
    *,
    paths: list[str] | None = None,
    stac: str | None = None,
    collections: list[str] | None = None,
    datetime: str | None = None,
    file_bands: list[str] | None = None,
    quality: str | None = None,
    nodata: float | None = None,
    to_db: bool = False,
    max_cloud_cover: float | None = None,
    dates: list[str] | None = None,
    allow_substitution: bool = False,
    allowed_roots: list[Path] | None = None,
):
    """A ``LocalSource`` for ``paths`` or a ``StacSource`` for ``stac`` (exactly one).

    ``allowed_roots``: folders every local file the source reads must lie under (a server's
    sources; ``earthplat.data.sources.roots``); ``None``, the CLI's default, reads anything."""
    if bool(paths) == bool(stac):
        raise DataError("give either --paths (local rasters) or --stac (a STAC API or catalog URL)")
    if paths:
        from earthplat.data.sources.local import LocalSource

        return LocalSource(
            list(paths),
            modality,
            bands=file_bands,
            datetime=datetime,
            quality=quality,
            to_db=to_db,
            nodata=nodata,
            dates=dates,
            allow_substitution=allow_substitution,
            allowed_roots=allowed_roots,
        )
    from earthplat.data.sources.stac import StacSource

    return StacSource(
        url=stac,
        collections=collections,
        modality=modality,
        max_cloud_cover=max_cloud_cover,
        to_db=to_db,
        allow_substitution=allow_substitution,
        allowed_roots=allowed_roots,
    )
