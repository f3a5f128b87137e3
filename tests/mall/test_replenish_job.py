"""The safety-stock job: a warehouse short of stock gets one purchase request to the gift's
preferred supplier, announced (``mall.stock.low``) and audited; reruns and a request raised
meanwhile never make a second one while it is open."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from patron import checks
from patron.audit.models import AuditRecord
from patron.mall import jobs, replenish, suppliers
from patron.mall import service as mall
from patron.mall.models import PurchaseRequest
from patron.webhooks.models import WebhookEvent
from tests.mall.helpers import SH, grant, setup_gift
from tests.mall.test_suppliers import _quote, _supplier
from tests.statements import count_statements

API = "/api/v1/mall"


@pytest.fixture
def short(client, database, clock, api_key_headers, make_member):
    """PEN: 10 units redeemed from east (now empty; 4 a month expected), 5 in north that served
    nobody (not short); preferred supplier ACME, BETA the backup."""
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage")
    setup_gift(client, op, "PEN", points=1, stock={"east": 10, "north": 5})
    setup_gift(client, op, "CUP", points=1, stock={"east": 50})
    _supplier(client, op, "ACME", "2026-01-01", "2026-12-31")
    _supplier(client, op, "BETA", "2026-01-01", "2026-12-31")
    _quote(client, op, "ACME", 1200, "2026-03-01", gift="PEN")
    r = client.put(
        f"{API}/gifts/PEN/suppliers", json={"preferred": "ACME", "backup": "BETA"}, headers=op
    )
    assert r.status_code == 200, r.text
    no = make_member()
    grant(database, clock, no, 100)
    body = {"member_no": no, "gift_code": "PEN", "quantity": 10}
    assert client.post(f"{API}/redemptions", json=body, headers=op).status_code == 201
    return op


def _open(database) -> list[tuple[str, int, int | None, str]]:
    with database.unit_of_work() as s:
        return [
            (r.warehouse, r.quantity, r.unit_cost_fen, r.created_by)
            for r in s.scalars(select(PurchaseRequest).where(PurchaseRequest.status == "open"))
        ]


def test_the_job_raises_one_request_per_short_warehouse(client, database, clock, short, app):
    with count_statements(database.engine) as log:
        assert jobs.run_replenish(database, clock.now(), SH) == 1
    # settings, alerts (2), open requests, the supplier's choice (4), the request in its
    # savepoint (3), its event (2) and audit record; SQLite adds its BEGIN IMMEDIATE
    assert log.count <= 15, log.report()
    assert _open(database) == [("east", 4, 1200, replenish.JOB.label)]
    with database.unit_of_work() as s:
        [low] = s.scalars(
            select(WebhookEvent.payload).where(WebhookEvent.event_type == "mall.stock.low")
        ).all()
        assert (low["gift_code"], low["warehouse"], low["supplier_code"]) == ("PEN", "east", "ACME")
        assert (low["supplier_role"], low["quantity"], low["available"]) == ("preferred", 4, 0)
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditRecord)
                .where(
                    AuditRecord.action == "mall.purchase_request", AuditRecord.entity_id == "PEN"
                )
            )
            == 1
        )
    # idempotent: reruns raise nothing while the request is open
    assert jobs.run_replenish(database, clock.now(), SH) == 0
    assert jobs.run_replenish(database, clock.now(), SH) == 0
    assert len(_open(database)) == 1
    # the console tags it as raised by the job
    from tests.web.test_mall_pages import _operator

    _operator(client, database, clock)
    page = client.get("/console/mall").text
    assert 'data-auto="yes"' in page and "Raised automatically" in page
    # received: east holds 4 again, no longer short, nothing more raised
    [rid] = [r["id"] for r in client.get(f"{API}/purchase-requests", headers=short).json()["items"]]
    r = client.post(f"{API}/purchase-requests/{rid}/receive", json={}, headers=short)
    assert r.status_code == 200, r.text
    assert jobs.run_replenish(database, clock.now(), SH) == 0
    assert _open(database) == []
    with database.unit_of_work() as s:
        assert checks.run_all(s) == []


def test_a_request_raised_meanwhile_is_not_doubled(database, clock, short, monkeypatch):
    """The console (or another run) raises the same warehouse's request between the job's read
    and its insert: the open-request index refuses the second, the job skips it."""
    real = suppliers.choose

    def racing(session, gift_id, day):
        session.add(
            PurchaseRequest(
                gift_id=gift_id,
                warehouse="east",
                quantity=9,
                status="open",
                available_at_request=0,
                forecast=4,
                created_at=clock.now(),
                created_by="someone else",
            )
        )
        session.flush()
        return real(session, gift_id, day)

    monkeypatch.setattr(suppliers, "choose", racing)
    assert jobs.run_replenish(database, clock.now(), SH) == 0
    assert _open(database) == [("east", 9, None, "someone else")]
    with database.unit_of_work() as s:
        assert not s.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.event_type == "mall.stock.low")
        )


def test_the_database_allows_one_open_request_per_gift_and_warehouse(database, clock, short):
    with database.unit_of_work() as s:
        ctx = mall.make_ctx(s, replenish.JOB, clock.now(), SH)
        [req] = replenish.raise_warehouse_requests(s, ctx)
        gift_id = req.gift_id
    second = PurchaseRequest(
        gift_id=gift_id,
        warehouse="east",
        quantity=1,
        status="open",
        available_at_request=0,
        forecast=4,
        created_at=clock.now(),
        created_by="test",
    )
    with database.unit_of_work() as s:
        s.add(second)
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
