"""Webhooks: outbox in the same transaction, signed deliveries, retries with backoff, log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from patron.webhooks import service
from tests.factories import order_body
from tests.webhooks.conftest import LOOPBACK


def _deliver(app, when):
    return service.deliver_due(app.state.db, app.state.cipher, when, allowed=LOOPBACK)


def _subscribe(client, auth_headers, events, url):
    r = client.post(
        "/api/v1/webhooks",
        json={"url": url, "events": events},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_signed_delivery_of_order_events(
    client, auth_headers, shop, make_member, app, clock, receiver
):
    hook = _subscribe(client, auth_headers, ["order.recorded", "points.earned"], receiver.url)
    assert hook["secret"].startswith("whsec_")
    no = make_member()
    assert client.post("/api/v1/orders", json=order_body(no), headers=shop).status_code == 201
    report = _deliver(app, clock.now())
    assert report.delivered == 2
    kinds = sorted(r["headers"]["X-Patron-Event"] for r in receiver.requests)
    assert kinds == ["order.recorded", "points.earned"]
    for req in receiver.requests:
        body, signature = req["body"], req["headers"]["X-Patron-Signature"]
        assert req["headers"]["Host"] == f"127.0.0.1:{receiver.port}"
        now = int(clock.now().timestamp())
        assert service.verify(hook["secret"], signature, body, now)
        assert not service.verify("whsec_wrong", signature, body, now)
        assert not service.verify(hook["secret"], signature, body + b" ", now)
        doc = json.loads(body)
        assert doc["data"]["member_no"] == no
        assert "phone" not in json.dumps(doc)
    earned = next(json.loads(r["body"]) for r in receiver.requests if b"points.earned" in r["body"])
    assert earned["data"]["source_type"] == "order"
    assert earned["data"]["points"] > 0
    # Delivered once: a second run sends nothing.
    assert _deliver(app, clock.now()).delivered == 0
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth_headers("admin"))
    assert {d["status"] for d in log.json()["items"]} == {"delivered"}


def test_retries_with_backoff_then_dead(
    client, auth_headers, shop, make_member, app, clock, receiver
):
    hook = _subscribe(client, auth_headers, ["order.recorded"], receiver.url)
    no = make_member()
    client.post("/api/v1/orders", json=order_body(no), headers=shop)
    receiver.answer(*([(500, "<h1>internal admin page: db password hunter2</h1>")] * 10))
    assert _deliver(app, clock.now()).failed == 1
    # Not due again before the first backoff step.
    assert _deliver(app, clock.now() + timedelta(seconds=30)).failed == 0
    when = clock.now()
    for step in service.BACKOFF:
        when += step
        _deliver(app, when)
    assert len(receiver.requests) == service.MAX_ATTEMPTS
    log = client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth_headers("admin")
    ).json()
    item = log["items"][0]
    assert item["status"] == "dead"
    assert item["attempts"] == service.MAX_ATTEMPTS
    assert item["last_status_code"] == 500
    # Status, timing and an error class are kept; the reply itself never is.
    assert item["last_error"] == "http_status"
    assert isinstance(item["last_duration_ms"], int)
    assert "hunter2" not in json.dumps(log)


def test_no_event_when_the_change_fails(
    client, auth_headers, shop, make_member, app, clock, receiver
):
    _subscribe(client, auth_headers, ["order.recorded"], receiver.url)
    no = make_member()
    bad = {**order_body(no), "store_code": "NOPE"}
    assert client.post("/api/v1/orders", json=bad, headers=shop).status_code == 422
    _deliver(app, clock.now())
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://x.example.com/h", "events": ["order.recorded"]}, "invalid_url"),
        ({"url": "https://x.example.com/h", "events": ["order.eaten"]}, "unknown_event"),
        ({"url": "https://x.example.com/h", "events": []}, "unknown_event"),
    ],
)
def test_bad_endpoints_refused(client, auth_headers, body, code):
    r = client.post("/api/v1/webhooks", json=body, headers=auth_headers("admin"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == code
    assert client.get("/api/v1/webhooks", headers=auth_headers("admin")).json() == []


def test_only_admins_manage_webhooks(client, auth_headers):
    r = client.get("/api/v1/webhooks", headers=auth_headers("operator"))
    assert r.status_code == 403


def _earn(client, headers, no, source, points=10):
    body = {"points": points, "source_type": "order", "source_id": source}
    r = client.post(f"/api/v1/members/{no}/points/earn", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_event_log_pages_by_cursor_with_filters(
    client, auth_headers, api_key_headers, make_member, clock
):
    """A receiver that missed deliveries pages through every event since its last id —
    including events no endpoint subscribed to."""
    admin = auth_headers("admin")
    a, b = make_member(), make_member()
    for i in range(3):
        _earn(client, admin, a, f"A-{i}")
    spent = client.post(
        f"/api/v1/members/{b}/points/spend",
        json={"points": 1, "source_type": "mall", "source_id": "S-1"},
        headers=admin,
    )
    assert spent.status_code == 409  # nothing to spend: no change, no event
    _earn(client, admin, b, "B-1")
    erp = api_key_headers("events:read")
    seen, after = [], 0
    while True:
        r = client.get(f"/api/v1/events?after={after}&limit=2", headers=erp)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        after = int(page["next_cursor"])
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    earned = [e for e in seen if e["type"] == "points.earned"]
    assert [e["data"]["member_no"] for e in earned] == [a, a, a, b]
    assert {e["data"]["source_id"] for e in earned} == {"A-0", "A-1", "A-2", "B-1"}
    assert earned[0]["data"]["points"] == 10
    # Resuming from the last id seen returns nothing new; filters narrow by type and member.
    assert client.get(f"/api/v1/events?after={ids[-1]}", headers=erp).json()["items"] == []
    only_b = client.get(f"/api/v1/events?type=points.earned&member_no={b}", headers=erp).json()
    assert [e["data"]["source_id"] for e in only_b["items"]] == ["B-1"]
    bad = client.get("/api/v1/events?type=points.eaten", headers=erp)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_event"
    # Scope-protected: a clerk or a key without events:read cannot read it.
    assert client.get("/api/v1/events", headers=auth_headers("clerk")).status_code == 403
    assert client.get("/api/v1/events", headers=api_key_headers("points:read")).status_code == 403


def test_resend_one_delivery_is_audited(client, auth_headers, make_member, app, clock, receiver):
    admin = auth_headers("admin")
    hook = _subscribe(client, auth_headers, ["points.earned"], receiver.url)
    _earn(client, admin, make_member(), "R-1")
    assert _deliver(app, clock.now()).delivered == 1
    item = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=admin).json()["items"][0]
    r = client.post(f"/api/v1/webhooks/deliveries/{item['id']}/resend", headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    assert _deliver(app, clock.now()).delivered == 1
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    audit = client.get("/api/v1/audit?action=webhook.resend", headers=admin).json()
    assert [a["entity_id"] for a in audit["items"]] == [str(hook["id"])]
    missing = client.post("/api/v1/webhooks/deliveries/999999/resend", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "delivery_not_found"
    assert (
        client.post(
            f"/api/v1/webhooks/deliveries/{item['id']}/resend", headers=auth_headers("operator")
        ).status_code
        == 403
    )
    client.delete(f"/api/v1/webhooks/{hook['id']}", headers=admin)
    gone = client.post(f"/api/v1/webhooks/deliveries/{item['id']}/resend", headers=admin)
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "webhook_inactive"
