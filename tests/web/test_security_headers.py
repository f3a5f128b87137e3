"""Security headers on console, portal, API, static files and the middleware's own answers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from patron.app import create_app
from patron.config import Settings
from tests.conftest import make_settings


def _csp(response) -> dict[str, str]:
    directives = [d.strip() for d in response.headers["content-security-policy"].split(";")]
    return {d.split(" ", 1)[0]: d.partition(" ")[2] for d in directives if d}


def _assert_secured(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["x-frame-options"] == "DENY"
    csp = _csp(response)
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"


def test_every_kind_of_response_carries_the_headers(client, auth_headers):
    responses = {
        "api": client.get("/api/v1/members", headers=auth_headers("clerk")),
        "api error": client.get("/api/v1/members"),
        "health": client.get("/health"),
        "console": client.get("/console/login"),
        "portal": client.get("/portal/login"),
        "static": client.get("/static/patron.js"),
        "not found": client.get("/nothing-here"),
        "too large": client.post(
            "/api/v1/members",
            content=b"x" * 1_100_000,
            headers={**auth_headers("clerk"), "content-type": "application/json"},
        ),
        "NUL": client.get("/api/v1/members?q=%00", headers=auth_headers("clerk")),
    }
    assert responses["too large"].status_code == 413
    assert responses["NUL"].status_code == 422
    for name, r in responses.items():
        try:
            _assert_secured(r)
        except (AssertionError, KeyError) as exc:
            raise AssertionError(f"{name}: {r.status_code} {dict(r.headers)}") from exc
        assert "strict-transport-security" not in r.headers, name


def test_pages_run_only_their_own_scripts(client):
    csp = _csp(client.get("/console/login"))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline script, no eval, no third party
    assert csp["form-action"] == "'self'"
    page = client.get("/portal/login")
    assert "javascript:" not in page.text
    assert page.headers["permissions-policy"].startswith("camera=(self)")


def test_hsts_only_in_production_unless_configured(database, clock):
    assert Settings(env="production").hsts_enabled
    assert not Settings(env="development").hsts_enabled
    assert not Settings(env="production", hsts=False).hsts_enabled
    app = create_app(make_settings(database, hsts=True), database, clock)
    with TestClient(app) as c:
        r = c.get("/health")
    assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_pages_still_load_their_viewer(client, path):
    r = client.get(path)
    assert r.status_code == 200
    _assert_secured(r)
    assert "https://cdn.jsdelivr.net" in _csp(r)["script-src"]
