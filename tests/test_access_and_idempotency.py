"""Every route declares who may call it; Idempotency-Key semantics."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.app import create_app
from patron.members.models import Member
from patron.web.deps import Public, Require
from patron.web.pages import MemberPage, PublicPage, StaffPage

PAGE_MARKERS = (StaffPage, MemberPage, PublicPage)


def _markers(dependant):
    found = []
    stack = [dependant]
    while stack:
        d = stack.pop()
        if isinstance(d.call, (Require, Public, *PAGE_MARKERS)):
            found.append(d.call)
        stack.extend(d.dependencies)
    return found


def _api_routes(routes):
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # an included router, kept as a unit
            yield from _api_routes(r.original_router.routes)


def test_every_route_declares_exactly_one_access_rule(app, client):
    routes = list(_api_routes(app.routes))
    assert len(routes) > 30
    for route in routes:
        markers = _markers(route.dependant)
        assert len(markers) == 1, (route.path, route.methods, markers)
        if isinstance(markers[0], (StaffPage, MemberPage)):
            # A page without a session goes to sign-in, whatever the method.
            path = route.path
            for part in ("member_no", "source", "external_id", "sku", "code", "tag", "name"):
                path = path.replace("{" + part + "}", "1234567897" if part == "member_no" else "x")
            path = path.replace("{", "").replace("}", "").replace("_id", "1").replace("id", "1")
            for method in route.methods:
                r = client.request(method, path, follow_redirects=False)
                assert r.status_code in (303, 405, 422), (method, path, r.status_code)
                if r.status_code == 303:
                    assert "/login" in r.headers["location"]
        if isinstance(markers[0], Require):
            # And without credentials the route refuses.
            path = route.path
            for name in ("member_no", "source", "external_id", "sku", "code", "tag"):
                path = path.replace("{" + name + "}", "1234567897" if name == "member_no" else "x")
            path = path.replace("{", "").replace("}", "")
            for method in route.methods:
                r = client.request(method, path.replace("_id", "1").replace("id", "1"))
                assert r.status_code in (401, 404, 405, 422), (method, path, r.status_code)
                if r.status_code != 422:
                    assert r.status_code != 200


def test_idempotent_retry_replays_the_first_response(client, auth_headers, database):
    h = {**auth_headers("clerk"), "Idempotency-Key": "reg-42"}
    body = {"phone": "13800138000", "channel": "web"}
    first = client.post("/api/v1/members", json=body, headers=h)
    again = client.post("/api/v1/members", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == 1
    other = client.post("/api/v1/members", json={**body, "name": "x"}, headers=h)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_keys_are_per_caller_and_failures_do_not_burn_them(client, auth_headers):
    clerk = {**auth_headers("clerk"), "Idempotency-Key": "k1"}
    operator = {**auth_headers("operator"), "Idempotency-Key": "k1"}
    bad = client.post("/api/v1/members", json={"phone": "123", "channel": "web"}, headers=clerk)
    assert bad.status_code == 422
    ok = client.post(
        "/api/v1/members", json={"phone": "13800138000", "channel": "web"}, headers=clerk
    )
    assert ok.status_code == 201
    # The same key from another caller is that caller's own key.
    r = client.post(
        "/api/v1/members", json={"phone": "13900139000", "channel": "web"}, headers=operator
    )
    assert r.status_code == 201
    r = client.post(
        "/api/v1/members",
        json={"phone": "1", "channel": "web"},
        headers={**clerk, "Idempotency-Key": "x" * 300},
    )
    assert r.status_code == 422


def test_keys_are_durable_across_processes(client, auth_headers, settings, database, clock):
    h = {**auth_headers("clerk"), "Idempotency-Key": "durable"}
    body = {"phone": "13800138000", "channel": "web"}
    first = client.post("/api/v1/members", json=body, headers=h).json()
    with TestClient(create_app(settings, database, clock)) as other:
        again = other.post("/api/v1/members", json=body, headers=h)
    assert again.json() == first


def test_stored_responses_are_sealed_and_bound_to_their_key(client, auth_headers, database, app):
    """The stored response (unmasked for an admin) is encrypted at rest, replays byte for byte,
    and a sealed body moved to another key's row does not open there."""
    from cryptography.exceptions import InvalidTag

    from patron.idempotency import service as idempotency
    from patron.idempotency.models import IdempotencyKey

    h = {**auth_headers("admin"), "Idempotency-Key": "seal-1"}
    body = {"phone": "13800138000", "channel": "web", "email": "zw@example.com"}
    first = client.post("/api/v1/members", json=body, headers=h)
    assert first.status_code == 201 and "zw@example.com" in first.text
    other = {"phone": "13900139000", "channel": "web"}
    second = client.post("/api/v1/members", json=other, headers={**h, "Idempotency-Key": "seal-2"})
    assert second.status_code == 201
    with database.unit_of_work() as s:
        rows = {r.key: r for r in s.scalars(select(IdempotencyKey))}
        stored = rows["seal-1"].response_body or ""
        assert stored.startswith("sealed:")
        assert "13800138000" not in stored and "zw@example.com" not in stored
        assert idempotency.unseal(app.state.cipher, rows["seal-1"]) == first.content
        moved = rows["seal-2"]
        moved.response_body = stored
        try:
            idempotency.unseal(app.state.cipher, moved)
        except InvalidTag:
            pass
        else:  # pragma: no cover
            raise AssertionError("a sealed body opened under another key")
        s.rollback()
    again = client.post("/api/v1/members", json=body, headers=h)
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.status_code, again.content) == (201, first.content)


def test_responses_stored_before_sealing_still_replay(client, auth_headers, database):
    from sqlalchemy import update

    from patron.idempotency.models import IdempotencyKey

    h = {**auth_headers("clerk"), "Idempotency-Key": "legacy-1"}
    body = {"phone": "13800138000", "channel": "web"}
    first = client.post("/api/v1/members", json=body, headers=h)
    assert first.status_code == 201
    with database.unit_of_work() as s:  # as a row written by the previous release
        s.execute(update(IdempotencyKey).values(response_body=first.text))
    again = client.post("/api/v1/members", json=body, headers=h)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
