"""``api.web``: the built UI is served at ``/`` without shadowing the API, and ``/docs`` from the
build's own Swagger UI files (no CDN); without a build, ``/`` and ``/docs`` say how to make one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

KEY = "ep_test_admin_key_0123456789abcdef"


@pytest.fixture
def make_client(tmp_path: Path, monkeypatch):
    from api.main import create_app
    from api.settings import Settings

    def make(dist: Path) -> TestClient:
        monkeypatch.setenv("EARTHPLAT_WEB_DIST", str(dist))
        settings = Settings(data_dir=tmp_path / "data", admin_key=KEY)
        return TestClient(create_app(settings))

    return make


def test_missing_build_answers_with_a_fix(make_client, tmp_path: Path):
    with make_client(tmp_path / "nowhere") as client:
        r = client.get("/")
        assert r.status_code == 503
        body = r.json()
        assert "not built" in body["detail"] and "make web" in body["fix"]
        assert client.get("/api/v1/health").status_code == 200


def test_built_ui_is_served_and_the_api_still_answers(make_client, tmp_path: Path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>earthplat</title>")
    (dist / "assets" / "app.js").write_text("console.log('ui')")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("top secret")
    (dist / "metrics").write_text("a UI file must never shadow an API route")
    with make_client(dist) as client:
        r = client.get("/")
        assert r.status_code == 200 and "<title>earthplat</title>" in r.text
        assert client.get("/assets/app.js").text == "console.log('ui')"
        assert client.get("/api/v1/health").json()["status"] == "ok"
        assert client.get("/docs").status_code == 503  # this build has no dist/swagger/
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/metrics").status_code == 200
        r = client.get("/api/v1/projects")  # no key: the API's own JSON error, not a UI file
        assert r.status_code == 401 and "fix" in r.json()
        r = client.get("/no-such-file.js")
        assert r.status_code == 404 and set(r.json()) == {"detail", "fix"}
        assert client.get("/favicon.svg").text == "<svg/>"
        assert "shadow" not in client.get("/metrics").text
        # the API's own routing is untouched by the UI: redirects and 405s stay
        r = client.get("/api/v1/projects/", follow_redirects=False)
        assert r.status_code == 307
        assert client.post("/api/v1/health").status_code == 405
        r = client.get("/assets/%2e%2e/%2e%2e/secret.txt")  # no escape from the build dir
        assert r.status_code == 404 and "top secret" not in r.text


def _fake_swagger(dist: Path) -> dict[str, bytes]:
    from api.web import SWAGGER_FILES

    (dist / "swagger").mkdir(parents=True)
    files = {name: f"fake {name}".encode() for name in SWAGGER_FILES}
    for name, body in files.items():
        (dist / "swagger" / name).write_bytes(body)
    return files


def test_docs_load_only_local_assets(make_client, tmp_path: Path):
    dist = tmp_path / "dist"
    files = _fake_swagger(dist)
    (dist / "index.html").write_text("<!doctype html><title>earthplat</title>")
    with make_client(dist) as client:
        r = client.get("/docs")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        html = r.text
        assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert sorted(urls) == sorted(["/openapi.json", *(f"/swagger/{name}" for name in files)]), (
            urls
        )
        for url in urls:
            r = client.get(url)
            assert r.status_code == 200, url
            if url.startswith("/swagger/"):
                assert r.content == files[url.rsplit("/", 1)[1]]
        assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: off
        assert client.get("/").status_code == 200  # the UI is still served beside the docs


def test_docs_without_the_swagger_build_answer_with_a_fix(make_client, tmp_path: Path):
    dist = tmp_path / "dist"
    (dist / "swagger").mkdir(parents=True)
    (dist / "swagger" / "swagger-ui.css").write_text("half a build")
    with make_client(dist) as client:
        r = client.get("/docs")
        assert r.status_code == 503
        body = r.json()
        assert "swagger-ui-bundle.js is missing" in body["detail"], body
        assert "make web" in body["fix"] and "/openapi.json" in body["fix"]
        assert client.get("/openapi.json").status_code == 200
