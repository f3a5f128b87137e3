"""Sign-in that tells nobody which accounts exist, throttles addresses rather than accounts,
and revokes tokens exactly (not to the second)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.auth import service as auth_service
from patron.auth.models import LoginFailure

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/auth/me"
PASSWORD = "a long passphrase"


@pytest.fixture
def staff(client, auth_headers):
    admin = auth_headers("admin")
    r = client.post(
        "/api/v1/staff",
        json={"username": "li.na", "display_name": "李娜", "role": "admin", "password": PASSWORD},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.json(), admin


@pytest.fixture
def attacker(app):
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.9", 40000)) as c:
        yield c


def _login(c, password=PASSWORD, username="li.na"):
    return c.post(TOKEN, json={"username": username, "password": password})


def _bearer(response):
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _error(response):
    """The error without its request id: what tells one refusal from another."""
    body = response.json()["error"]
    body.pop("request_id", None)
    return response.status_code, body, response.headers.get("www-authenticate")


def test_a_throttled_address_cannot_lock_the_account_out(client, attacker, staff, clock, database):
    limit = client.app.state.settings.login_max_failures
    for _ in range(limit):
        assert _error(_login(attacker, "wrong password!"))[1]["code"] == "invalid_credentials"
    # The attacker's address is now refused even with the right password, and says so in
    # the same words as a wrong password...
    assert _error(_login(attacker)) == _error(_login(attacker, "wrong password!"))
    # ...while the account's owner, from another address, signs in.
    mine = _login(client)
    assert mine.status_code == 200, mine.text
    assert client.get(ME, headers=_bearer(mine)).status_code == 200
    with database.unit_of_work() as s:  # every failure was committed despite the 401
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == limit + 2
    # Failures age out of the window; then the address may try again.
    clock.advance(timedelta(minutes=client.app.state.settings.login_lockout_minutes, seconds=1))
    assert _login(attacker).status_code == 200
    assert _login(client, "wrong password!").status_code == 401
    with database.unit_of_work() as s:  # a new failure pruned the stale ones
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 1


def test_unknown_locked_and_wrong_answer_alike_after_one_hash_check(
    client, attacker, staff, monkeypatch
):
    checks: list[str] = []
    real = auth_service._verify

    def counting(password_hash: str, password: str) -> bool:
        checks.append("dummy" if password_hash == auth_service._DUMMY_HASH else "user")
        return real(password_hash, password)

    monkeypatch.setattr(auth_service, "_verify", counting)
    unknown = _error(_login(client, username="nobody"))
    wrong = _error(_login(client, "wrong password!"))
    assert unknown == wrong
    assert unknown[1]["code"] == "invalid_credentials"
    assert checks == ["dummy", "user"]
    limit = client.app.state.settings.login_max_failures
    for _ in range(limit):
        _login(attacker, "wrong password!")
    checks.clear()
    assert _error(_login(attacker)) == wrong  # throttled: the right password is not even tried
    assert _error(_login(attacker, username="nobody")) == wrong
    assert checks == ["dummy", "dummy"]


def test_the_console_sign_in_is_throttled_per_address_too(app, client, staff):
    from tests.web.test_pages import _csrf

    def sign_in(c: TestClient, password: str) -> tuple[int, list[str]]:
        form = c.get("/console/login")
        r = c.post(
            "/console/login",
            data={"username": "li.na", "password": password, "csrf_token": _csrf(form.text)},
            follow_redirects=False,
        )
        return r.status_code, re.findall(r'data-error-for="form">(.*?)<', r.text)

    limit = app.state.settings.login_max_failures
    with TestClient(app, raise_server_exceptions=False, client=("198.51.100.7", 1)) as other:
        for _ in range(limit):
            wrong = sign_in(other, "wrong password!")
            assert wrong[0] == 401
        assert sign_in(other, PASSWORD) == wrong  # the same page as a wrong password
    assert sign_in(client, PASSWORD) == (303, [])


def test_an_ipv6_attacker_cannot_rotate_addresses_within_its_network(app, client, staff):
    # One IPv6 customer holds a whole /64: counted per address, each of its 2**64 addresses
    # had its own failures, so the password could be guessed without end.
    limit = app.state.settings.login_max_failures
    for n in range(limit):
        host = f"2001:db8:1:2::{n + 1:x}"
        with TestClient(app, raise_server_exceptions=False, client=(host, 1)) as c:
            assert _login(c, "wrong password!").status_code == 401
    with TestClient(app, raise_server_exceptions=False, client=("2001:db8:1:2:ffff::9", 1)) as c:
        assert _error(_login(c)) == _error(_login(c, "wrong password!"))
    # the next network, and IPv4 clients, are counted on their own
    with TestClient(app, raise_server_exceptions=False, client=("2001:db8:1:3::1", 1)) as c:
        assert _login(c).status_code == 200
    assert _login(client).status_code == 200


# ---- revocation is exact --------------------------------------------------------------------


def test_a_password_change_in_the_same_second_ends_older_tokens_only(
    client, staff, clock, auth_headers
):
    user, admin = staff
    clock.advance(timedelta(milliseconds=100))
    before = _bearer(_login(client))
    clock.advance(timedelta(milliseconds=300))  # same second
    r = client.patch(
        f"/api/v1/staff/{user['id']}", json={"password": "another passphrase"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert client.get(ME, headers=before).status_code == 401
    clock.advance(timedelta(milliseconds=300))  # still the same second
    after = _bearer(_login(client, "another passphrase"))
    assert client.get(ME, headers=after).status_code == 200


def test_deactivation_in_the_same_second_ends_older_tokens_for_good(client, staff, clock):
    user, admin = staff
    clock.advance(timedelta(milliseconds=100))
    before = _bearer(_login(client))
    clock.advance(timedelta(milliseconds=100))
    assert (
        client.patch(
            f"/api/v1/staff/{user['id']}", json={"is_active": False}, headers=admin
        ).status_code
        == 200
    )
    clock.advance(timedelta(milliseconds=100))
    assert (
        client.patch(
            f"/api/v1/staff/{user['id']}", json={"is_active": True}, headers=admin
        ).status_code
        == 200
    )
    # reactivated within the same second: tokens from before the deactivation stay dead
    assert client.get(ME, headers=before).status_code == 401
    clock.advance(timedelta(milliseconds=100))
    assert client.get(ME, headers=_bearer(_login(client))).status_code == 200


def test_a_token_without_a_generation_is_refused(client, staff, app):
    import jwt

    from patron.auth.service import TOKEN_ALGORITHM

    token = _login(client).json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims["gen"]
    forged = jwt.encode(claims, app.state.keys["token_key"], algorithm=TOKEN_ALGORITHM)
    assert client.get(ME, headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_console_sign_out_in_the_same_second_ends_a_copied_cookie(client, database, clock):
    from tests.web.test_pages import _csrf, _sign_in, _staff

    user = _staff(database, clock)
    clock.advance(timedelta(milliseconds=100))
    assert _sign_in(client, user).status_code == 303
    copied = client.cookies.get("patron_console")
    page = client.get("/console/")
    clock.advance(timedelta(milliseconds=300))  # same second
    client.post("/console/logout", data={"csrf_token": _csrf(page.text)})
    client.cookies.set("patron_console", copied, path="/console")
    assert client.get("/console/", follow_redirects=False).status_code == 303
    # and the sign-in right after it, still in that second, holds (renewals included)
    clock.advance(timedelta(milliseconds=300))
    client.cookies.clear()
    assert _sign_in(client, user).status_code == 303
    assert client.get("/console/", follow_redirects=False).status_code == 200
    clock.advance(timedelta(minutes=20))  # past a fifth of the session: renewed
    assert client.get("/console/", follow_redirects=False).status_code == 200


def test_attempts_at_once_from_one_address_do_not_slip_past_the_limit(
    pg_database, clock, monkeypatch
):
    """Six wrong passwords posted at the same moment from one address with a limit of three:
    exactly three are checked against the real hash; the rest are refused unchecked."""
    import threading

    from patron.app import create_app
    from patron.auth.principal import Principal
    from tests.conftest import make_settings

    app = create_app(make_settings(pg_database, login_max_failures=3), pg_database, clock)
    with pg_database.unit_of_work() as s:
        auth_service.create_staff(
            s,
            Principal.system("tests"),
            username="li.na",
            display_name="李娜",
            role="admin",
            password=PASSWORD,
            now=clock.now(),
        )
    checks: list[str] = []
    real = auth_service._verify

    def counting(password_hash: str, password: str) -> bool:
        checks.append("dummy" if password_hash == auth_service._DUMMY_HASH else "user")
        return real(password_hash, password)

    monkeypatch.setattr(auth_service, "_verify", counting)
    barrier = threading.Barrier(6)
    codes: list[int] = []

    def attempt() -> None:
        with TestClient(app, raise_server_exceptions=False, client=("203.0.113.5", 1)) as c:
            barrier.wait()
            codes.append(_login(c, "wrong password!").status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [401] * 6
    assert sorted(checks) == ["dummy"] * 3 + ["user"] * 3
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 6
