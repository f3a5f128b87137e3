"""Tickets through the API (SQLite and PostgreSQL): SLA target fixed at opening, the VIP queue,
the first answer stopping the clock, the breach job (once, with an event and an audit record),
and a missing-points dispute resolved through the adjustment approval flow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.members.models import Member
from patron.service import jobs
from patron.webhooks.models import WebhookEvent
from tests.factories import order_body


def _growth(client: Any, h: dict[str, str], no: str, amount: int) -> None:
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"ledger": "growth", "amount": amount, "reason": "tier for the test"},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["status"] == "applied", r.text


def _open(client: Any, h: dict[str, str], no: str, **over: Any) -> dict[str, Any]:
    body = {"member_no": no, "category": "other", "subject": "Where is my card?", "body": "…"}
    r = client.post("/api/v1/service/tickets", json={**body, **over}, headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _count(database: Any, model: Any, *where: Any) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_targets_queue_first_answer_and_breach(client, auth_headers, make_member, clock, database):
    h = auth_headers("operator")
    regular = make_member()
    diamond = make_member()
    for amount in (6_000, 7_000, 7_000):  # 20,000 growth: diamond, within the daily limit
        _growth(client, auth_headers("admin"), diamond, amount)
    opened = clock.now()
    a = _open(client, h, regular)
    b = _open(client, h, diamond, category="complaint")
    c = _open(client, h, regular, priority="urgent")
    assert a["queue"] == "standard" and b["queue"] == "vip"
    due_a = a["response_due_at"]
    assert due_a.startswith((opened + timedelta(minutes=120)).strftime("%Y-%m-%dT%H:%M")), due_a
    due_b = b["response_due_at"]
    assert due_b.startswith((opened + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")), due_b
    assert a["timeline"][0]["kind"] == "opened"

    r = client.post(
        f"/api/v1/service/tickets/{c['ticket_no']}/replies", json={"body": "On it"}, headers=h
    )
    assert r.status_code == 200 and r.json()["status"] == "in_progress"

    clock.advance(timedelta(minutes=6))
    assert jobs.run_breaches(database, clock.now()) == 1  # only the diamond complaint is late
    assert jobs.run_breaches(database, clock.now()) == 0  # once
    clock.advance(timedelta(hours=3))
    assert jobs.run_breaches(database, clock.now()) == 1  # the regular one; c was answered
    assert (
        _count(database, WebhookEvent, WebhookEvent.event_type == "service.ticket.sla_breached")
        == 2
    )
    assert _count(database, AuditRecord, AuditRecord.action == "service.sla_breach") == 2
    h2 = auth_headers("operator", fresh=True)
    late = client.get("/api/v1/service/tickets?breached=true", headers=h2).json()
    assert {t["ticket_no"] for t in late["items"]} == {a["ticket_no"], b["ticket_no"]}
    vip = client.get("/api/v1/service/tickets?queue=vip", headers=h2).json()
    assert [t["ticket_no"] for t in vip["items"]] == [b["ticket_no"]]
    got = client.get(f"/api/v1/service/tickets/{b['ticket_no']}", headers=h2).json()
    assert [e["kind"] for e in got["timeline"]] == ["opened", "breached"]


def test_a_missing_points_dispute_is_corrected_through_the_adjustment_flow(
    client, auth_headers, make_member, shop, database
):
    h = auth_headers("operator")
    no = make_member()
    r = client.post("/api/v1/orders", json=order_body(no, "D-1"), headers=shop)
    assert r.status_code == 201, r.text
    other = make_member()
    refused = client.post(
        "/api/v1/service/tickets",
        json={
            "member_no": other,
            "category": "missing_points",
            "subject": "s",
            "body": "b",
            "order": "pos:D-1",
        },
        headers=h,
    )
    assert (
        refused.status_code == 404 and refused.json()["error"]["code"] == "dispute_order_not_found"
    )
    missing = client.post(
        "/api/v1/service/tickets",
        json={"member_no": no, "category": "missing_points", "subject": "s", "body": "b"},
        headers=h,
    )
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "dispute_order_required"

    small = _open(client, h, no, category="missing_points", order="pos:D-1")
    big = _open(client, h, no, category="missing_points", order="D-1")
    assert small["order"] == "pos:D-1" and big["order"] == "pos:D-1"
    before = client.get(f"/api/v1/members/{no}/points", headers=h).json()["available"]

    r = client.post(
        f"/api/v1/service/tickets/{small['ticket_no']}/resolve",
        json={"resolution": "Added the missing points", "correction_points": 200},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved" and r.json()["adjustment_id"]
    after = client.get(f"/api/v1/members/{no}/points", headers=h).json()["available"]
    assert after == before + 200  # within the approval limit: applied by the flow

    r = client.post(
        f"/api/v1/service/tickets/{big['ticket_no']}/resolve",
        json={"resolution": "Asked for approval", "correction_points": 20_000},
        headers=h,
    )
    assert r.status_code == 200, r.text
    pending = client.get(
        "/api/v1/points/adjustments?status=pending_approval", headers=auth_headers("admin")
    )
    assert pending.status_code == 200, pending.text
    assert [a["amount"] for a in pending.json()] == [20_000]
    assert client.get(f"/api/v1/members/{no}/points", headers=h).json()["available"] == after

    again = client.post(
        f"/api/v1/service/tickets/{big['ticket_no']}/resolve",
        json={"resolution": "twice"},
        headers=h,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "ticket_resolved"
    wrong = _open(client, h, no)
    r = client.post(
        f"/api/v1/service/tickets/{wrong['ticket_no']}/resolve",
        json={"resolution": "x", "correction_points": 5},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "correction_not_dispute"
    # nothing of the refused call was written
    assert _count(database, AuditRecord, AuditRecord.action == "service.ticket_resolve") == 2


def test_a_clerk_may_not_reach_the_knowledge_base_editor_without_service_write(
    client, auth_headers
):
    r = client.put(
        "/api/v1/service/articles/points-late/en",
        json={"title": "Points arrive late", "body": "Points arrive after the return window."},
        headers=auth_headers("analyst"),
    )
    assert r.status_code == 403
    r = client.put(
        "/api/v1/service/articles/points-late/en",
        json={"title": "Points arrive late", "body": "Points arrive after the return window."},
        headers=auth_headers("operator"),
    )
    assert r.status_code == 200, r.text
    found = client.get(
        "/api/v1/service/articles?q=late+points&locale=en", headers=auth_headers("analyst")
    )
    assert [a["slug"] for a in found.json()] == ["points-late"]


def test_patron_check_sees_a_correction_moved_to_another_member(
    client, auth_headers, make_member, shop, database
):
    from sqlalchemy import update

    from patron.checks import run_all
    from patron.service.models import Ticket

    h = auth_headers("operator")
    no = make_member()
    assert (
        client.post("/api/v1/orders", json=order_body(no, "C-1"), headers=shop).status_code == 201
    )
    t = _open(client, h, no, category="missing_points", order="pos:C-1")
    r = client.post(
        f"/api/v1/service/tickets/{t['ticket_no']}/resolve",
        json={"resolution": "added", "correction_points": 50},
        headers=h,
    )
    assert r.status_code == 200, r.text
    with database.unit_of_work() as s:
        assert run_all(s) == []
    other = make_member()
    with database.unit_of_work() as s:
        other_id = s.scalar(select(Member.id).where(Member.member_no == other))
        s.execute(
            update(Ticket).where(Ticket.ticket_no == t["ticket_no"]).values(member_id=other_id)
        )
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any(t["ticket_no"] in v and "correction" in v for v in found), found
