"""Sign-in, tokens, roles, API keys."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from patron.auth.models import ApiKey

TOKEN = "/api/v1/auth/token"


@pytest.fixture
def staff(client, auth_headers):
    admin = auth_headers("admin")
    r = client.post(
        "/api/v1/staff",
        json={
            "username": "li.na",
            "display_name": "李娜",
            "role": "clerk",
            "password": "a long passphrase",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.json(), admin


def _login(client, password="a long passphrase", username="li.na"):
    return client.post(TOKEN, json={"username": username, "password": password})


def test_sign_in_and_me(client, staff):
    r = _login(client)
    assert r.status_code == 200
    body = r.json()
    assert body["role"] == "clerk"
    assert body["expires_in"] == 30 * 60
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["label"] == "li.na"
    assert "staff:admin" not in me.json()["permissions"]


def test_tokens_expire_and_are_revoked(client, staff, clock, auth_headers):
    user, admin = staff
    token = _login(client).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=h).status_code == 200
    clock.advance(timedelta(minutes=31))
    r = client.get("/api/v1/auth/me", headers=h)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_token"
    token = _login(client).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    admin = auth_headers("admin", fresh=True)
    clock.advance(timedelta(seconds=5))
    # A password change revokes tokens issued before it.
    client.patch(
        f"/api/v1/staff/{user['id']}", json={"password": "another passphrase"}, headers=admin
    )
    assert client.get("/api/v1/auth/me", headers=h).status_code == 401
    token = _login(client, "another passphrase").json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    clock.advance(timedelta(seconds=5))
    client.patch(f"/api/v1/staff/{user['id']}", json={"is_active": False}, headers=admin)
    assert client.get("/api/v1/auth/me", headers=h).status_code == 401
    assert _login(client, "another passphrase").json()["error"]["code"] == "account_disabled"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Basic abc"},
        {"X-API-Key": "ptn_nope_nope"},
        {"X-API-Key": "x" * 500},
    ],
)
def test_missing_or_wrong_credentials(client, headers):
    r = client.get("/api/v1/members", headers=headers)
    assert r.status_code in (401, 403)
    assert r.json()["error"]["code"] in ("not_authenticated", "invalid_token", "invalid_api_key")


@pytest.mark.parametrize(
    ("role", "method", "path", "allowed"),
    [
        ("clerk", "get", "/api/v1/staff", False),
        ("clerk", "get", "/api/v1/audit", False),
        ("clerk", "get", "/api/v1/api-keys", False),
        ("clerk", "put", "/api/v1/tiers", False),
        ("analyst", "post", "/api/v1/members", False),
        ("analyst", "get", "/api/v1/audit", True),
        ("operator", "get", "/api/v1/staff", False),
        ("operator", "get", "/api/v1/members", True),
        ("admin", "get", "/api/v1/staff", True),
    ],
)
def test_roles(client, auth_headers, role, method, path, allowed):
    body = {"json": {"phone": "13800138000", "channel": "web"}} if method in ("post",) else {}
    if method == "put":
        body = {"json": {}}
    r = getattr(client, method)(path, headers=auth_headers(role), **body)
    if allowed:
        assert r.status_code < 400, r.text
    else:
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "forbidden"


def test_api_keys_are_shown_once_stored_hashed_scoped_and_revocable(client, auth_headers, database):
    admin = auth_headers("admin")
    r = client.post(
        "/api/v1/api-keys", json={"name": "POS", "scopes": ["members:read"]}, headers=admin
    )
    assert r.status_code == 201
    key = r.json()
    secret = key["key"]
    listed = client.get("/api/v1/api-keys", headers=admin).json()
    assert "key" not in listed[0]
    with database.unit_of_work() as s:
        dump = " ".join(str(row) for row in s.execute(text("SELECT * FROM api_keys")).all())
        assert secret not in dump
        assert s.scalar(select(ApiKey.key_hash)) != secret
    h = {"X-API-Key": secret}
    assert client.get("/api/v1/members", headers=h).status_code == 200
    r = client.post("/api/v1/members", json={"phone": "13800138000", "channel": "web"}, headers=h)
    assert r.status_code == 403
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin).status_code == 200
    assert client.get("/api/v1/members", headers=h).status_code == 401
    r = client.post(
        "/api/v1/api-keys", json={"name": "evil", "scopes": ["staff:admin"]}, headers=admin
    )
    assert r.json()["error"]["code"] == "unknown_scope"


def test_the_last_admin_stays(client, auth_headers):
    admin = auth_headers("admin")
    me = client.get("/api/v1/auth/me", headers=admin).json()
    r = client.patch(f"/api/v1/staff/{me['id']}", json={"role": "clerk"}, headers=admin)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "last_admin"
    r = client.patch(f"/api/v1/staff/{me['id']}", json={"is_active": False}, headers=admin)
    assert r.json()["error"]["code"] == "cannot_deactivate_self"
    r = client.post(
        "/api/v1/staff",
        json={"username": "xavier", "display_name": "x", "role": "clerk", "password": "short"},
        headers=admin,
    )
    assert r.json()["error"]["code"] == "weak_password"


def test_an_api_key_records_its_use_hourly_from_the_read_that_checked_it(
    client, database, clock, api_key_headers, make_member
):
    """The first call records when the key was used; calls within the hour write nothing and
    read the key once (the lookup that checked it); the first call after the hour records
    again."""
    from tests.statements import count_statements

    no = make_member()
    headers = api_key_headers("members:read")

    def used_at():
        with database.unit_of_work() as s:
            return s.scalar(select(ApiKey.last_used_at).where(ApiKey.name == "test"))

    assert used_at() is None
    first = clock.now()
    assert client.get(f"/api/v1/members/{no}", headers=headers).status_code == 200
    assert used_at() == first
    clock.advance(timedelta(minutes=59))
    with count_statements(database.engine) as log:
        assert client.get(f"/api/v1/members/{no}", headers=headers).status_code == 200
    keys = [s for s in log.statements if "api_keys" in s]
    assert len(keys) == 1 and keys[0].startswith("SELECT"), log.report()
    assert used_at() == first
    clock.advance(timedelta(minutes=2))
    assert client.get(f"/api/v1/members/{no}", headers=headers).status_code == 200
    assert used_at() == clock.now()
