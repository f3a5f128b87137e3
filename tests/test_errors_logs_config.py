"""One error shape, request ids, logs without personal data, configuration safety."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from patron.app import create_app
from patron.config import ConfigError, Settings


def test_every_error_has_the_same_shape(client, auth_headers):
    responses = [
        client.get("/api/v1/nothing-here"),
        client.get("/api/v1/members"),
        client.get("/api/v1/staff", headers=auth_headers("clerk")),
        client.post("/api/v1/members", json={"phone": "x"}, headers=auth_headers("clerk")),
        client.post(
            "/api/v1/members",
            content=b"{not json",
            headers={**auth_headers("clerk"), "content-type": "application/json"},
        ),
        client.delete("/health"),
    ]
    codes = []
    for r in responses:
        assert 400 <= r.status_code < 500
        err = r.json()["error"]
        assert set(err) == {"code", "message", "details", "request_id"}
        assert err["message"]
        assert err["request_id"] == r.headers["x-request-id"]
        codes.append(err["code"])
    assert codes == [
        "not_found",
        "not_authenticated",
        "forbidden",
        "validation_error",
        "validation_error",
        "method_not_allowed",
    ]


def test_oversized_body_is_refused(client, auth_headers):
    big = b'{"phone": "' + b"1" * 1_100_000 + b'", "channel": "web"}'
    r = client.post(
        "/api/v1/members",
        content=big,
        headers={**auth_headers("clerk"), "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("idempotent", [False, True])
def test_oversized_chunked_body_is_refused_with_413(client, auth_headers, database, idempotent):
    """A streamed body has no Content-Length: the cap must still answer 413, not 400 or 500,
    whether the route or the Idempotency-Key hashing reads the body first."""

    def chunks():
        yield b'{"phone": "'
        for _ in range(20):
            yield b"1" * 65_536
        yield b'", "channel": "web"}'

    headers = {**auth_headers("clerk"), "content-type": "application/json"}
    if idempotent:
        headers["Idempotency-Key"] = "big-1"
    r = client.post("/api/v1/members", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM members")).scalar() == 0


def test_request_id_is_kept_and_logs_hold_no_personal_data(
    settings, database, clock, auth_headers, capsys
):
    # An app logging at INFO, created while stderr is being captured.
    app = create_app(settings.model_copy(update={"log_level": "INFO"}), database, clock)
    client = TestClient(app)
    h = {**auth_headers("clerk"), "X-Request-ID": "trace-123"}
    r = client.post(
        "/api/v1/members",
        json={"phone": "13800138000", "channel": "web", "email": "zw@example.com", "name": "张伟"},
        headers=h,
    )
    assert r.headers["x-request-id"] == "trace-123"
    client.get("/api/v1/members?phone=13800138000", headers=h)
    logged = capsys.readouterr().err
    lines = [json.loads(ln) for ln in logged.splitlines() if ln.startswith("{")]
    requests = [ln for ln in lines if ln.get("event") == "request"]
    assert requests, logged
    assert {ln["request_id"] for ln in requests} == {"trace-123"}
    assert any(ln["path"] == "/api/v1/members" for ln in requests)
    for secret in ("13800138000", "zw@example.com", "张伟", "phone="):
        assert secret not in logged


KEY = base64.b64encode(b"q" * 32).decode()


def test_production_refuses_to_start_without_keys(tmp_path):
    s = Settings(env="production", key_file=tmp_path / "keys.json")
    with pytest.raises(ConfigError):
        s.keys()
    assert not (tmp_path / "keys.json").exists()
    good = Settings(env="production", data_key=KEY, index_key=KEY, token_key=KEY)
    assert len(good.keys()["data_key"]) == 32
    short = Settings(
        env="production", data_key=base64.b64encode(b"x").decode(), index_key=KEY, token_key=KEY
    )
    with pytest.raises(ConfigError):
        short.keys()


def test_development_generates_a_private_key_file_once(tmp_path):
    path = tmp_path / "var" / "keys.json"
    first = Settings(env="development", key_file=path).keys()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Settings(env="development", key_file=path).keys() == first


def test_unknown_timezone_is_refused():
    with pytest.raises(ValueError, match="business_timezone"):
        Settings(business_timezone="Mars/Olympus")


def test_an_unexpected_error_is_a_clean_500_with_the_request_id(app):
    def boom() -> None:
        raise RuntimeError("secret 13800138000")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom", headers={"X-Request-ID": "rid-500"})
    assert r.status_code == 500
    assert r.json()["error"] == {
        "code": "internal_error",
        "message": "Something went wrong on our side; it was logged.",
        "details": {},
        "request_id": "rid-500",
    }
    assert "13800138000" not in r.text


def test_a_value_the_database_refuses_is_bad_input_not_a_server_error(app):
    from sqlalchemy.exc import DataError

    def out_of_range() -> None:
        raise DataError("SELECT 1", {}, ValueError("integer out of range"))

    app.add_api_route("/out-of-range", out_of_range)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/out-of-range")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_value"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit?entity_type=%00&entity_id=x",
        "/api/v1/members?q=13%0000",
        "/api/v1/members/%00",
        "/console/members?q=%00",
        "/portal/login?x=%00",
    ],
)
def test_a_nul_character_in_the_address_is_refused_before_any_route(client, auth_headers, path):
    """PostgreSQL cannot compare text holding NUL (SQLite can): refused alike on both."""
    r = client.get(path, headers=auth_headers("admin"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_character"
