"""Settings from the environment."""

from __future__ import annotations

from api.settings import Settings


def test_defaults_to_sqlite_in_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("EARTHPLAT_DATABASE_URL", raising=False)
    monkeypatch.setenv("EARTHPLAT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("EARTHPLAT_MAX_UPLOAD_MB", "3.5")
    s = Settings()
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'd' / 'earthplat.db'}"
    assert s.max_upload_mb == 3.5
    assert s.project_dir(7) == tmp_path / "d" / "projects" / "7"


def test_postgres_url(monkeypatch):
    url = "postgresql+psycopg://u@db:5432/earthplat"
    monkeypatch.setenv("EARTHPLAT_DATABASE_URL", url)
    monkeypatch.setenv("EARTHPLAT_ADMIN_KEY", "ep_0123456789abcdef")
    s = Settings()
    assert s.resolved_database_url == url and s.admin_key == "ep_0123456789abcdef"
