"""Audit trail (append-only, masked) and personal data at rest."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DatabaseError

from patron.audit.models import AuditRecord
from patron.db import Base
from patron.webhooks import service as webhooks
from tests.factories import order_body
from tests.web.test_portal_pages import portal_sign_in

PHONES = {"+8613800138000": "13800138000", "+8613912345678": "13912345678"}
EMAILS = ["zhang.wei@example.com", "li.na@example.org"]


def _spellings():
    for e164, national in PHONES.items():
        yield from (e164, national, f"{national[:3]} {national[3:7]} {national[7:]}")
    yield from EMAILS


def _register_known(client, auth_headers):
    h = auth_headers("clerk")
    for (e164, _), email in zip(PHONES.items(), EMAILS, strict=True):
        r = client.post(
            "/api/v1/members",
            json={"phone": e164, "channel": "web", "email": email, "name": "测试"},
            headers=h,
        )
        assert r.status_code == 201
        no = r.json()["member_no"]
        client.patch(f"/api/v1/members/{no}", json={"city": "上海"}, headers=h)


def test_changes_are_audited_with_personal_data_masked(client, auth_headers):
    _register_known(client, auth_headers)
    log = client.get("/api/v1/audit?entity_type=member", headers=auth_headers("admin")).json()
    actions = sorted(a["action"] for a in log["items"])
    assert actions.count("member.register") == 2
    assert actions.count("member.update") == 2
    reg = next(a for a in log["items"] if a["action"] == "member.register")
    assert reg["actor_type"] == "staff"
    assert reg["after"]["phone"].count("*") == 4
    assert reg["request_id"]
    update = next(a for a in log["items"] if a["action"] == "member.update")
    assert update["before"]["city"] is None
    assert update["after"]["city"] == "上海"
    body = str(log)
    for s in _spellings():
        assert s not in body
    assert client.get("/api/v1/audit", headers=auth_headers("clerk")).status_code == 403
    only = client.get("/api/v1/audit?action=member.update", headers=auth_headers("analyst")).json()
    assert {a["action"] for a in only["items"]} == {"member.update"}


def test_audit_rows_take_their_time_from_the_injected_clock(client, auth_headers, clock, database):
    """Every audited change carries the app's clock time (frozen here), never the wall clock's."""
    admin, clerk = auth_headers("admin"), auth_headers("clerk")  # staff.create at the start
    expected = {"staff.create": [clock.now(), clock.now()]}

    def step(action, method, url, **kwargs):
        # An odd step between changes, so each row's time is its own and never a round number.
        expected.setdefault(action, []).append(clock.advance(timedelta(minutes=1, seconds=7)))
        r = client.request(method, url, **kwargs)
        assert r.status_code in (200, 201), r.text
        return r.json()

    no = step(
        "member.register",
        "post",
        "/api/v1/members",
        json={"phone": "+8613800138000", "channel": "web"},
        headers=clerk,
    )["member_no"]
    step("member.update", "patch", f"/api/v1/members/{no}", json={"city": "上海"}, headers=clerk)
    step("member.tag_add", "post", f"/api/v1/members/{no}/tags", json={"tag": "VIP"}, headers=clerk)
    step("member.tag_remove", "delete", f"/api/v1/members/{no}/tags/VIP", headers=clerk)
    step(
        "tier.override",
        "post",
        f"/api/v1/members/{no}/tier/override",
        json={"tier": "gold", "reason": "tests"},
        headers=admin,
    )
    staff = step(
        "staff.create",
        "post",
        "/api/v1/staff",
        json={
            "username": "li.na",
            "display_name": "李娜",
            "role": "clerk",
            "password": "correct horse battery",
        },
        headers=admin,
    )
    step(
        "staff.update",
        "patch",
        f"/api/v1/staff/{staff['id']}",
        json={"role": "analyst"},
        headers=admin,
    )
    key = step(
        "apikey.create",
        "post",
        "/api/v1/api-keys",
        json={"name": "POS", "scopes": ["members:read"]},
        headers=admin,
    )
    step("apikey.revoke", "delete", f"/api/v1/api-keys/{key['id']}", headers=admin)

    with database.unit_of_work() as s:
        rows = list(s.scalars(select(AuditRecord).order_by(AuditRecord.id)))
    got: dict[str, list[datetime]] = {}
    for row in rows:
        got.setdefault(row.action, []).append(row.at)
    assert {a: got.get(a) for a in expected} == expected
    instants = {t for times in expected.values() for t in times}
    assert {row.at for row in rows} <= instants
    listed = client.get("/api/v1/audit?action=apikey.revoke", headers=admin).json()["items"]
    assert [datetime.fromisoformat(a["at"]) for a in listed] == expected["apikey.revoke"]


def test_audit_rows_cannot_be_changed_or_deleted(client, auth_headers, database):
    _register_known(client, auth_headers)
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError), database.engine.begin() as conn:
            conn.execute(text(statement))
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() > 0


def _every_flow_that_may_keep_personal_data(client, app, auth_headers, clock, shop):
    """Idempotent registration and update (stored responses: unmasked for an admin), orders and
    a return with a webhook on every event delivered to a receiver that echoes what it gets,
    portal sign-in by SMS code, the member's exports and erasure request, audit reads."""
    admin, clerk = auth_headers("admin"), auth_headers("clerk")
    hook = {"url": "https://erp.example.com/hook", "events": list(webhooks.EVENT_TYPES)}
    assert client.post("/api/v1/webhooks", json=hook, headers=admin).status_code == 201
    numbers = []
    for i, ((e164, national), email) in enumerate(zip(PHONES.items(), EMAILS, strict=True)):
        caller = admin if i == 0 else clerk
        steps = [
            ("post", "/api/v1/members", {"phone": e164, "channel": "web", "email": email}),
            ("patch", None, {"city": "上海", "email": email, "name": f"测试{i}"}),
        ]
        for n, (method, url, body) in enumerate(steps):
            url = url or f"/api/v1/members/{numbers[-1]}"
            h = {**caller, "Idempotency-Key": f"pii-{i}-{n}"}
            first = client.request(method, url, json=body, headers=h)
            assert first.status_code in (200, 201), first.text
            again = client.request(method, url, json=body, headers=h)
            assert again.headers.get("idempotent-replayed") == "true"
            assert (again.status_code, again.content) == (first.status_code, first.content)
            if method == "post":
                numbers.append(first.json()["member_no"])
        if caller is admin:  # the stored response held the unmasked phone and email
            assert national in first.text and email in first.text
        order = order_body(numbers[-1], ext=f"O-{i}")
        assert client.post("/api/v1/orders", json=order, headers=shop).status_code == 201
        back = {"external_id": f"R-{i}", "returned_at": "2026-03-01T10:30:00+08:00"}
        back["lines"] = [{"line_no": 2, "quantity": 1}]
        r = client.post(f"/api/v1/orders/pos/O-{i}/returns", json=back, headers=shop)
        assert r.status_code == 201, r.text

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=request.content)

    with httpx.Client(transport=httpx.MockTransport(echo)) as http:
        report = webhooks.deliver_due(
            app.state.db,
            app.state.cipher,
            clock.now(),
            client=http,
            resolver=lambda _host, _port: ["93.184.215.14"],  # a public address; no DNS here
        )
    assert report.delivered > 0
    assert client.get("/api/v1/audit", headers=admin).status_code == 200

    national = PHONES["+8613800138000"]
    portal_sign_in(client, app, national)
    for export in ("/portal/data/export.json", "/portal/data/export.zip"):
        assert client.get(export).status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/portal/data").text)
    assert token is not None
    r = client.post(
        "/portal/data/erasure",
        data={"reason": "moving away", "confirm": "1", "csrf_token": token.group(1)},
    )
    assert r.status_code in (200, 303), r.text


def test_no_plaintext_phone_or_email_anywhere_in_the_database(
    client, app, auth_headers, database, clock, shop
):
    _every_flow_that_may_keep_personal_data(client, app, auth_headers, clock, shop)
    dump = []
    with database.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        assert set(Base.metadata.tables) <= tables  # every table, not a chosen few
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                dump.append(" ".join(str(v) for v in row))
                dump.append(
                    " ".join(bytes(v).hex() for v in row if isinstance(v, (bytes, memoryview)))
                )
        for table in (
            "idempotency_keys",
            "webhook_events",
            "webhook_deliveries",
            "otp_codes",
            "erasure_requests",
            "audit_log",
        ):  # the flows above reached the tables that could hold personal data
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar(), table
    text_dump = "\n".join(dump)
    for s in _spellings():
        assert s not in text_dump, s
    if database.dialect == "sqlite":
        database.engine.dispose()
        path = Path(database.engine.url.database)
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        for s in _spellings():
            assert s.encode() not in raw, s
