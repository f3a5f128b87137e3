"""The erasure workflow (SQLite and PostgreSQL): the console shows each request's deadline,
rejects only with a note, and completing erases the member's personal data everywhere — a
dump of every table afterwards holds no trace of the phone, email or name — while points,
orders and the audit trail's who-did-what stay under the member number."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

import patron.app  # noqa: F401  (every model)
from patron.audit.models import AuditRecord
from patron.db import Base
from patron.members.models import Member
from tests.factories import order_body
from tests.web.test_members_pages import PHONE, _csrf, member, staff  # noqa: F401
from tests.web.test_portal_pages import portal_sign_in

NAME, EMAIL = "王小丽", "xl@example.com"


def _dump(database: Any) -> str:
    parts: list[str] = []
    with database.unit_of_work() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def test_completing_an_erasure_leaves_no_trace(
    staff,  # noqa: F811
    member,  # noqa: F811
    client,
    app,
    database,
    auth_headers,
    shop,
):
    assert (
        client.post("/api/v1/orders", json=order_body(member, "E-1"), headers=shop).status_code
        == 201
    )
    h = auth_headers("operator")
    r = client.post(
        "/api/v1/service/tickets",
        json={
            "member_no": member,
            "category": "account",
            "subject": f"{NAME} 的账户",
            "body": f"请联系 {PHONE} 或 {EMAIL}",
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    portal_sign_in(client, app, PHONE)
    token = _csrf(client.get("/portal/data").text)
    r = client.post(
        "/portal/data/erasure", data={"csrf_token": token, "confirm": "1", "reason": f"我是{NAME}"}
    )
    assert r.status_code == 200, r.text
    before = _dump(database)
    assert PHONE in before or NAME in before  # the test can fail: the data is there now

    officer = staff("admin")
    page = officer.get("/console/privacy/erasure").text
    assert "data-due=" in page
    rid = int(page.split('data-erasure-request="')[1].split('"')[0])
    token = _csrf(page)
    refused = officer.post(f"/console/privacy/erasure/{rid}/reject", data={"csrf_token": token})
    assert refused.status_code == 422 and f'data-error-for="{rid}"' in refused.text
    unconfirmed = officer.post(
        f"/console/privacy/erasure/{rid}/complete", data={"csrf_token": token}
    )
    assert unconfirmed.status_code == 422
    done = officer.post(
        f"/console/privacy/erasure/{rid}/complete",
        data={"csrf_token": token, "confirm": "1", "note": "verified by phone"},
    )
    assert done.status_code == 200, done.text

    after = _dump(database)
    for trace in (PHONE, "+86" + PHONE, EMAIL, NAME):
        assert trace not in after, trace
    with database.unit_of_work() as s:
        m = s.scalar(select(Member).where(Member.member_no == member))
        assert m is not None and m.status == "erased"
        kept = s.scalars(select(AuditRecord.action).where(AuditRecord.entity_id == member)).all()
        assert "member.register" in kept  # who did what stays
    bal = client.get(f"/api/v1/members/{member}/points", headers=h).json()
    assert bal["available"] > 0  # the ledger is kept under the member number
    # the member's portal session ended with the erasure
    assert client.get("/portal/", follow_redirects=False).status_code == 303
    # the audit log is still append-only for anything but a redaction
    with database.engine.connect() as conn:
        try:
            conn.execute(text("UPDATE audit_log SET action = 'x'"))
            conn.commit()
            changed = True
        except Exception:
            conn.rollback()
            changed = False
    assert not changed


def test_retention_deletes_old_sign_in_codes_and_the_join_form_links_the_documents(
    client, app, database, clock, make_member
):
    from datetime import timedelta

    from sqlalchemy import func

    from patron.otp.models import OtpCode
    from patron.privacy import retention

    make_member(phone="13911119999")
    portal_sign_in(client, app, "13911119999")
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(OtpCode)) == 1
    keep = timedelta(hours=72)
    assert retention.run(database, clock.now(), keep)["otp_codes"] == 0  # still fresh
    clock.advance(timedelta(days=31))
    assert retention.run(database, clock.now(), keep)["otp_codes"] == 1
    assert retention.run(database, clock.now(), keep)["otp_codes"] == 0  # once
    for path in ("/portal/terms", "/portal/privacy"):
        assert client.get(path).status_code == 200
    client.cookies.clear()
    r = client.get("/portal/login")
    token = _csrf(r.text)
    r = client.post("/portal/login/code", data={"csrf_token": token, "phone": "13700001111"})
    assert r.status_code == 200
    from tests.web.test_portal_pages import _last_code

    r = client.post(
        "/portal/login/verify",
        data={"csrf_token": token, "phone": "13700001111", "code": _last_code(app)},
    )
    assert 'href="/portal/terms"' in r.text and 'href="/portal/privacy"' in r.text
