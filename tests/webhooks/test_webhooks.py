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
