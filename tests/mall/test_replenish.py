"""Safety stock alerts, purchase requests and slow movers (R4) through the API."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from patron import checks
from patron.mall import domain
from patron.webhooks.models import WebhookEvent
from tests.mall.helpers import grant, setup_gift


def test_pure_rules():
    assert domain.monthly_forecast(10, 3) == 4
    assert domain.monthly_forecast(0, 3) == 0
    assert domain.below_safety(0, 4, 20)
    assert not domain.below_safety(1, 4, 20)  # 1 ≥ 20% of 4
    assert not domain.below_safety(0, 0, 20)  # nothing expected, nothing short
    assert domain.restock_quantity(0, 4) == 4


def test_short_stock_raises_one_request_then_a_receipt(
    client, database, clock, api_key_headers, make_member
):
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage")
    setup_gift(client, op, "PEN", points=1, stock={"east": 10})
    setup_gift(client, op, "VASE", points=1, stock={"north": 3})
    no = make_member()
    grant(database, clock, no, 100)
    r = client.post(
        "/api/v1/mall/redemptions",
        json={"member_no": no, "gift_code": "PEN", "quantity": 10},
        headers=op,
    )
    assert r.status_code == 201, r.text
    alerts = client.get("/api/v1/mall/stock/alerts", headers=op).json()["items"]
    assert [
        (a["gift_code"], a["short"], a["monthly_forecast"], a["suggested_quantity"]) for a in alerts
    ] == [("PEN", True, 4, 4)]
    made = client.post("/api/v1/mall/purchase-requests", headers=op)
    assert made.status_code == 201
    [req] = made.json()["items"]
    assert (req["gift_code"], req["quantity"], req["warehouse"]) == ("PEN", 4, "east")
    assert client.post("/api/v1/mall/purchase-requests", headers=op).json()["items"] == []
    with database.unit_of_work() as s:
        assert s.scalar(
            select(WebhookEvent.event_type).where(WebhookEvent.event_type == "mall.stock.low")
        )
    done = client.post(f"/api/v1/mall/purchase-requests/{req['id']}/receive", json={}, headers=op)
    assert done.status_code == 200 and done.json()["status"] == "received"
    again = client.post(f"/api/v1/mall/purchase-requests/{req['id']}/receive", json={}, headers=op)
    assert again.status_code == 409 and again.json()["error"]["code"] == "purchase_request_closed"
    assert client.get("/api/v1/mall/gifts/PEN", headers=op).json()["available"] == 4
    # 91 days on: nothing redeemed since, so both gifts are slow movers
    clock.advance(timedelta(days=91))
    slow = {
        a["gift_code"]: a["slow_mover"]
        for a in client.get("/api/v1/mall/stock/alerts", headers=op).json()["items"]
    }
    assert slow == {"PEN": True, "VASE": True}
    with database.unit_of_work() as s:
        assert checks.run_all(s) == []


def test_a_request_the_job_raised_meanwhile_is_not_doubled_by_the_api(
    client, database, clock, api_key_headers, make_member, monkeypatch
):
    """The scheduled job raises the warehouse's request between the API's read of the open
    requests and its insert: the open-request index refuses the second, the API skips it
    (no error, no event for it)."""
    from patron.mall import suppliers
    from patron.mall.models import PurchaseRequest

    op = api_key_headers("mall:read", "mall:redeem", "mall:manage")
    setup_gift(client, op, "PEN", points=1, stock={"east": 10})
    no = make_member()
    grant(database, clock, no, 100)
    body = {"member_no": no, "gift_code": "PEN", "quantity": 10}
    assert client.post("/api/v1/mall/redemptions", json=body, headers=op).status_code == 201
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
                created_by="job",
            )
        )
        session.flush()
        return real(session, gift_id, day)

    monkeypatch.setattr(suppliers, "choose", racing)
    made = client.post("/api/v1/mall/purchase-requests", headers=op)
    assert made.status_code == 201, made.text
    assert made.json()["items"] == []
    monkeypatch.undo()
    [req] = client.get("/api/v1/mall/purchase-requests", headers=op).json()["items"]
    assert (req["quantity"], req["warehouse"]) == (9, "east")
    with database.unit_of_work() as s:
        assert not s.scalar(
            select(WebhookEvent.event_type).where(WebhookEvent.event_type == "mall.stock.low")
        )
