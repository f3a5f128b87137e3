"""Webhooks: outbox in the same transaction, signed deliveries, retries with backoff, log."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from patron.webhooks import service
from tests.factories import order_body


class Receiver:
    """An in-process HTTP receiver: answers with the queued status codes, records requests."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        code = self.statuses.pop(0) if self.statuses else 200
        return httpx.Response(code, text="ok" if code < 300 else "try later")


def _subscribe(client, auth_headers, events):
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://erp.example.com/hook", "events": events},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_signed_delivery_of_order_events(client, auth_headers, shop, make_member, app, clock):
    hook = _subscribe(client, auth_headers, ["order.recorded", "points.earned"])
    assert hook["secret"].startswith("whsec_")
    no = make_member()
    assert client.post("/api/v1/orders", json=order_body(no), headers=shop).status_code == 201
    receiver = Receiver([200, 200])
    with httpx.Client(transport=httpx.MockTransport(receiver)) as http:
        report = service.deliver_due(app.state.db, app.state.cipher, clock.now(), client=http)
    assert report.delivered == 2
    kinds = sorted(r.headers["X-Patron-Event"] for r in receiver.requests)
    assert kinds == ["order.recorded", "points.earned"]
    for req in receiver.requests:
        body = req.content
        now = int(clock.now().timestamp())
        assert service.verify(hook["secret"], req.headers["X-Patron-Signature"], body, now)
        assert not service.verify("whsec_wrong", req.headers["X-Patron-Signature"], body, now)
        assert not service.verify(
            hook["secret"], req.headers["X-Patron-Signature"], body + b" ", now
        )
        doc = json.loads(body)
        assert doc["data"]["member_no"] == no
        assert "phone" not in json.dumps(doc)
    # Delivered once: a second run sends nothing.
    with httpx.Client(transport=httpx.MockTransport(receiver)) as http:
        assert (
            service.deliver_due(app.state.db, app.state.cipher, clock.now(), client=http).delivered
            == 0
        )
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth_headers("admin"))
    assert {d["status"] for d in log.json()["items"]} == {"delivered"}


def test_retries_with_backoff_then_dead(client, auth_headers, shop, make_member, app, clock):
    hook = _subscribe(client, auth_headers, ["order.recorded"])
    no = make_member()
    client.post("/api/v1/orders", json=order_body(no), headers=shop)
    receiver = Receiver([500] * 10)
    db, cipher = app.state.db, app.state.cipher
    with httpx.Client(transport=httpx.MockTransport(receiver)) as http:
        assert service.deliver_due(db, cipher, clock.now(), client=http).failed == 1
        # Not due again before the first backoff step.
        assert (
            service.deliver_due(db, cipher, clock.now() + timedelta(seconds=30), client=http).failed
            == 0
        )
        when = clock.now()
        for step in service.BACKOFF:
            when += step
            service.deliver_due(db, cipher, when, client=http)
    assert len(receiver.requests) == service.MAX_ATTEMPTS
    log = client.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth_headers("admin")
    ).json()
    item = log["items"][0]
    assert item["status"] == "dead"
    assert item["attempts"] == service.MAX_ATTEMPTS
    assert item["last_status_code"] == 500


def test_no_event_when_the_change_fails(client, auth_headers, shop, make_member, app, clock):
    _subscribe(client, auth_headers, ["order.recorded"])
    no = make_member()
    bad = {**order_body(no), "store_code": "NOPE"}
    assert client.post("/api/v1/orders", json=bad, headers=shop).status_code == 422
    receiver = Receiver([])
    with httpx.Client(transport=httpx.MockTransport(receiver)) as http:
        service.deliver_due(app.state.db, app.state.cipher, clock.now(), client=http)
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
