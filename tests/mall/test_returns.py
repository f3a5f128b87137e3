"""Returns of shipped gifts: the unit back in its warehouse, the points back exactly once,
audited and announced; refusals write nothing; ``patron check`` sees a return corrupted
behind the service; the statement budget."""

from __future__ import annotations

from sqlalchemy import func, select, update

from patron import checks
from patron.audit.models import AuditRecord
from patron.mall.check import run_check
from patron.mall.models import Redemption, Stock, StockMovement
from patron.webhooks.models import WebhookEvent
from tests.mall.helpers import grant, setup_gift
from tests.statements import count_statements

API = "/api/v1/mall"


def _shipped(client, database, clock, auth_headers, make_member, receive=False):
    op = auth_headers("operator")
    setup_gift(client, op, "MUG", points=300, stock={"north": 1, "east": 4})
    no = make_member()
    grant(database, clock, no, 1000)
    body = {"member_no": no, "gift_code": "MUG", "quantity": 2, "delivery": "ship"}
    r = client.post(f"{API}/redemptions", json=body, headers=op)
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    ship = {"carrier": "SF", "tracking_no": "SF0001"}
    assert client.post(f"{API}/redemptions/{code}/ship", json=ship, headers=op).status_code == 200
    if receive:
        assert client.post(f"{API}/redemptions/{code}/receive", headers=op).status_code == 200
    return op, no, code


def _state(client, op, no):
    gift = client.get(f"{API}/gifts/MUG", headers=op).json()
    points = client.get(f"/api/v1/members/{no}/points", headers=op).json()["available"]
    return gift["available"], points


def test_a_received_gift_is_returned_once(client, database, clock, auth_headers, make_member):
    op, no, code = _shipped(client, database, clock, auth_headers, make_member, receive=True)
    assert _state(client, op, no) == (3, 400)
    r = client.post(f"{API}/redemptions/{code}/return", json={"reason": "broken"}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "returned" and r.json()["returned_at"]
    assert _state(client, op, no) == (5, 1000)  # both units in stock, every point back
    again = client.post(f"{API}/redemptions/{code}/return", json={}, headers=op)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "redemption_returned")
    cancel = client.post(f"{API}/redemptions/{code}/cancel", json={}, headers=op)
    assert cancel.status_code == 409
    assert _state(client, op, no) == (5, 1000)  # nothing more given back
    with database.unit_of_work() as s:
        r_id, wh = s.execute(
            select(Redemption.id, Redemption.warehouse).where(Redemption.code == code)
        ).one()
        kinds = s.scalars(
            select(StockMovement.kind)
            .where(StockMovement.redemption_id == r_id)
            .order_by(StockMovement.id)
        ).all()
        assert kinds == ["reservation", "shipment", "return"]
        assert (
            s.scalar(select(Stock.on_hand).where(Stock.warehouse == wh))
            == {"east": 4, "north": 1}[wh]
        )
        [event] = s.scalars(
            select(WebhookEvent.payload).where(
                WebhookEvent.event_type == "mall.redemption.returned"
            )
        ).all()
        assert (event["code"], event["points"], event["status"]) == (code, 600, "returned")
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditRecord)
                .where(
                    AuditRecord.action == "mall.redemption_returned", AuditRecord.entity_id == code
                )
            )
            == 1
        )
        assert checks.run_all(s) == []


def test_refusals_write_nothing(client, database, clock, auth_headers, make_member):
    op, no, shipped = _shipped(client, database, clock, auth_headers, make_member)
    body = {"member_no": no, "gift_code": "MUG"}
    reserved = client.post(f"{API}/redemptions", json=body, headers=op).json()["code"]
    before = _state(client, op, no)
    r = client.post(f"{API}/redemptions/{reserved}/return", json={}, headers=op)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "not_shipped")
    assert "cancel" in r.json()["error"]["message"]
    r = client.post(f"{API}/redemptions/ZZZZZZZZ/return", json={}, headers=op)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "code_unknown")
    # a clerk hands gifts over; returns are an operator's
    r = client.post(f"{API}/redemptions/{shipped}/return", json={}, headers=auth_headers("clerk"))
    assert r.status_code == 403
    assert _state(client, op, no) == before
    with database.unit_of_work() as s:
        assert s.scalar(select(Redemption.status).where(Redemption.code == shipped)) == "shipped"
        assert not s.scalar(
            select(func.count()).select_from(StockMovement).where(StockMovement.kind == "return")
        )


def test_a_return_corrupted_behind_the_service_is_reported(
    client, database, clock, auth_headers, make_member
):
    op, _no, code = _shipped(client, database, clock, auth_headers, make_member)
    assert client.post(f"{API}/redemptions/{code}/return", json={}, headers=op).status_code == 200
    with database.unit_of_work() as s:
        assert run_check(s) == []
        # the status says shipped again: its points and its unit came back all the same
        s.execute(update(Redemption).where(Redemption.code == code).values(status="shipped"))
    with database.unit_of_work() as s:
        found = run_check(s)
    assert any(f"redemption {code} (shipped)" in v and "given back" in v for v in found), found
    assert any(f"redemption {code} (shipped)" in v and "net on hand 0" in v for v in found), found


# Measured when written: authentication, the guarded status change, the ledger's cancel of
# the spend (as a cancellation), the stock row and its movement, the event and audit record.
BUDGET = {"sqlite": 30, "postgresql": 30}


def test_statement_budget(client, database, clock, auth_headers, make_member):
    op, _no, code = _shipped(client, database, clock, auth_headers, make_member)
    with count_statements(database.engine) as log:
        r = client.post(f"{API}/redemptions/{code}/return", json={}, headers=op)
    assert r.status_code == 200, r.text
    assert log.count <= BUDGET[database.dialect], log.report()
