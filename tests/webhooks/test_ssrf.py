"""Webhooks reach public addresses only (unless an operator allows a network), checked when the
endpoint is created and again at every delivery, connecting to the address that was checked."""

from __future__ import annotations

import ipaddress
import json

import pytest
from fastapi.testclient import TestClient

from patron.app import create_app
from patron.webhooks import egress, service
from tests.conftest import make_settings
from tests.webhooks.conftest import LOOPBACK

REFUSED = [
    "http://127.0.0.1/hook",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://localhost:8000/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/admin",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://[fd00::1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:7f00:1::]/",
]


@pytest.fixture
def strict_client(database, clock):
    """An app with the default settings: no network allowed besides public addresses."""
    with TestClient(
        create_app(make_settings(database), database, clock), raise_server_exceptions=False
    ) as c:
        yield c


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_destinations_are_refused_at_creation(strict_client, auth_headers, app, url):
    r = strict_client.post(
        "/api/v1/webhooks",
        json={"url": url, "events": ["order.recorded"]},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 422, r.text
    # httpx does not parse the octal spelling at all: refused as an invalid URL
    expected = "invalid_url" if "0177" in url else "webhook_destination_refused"
    assert r.json()["error"]["code"] == expected
    assert strict_client.get("/api/v1/webhooks", headers=auth_headers("admin")).json() == []


def test_loopback_refused_without_the_allow_list(strict_client, auth_headers, receiver, app):
    r = strict_client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "events": ["points.earned"]},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "webhook_destination_refused"


def _subscribe(client, auth_headers, url, events=("points.earned",)):
    r = client.post(
        "/api/v1/webhooks", json={"url": url, "events": list(events)}, headers=auth_headers("admin")
    )
    assert r.status_code == 201, r.text
    return r.json()


def _earn(client, auth_headers, make_member, source="E-1"):
    no = make_member()
    r = client.post(
        f"/api/v1/members/{no}/points/earn",
        json={"points": 10, "source_type": "order", "source_id": source},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 201, r.text
    return no


def _log(client, auth_headers, hook):
    r = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth_headers("admin"))
    return r.json()["items"]


def test_delivery_rechecks_the_destination(client, auth_headers, make_member, app, clock, receiver):
    """Created while 127.0.0.1 was allowed; with the allow-list gone nothing is sent."""
    hook = _subscribe(client, auth_headers, receiver.url)
    _earn(client, auth_headers, make_member)
    report = service.deliver_due(app.state.db, app.state.cipher, clock.now(), allowed=[])
    assert (report.delivered, report.failed) == (0, 1)
    assert receiver.requests == []
    assert _log(client, auth_headers, hook)[0]["last_error"] == "refused_destination"


def test_connects_to_the_checked_address_with_the_original_host(
    client, auth_headers, make_member, app, clock, receiver
):
    """A name is resolved once and the request goes to that address (DNS rebinding cannot
    switch it between check and connect); the Host header keeps the name."""
    hook = _subscribe(client, auth_headers, f"http://erp.example.test:{receiver.port}/hook")
    _earn(client, auth_headers, make_member)
    answers = iter([["127.0.0.1"], ["8.8.8.8"]])  # a second lookup would leave loopback

    def rebinding(host, port):
        assert (host, port) == ("erp.example.test", receiver.port)
        return next(answers)

    report = service.deliver_due(
        app.state.db, app.state.cipher, clock.now(), allowed=LOOPBACK, resolver=rebinding
    )
    assert report.delivered == 1
    assert receiver.requests[0]["headers"]["Host"] == f"erp.example.test:{receiver.port}"
    assert _log(client, auth_headers, hook)[0]["status"] == "delivered"


@pytest.mark.parametrize(
    "answer", [["10.1.2.3"], ["8.8.8.8", "127.0.0.1"], ["::ffff:169.254.169.254"], []]
)
def test_a_name_resolving_to_any_private_address_is_refused(
    client, auth_headers, make_member, app, clock, receiver, answer
):
    hook = _subscribe(client, auth_headers, f"http://erp.example.test:{receiver.port}/hook")
    _earn(client, auth_headers, make_member)
    report = service.deliver_due(
        app.state.db, app.state.cipher, clock.now(), allowed=[], resolver=lambda h, p: answer
    )
    assert report.failed == 1 and receiver.requests == []
    expected = "unresolvable" if not answer else "refused_destination"
    assert _log(client, auth_headers, hook)[0]["last_error"] == expected


def test_redirects_are_not_followed(client, auth_headers, make_member, app, clock, receiver):
    hook = _subscribe(client, auth_headers, receiver.url)
    _earn(client, auth_headers, make_member)
    receiver.answer((302, "moved", {"Location": "http://169.254.169.254/latest/meta-data/"}))
    report = service.deliver_due(app.state.db, app.state.cipher, clock.now(), allowed=LOOPBACK)
    assert report.failed == 1
    assert len(receiver.requests) == 1
    item = _log(client, auth_headers, hook)[0]
    assert (item["last_status_code"], item["last_error"]) == (302, "redirect")
    assert "moved" not in json.dumps(item)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.com", None),
        ("cafe.be", None),
    ],
)
def test_literal_addresses_in_every_spelling(host, expected):
    found = egress.literal_address(host)
    assert (str(found) if found else None) == expected


def test_public_and_allowed_addresses():
    assert egress.is_public(ipaddress.ip_address("8.8.8.8"))
    assert egress.is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not egress.is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert egress.permitted(ipaddress.ip_address("10.2.3.4"), [ipaddress.ip_network("10.0.0.0/8")])
    assert egress.permitted(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK)
    assert not egress.permitted(ipaddress.ip_address("127.0.0.2"), LOOPBACK)


def test_tls_keeps_the_name_for_sni_and_certificate_checks():
    target = egress.resolve("https://erp.example.test/hook", [], lambda h, p: ["93.184.216.34"])
    url, headers, extensions = target.pinned()
    assert str(url) == "https://93.184.216.34/hook"
    assert headers == {"Host": "erp.example.test"}
    assert extensions == {"sni_hostname": "erp.example.test"}
