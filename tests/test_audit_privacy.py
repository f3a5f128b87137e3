"""Audit trail (append-only, masked) and personal data at rest."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DatabaseError

from patron.audit.models import AuditRecord

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


def test_no_plaintext_phone_or_email_anywhere_in_the_database(client, auth_headers, database):
    _register_known(client, auth_headers)
    dump = []
    with database.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                dump.append(" ".join(str(v) for v in row))
                dump.append(
                    " ".join(bytes(v).hex() for v in row if isinstance(v, (bytes, memoryview)))
                )
    text_dump = "\n".join(dump)
    for s in _spellings():
        assert s not in text_dump, s
    if database.dialect == "sqlite":
        database.engine.dispose()
        path = Path(database.engine.url.database)
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        for s in _spellings():
            assert s.encode() not in raw, s
