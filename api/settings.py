"""Platform settings, read from ``EARTHPLAT_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.database import sqlite_url_for


class Settings(BaseSettings):
    """Everything the API process needs; each field is ``EARTHPLAT_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="EARTHPLAT_", extra="ignore")

    data_dir: Path = Field(default=Path("earthplat-data"))
    """Root of the platform's files: the SQLite database, project datasets, uploads, outputs."""
    database_url: str | None = None
    """SQLAlchemy URL; ``postgresql+psycopg://...`` for PostgreSQL. Default: SQLite file
    ``DATA_DIR/earthplat.db``."""
    admin_key: str | None = None
    """Bootstrap admin API key. Unset: a key is generated and printed at the first start."""
    max_upload_mb: float = 512.0
    """Largest accepted raster upload, in MiB."""
    max_windows: int = 10_000
    """Most windows one collection request may create."""
    lock_minutes: float = 30.0
    """How long a task handed out by ``tasks/next`` stays locked to its labeler."""
    annotation_max_vertices: int = Field(default=10_000, ge=4)
    """Most vertices one annotation geometry may have (more is a 422)."""
    annotation_max_bytes: int = Field(default=1_000_000, ge=100)
    """Largest annotation geometry, as compact GeoJSON text (more is a 413)."""
    migrate: bool = True
    """Upgrade the database to the latest migration when the app starts."""
    source_roots: str | None = None
    """Folders (``os.pathsep``- or comma-separated) that the local files of sources must lie
    under: a STAC catalogue registered by path and the local asset hrefs inside it. Default:
    the data dir and the demo data dir (``allowed_source_roots``)."""
    encoder_roots: str | None = None
    """Folders (``os.pathsep``- or comma-separated) holding published OlmoEarth checkpoints
    (one directory each, ``config.json`` + ``weights.pth``), searched after
    ``DATA_DIR/encoders`` for ``GET /api/v1/encoders`` (``labeling.services.encoders``)."""

    tile_cache: bool = True
    """Keep rendered tiles and frames (``DATA_DIR/cache/tiles``, shared by every worker on the
    data dir); ``EARTHPLAT_TILE_CACHE=0`` renders every request again (the benchmark's
    baseline). ETags and 304s work either way."""
    tile_cache_mb: float = Field(default=512.0, ge=0)
    """Most MiB of rendered PNGs on disk; beyond it the least recently used are deleted."""
    tile_cache_memory_mb: float = Field(default=64.0, ge=0)
    """Most MiB of rendered PNGs each API process also keeps in memory."""
    tile_access_ttl_s: float = Field(default=5.0, ge=0, le=300)
    """Seconds an API process reuses a key's checked read access to a window layer for its
    tiles and frames (``EARTHPLAT_TILE_ACCESS_TTL_S``): a revoked key or membership stops
    reading tiles within this time; 0 checks the database on every tile."""

    basemap_url: str | None = None
    """An XYZ tile URL template (``https://tile.example.org/{z}/{x}/{y}.png``) the labelling
    map draws under the window's imagery and its context overview; unset: no basemap. Served to
    the browser by ``GET /api/v1/ui-config``, so it must not hold a secret key."""
    basemap_attribution: str | None = None
    """The text the map shows with the basemap (its provider's attribution terms)."""

    @field_validator("basemap_url", mode="before")
    @classmethod
    def _check_basemap_url(cls, value: object) -> object:
        """An XYZ template with ``{z}``, ``{x}`` and ``{y}``, over http(s) or from this host."""
        if not isinstance(value, str):
            return value
        url = value.strip()
        if not url:
            return None
        lacking = [p for p in ("{z}", "{x}", "{y}") if p not in url]
        if lacking or not url.startswith(("http://", "https://", "/")):
            why = f"lacks {', '.join(lacking)}" if lacking else "is not an http(s) or /path URL"
            raise ValueError(
                f"EARTHPLAT_BASEMAP_URL {url!r} {why}; give an XYZ tile URL template such as "
                "https://tile.openstreetmap.org/{z}/{x}/{y}.png, or unset it for no basemap"
            )
        return url

    def annotation_limits(self):
        from labeling.services.annotations import Limits

        return Limits(self.annotation_max_vertices, self.annotation_max_bytes)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or sqlite_url_for(self.data_dir)

    def project_dir(self, project_id: int) -> Path:
        return Path(self.data_dir).expanduser().resolve() / "projects" / str(project_id)

    def allowed_source_roots(self) -> list[Path]:
        """``source_roots`` resolved, else the data dir and the demo data dir (if it exists)."""
        from earthplat.data.sources.roots import parse_roots

        if self.source_roots and self.source_roots.strip():
            return parse_roots(self.source_roots)
        roots = [Path(self.data_dir).expanduser().resolve()]
        demo = default_demo_data()
        if demo is not None and demo.is_dir():
            roots.append(demo.expanduser().resolve())
        return roots


def default_demo_data() -> Path | None:
    """``EARTHPLAT_DEMO_DATA``, else ``../shared/data/real`` beside the repository if it exists:
    the folder ``make run``'s demo project uploads from."""
    env = os.environ.get("EARTHPLAT_DEMO_DATA")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    return guess if guess.is_dir() else None


def get_settings() -> Settings:
    return Settings()
