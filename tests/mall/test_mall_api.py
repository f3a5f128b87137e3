"""The mall through its API: catalogue, stock, redeem → verify / ship → receive, cancel, and
every refusal the issue names answers 4xx with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from patron import checks
from patron.audit.models import AuditRecord
from patron.ledger.models import PointsPosting
from patron.mall.models import Redemption, StockMovement
from patron.webhooks.models import WebhookEvent
from tests.mall.helpers import grant, setup_gift, store

R = "/api/v1/mall/redemptions"


@pytest.fixture
def op(auth_headers):
    return auth_headers("operator")


@pytest.fixture
def clerk(auth_headers):
    return auth_headers("clerk")


def _counts(database) -> tuple[int, ...]:
    with database.unit_of_work() as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in (Redemption, StockMovement, PointsPosting, WebhookEvent, AuditRecord)
        )


def _balance(client, op, no) -> int:
    return int(client.get(f"/api/v1/members/{no}/points", headers=op).json()["available"])


def _clean(database) -> None:
    with database.unit_of_work() as s:
        assert checks.run_all(s) == []


def test_redeem_verify_at_store(client, database, clock, op, clerk, make_member):
    store(client, op)
    store(client, op, "BJ001", "North China")
    setup_gift(client, op, stock={"north": 2, "east": 3})
    no = make_member()
    grant(database, clock, no, 1000)
    r = client.post(
        R, json={"member_no": no, "gift_code": "MUG", "store_code": "SH001"}, headers=clerk
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "reserved" and body["warehouse"] == "east" and body["points"] == 300
    assert _balance(client, op, no) == 700
    gift = client.get("/api/v1/mall/gifts/MUG", headers=op).json()
    assert gift["available"] == 4 and gift["value_band"] == "100–500"
    # the clerk types the code with a dash and lower case: it is the same code
    typed = body["code"][:5].lower() + "-" + body["code"][5:]
    v = client.post(
        "/api/v1/mall/verifications", json={"code": typed, "store_code": "BJ001"}, headers=clerk
    )
    assert v.status_code == 200, v.text
    assert v.json()["status"] == "fulfilled" and v.json()["verified_store"] == "BJ001"
    again = client.post(
        "/api/v1/mall/verifications",
        json={"code": body["code"], "store_code": "SH001"},
        headers=clerk,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "code_used"
    levels = {
        x["warehouse"]: x for x in client.get("/api/v1/mall/stock", headers=op).json()["items"]
    }
    assert levels["east"]["on_hand"] == 2 and levels["east"]["reserved"] == 0
    cancel = client.post(f"{R}/{body['code']}/cancel", json={}, headers=clerk)
    assert cancel.status_code == 409
    with database.unit_of_work() as s:
        types = [e for (e,) in s.execute(select(WebhookEvent.event_type).order_by(WebhookEvent.id))]
        assert "mall.redemption.reserved" in types and "mall.redemption.fulfilled" in types
        actions = set(s.scalars(select(AuditRecord.action)))
        assert {"mall.redemption_reserved", "mall.redemption_fulfilled"} <= actions
    _clean(database)


def test_cancel_returns_points_and_stock_once(client, database, clock, op, clerk, make_member):
    setup_gift(client, op, stock={"east": 1})
    no = make_member()
    grant(database, clock, no, 500)
    code = client.post(R, json={"member_no": no, "gift_code": "MUG"}, headers=clerk).json()["code"]
    assert _balance(client, op, no) == 200
    out = client.post(R, json={"member_no": no, "gift_code": "MUG"}, headers=clerk)
    assert out.status_code == 409 and out.json()["error"]["code"] == "out_of_stock"
    c = client.post(f"{R}/{code}/cancel", json={"reason": "changed mind"}, headers=clerk)
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    assert client.post(f"{R}/{code}/cancel", json={}, headers=clerk).status_code == 409
    assert _balance(client, op, no) == 500
    assert client.get("/api/v1/mall/gifts/MUG", headers=op).json()["available"] == 1
    v = client.post(
        "/api/v1/mall/verifications", json={"code": code, "store_code": "SH001"}, headers=clerk
    )
    assert v.status_code in (404, 409)
    _clean(database)


def test_ship_then_receive(client, database, clock, op, clerk, make_member):
    setup_gift(client, op, stock={"south": 2})
    no = make_member()
    grant(database, clock, no, 1000)
    code = client.post(
        R,
        json={"member_no": no, "gift_code": "MUG", "delivery": "ship", "quantity": 2},
        headers=clerk,
    ).json()["code"]
    pick = client.post(
        "/api/v1/mall/verifications", json={"code": code, "store_code": "SH001"}, headers=clerk
    )
    assert pick.status_code in (404, 409)
    s = client.post(
        f"{R}/{code}/ship", json={"carrier": "SF", "tracking_no": "SF123456"}, headers=clerk
    )
    assert s.status_code == 200 and s.json()["status"] == "shipped", s.text
    assert client.post(f"{R}/{code}/cancel", json={}, headers=clerk).status_code == 409
    rc = client.post(f"{R}/{code}/receive", headers=clerk)
    assert rc.status_code == 200 and rc.json()["status"] == "received"
    listed = client.get(R, params={"member_no": no}, headers=op).json()["items"]
    assert [x["code"] for x in listed] == [code]
    _clean(database)


def test_bad_input_changes_nothing(client, database, clock, op, clerk, make_member, auth_headers):
    store(client, op)
    setup_gift(client, op, "CHEAP", points=50, limit_per_member=1, limit_window="month")
    start = clock.now() + timedelta(days=14)
    setup_gift(client, op, "XMAS", sale_starts_at=start.isoformat())
    setup_gift(client, op, "GOLD", min_tier="gold")
    setup_gift(client, op, "DEAR", points=5000)
    no = make_member()
    grant(database, clock, no, 1000)
    assert (
        client.post(R, json={"member_no": no, "gift_code": "CHEAP"}, headers=clerk).status_code
        == 201
    )
    analyst = auth_headers("analyst")
    before = _counts(database)
    cases = [
        ({"gift_code": "DEAR"}, 409, "insufficient_points"),
        ({"gift_code": "CHEAP"}, 409, "over_member_limit"),
        ({"gift_code": "XMAS"}, 409, "outside_sale_window"),
        ({"gift_code": "GOLD"}, 403, "tier_required"),
        ({"gift_code": "NOPE"}, 404, "gift_not_found"),
        ({"gift_code": "DEAR", "store_code": "ZZ9"}, 404, "store_not_found"),
        ({"gift_code": "GOLD", "quantity": 0}, 422, None),
    ]
    for extra, status, code in cases:
        r = client.post(R, json={"member_no": no, **extra}, headers=clerk)
        assert r.status_code == status, (extra, r.text)
        if code:
            assert r.json()["error"]["code"] == code
    for raw, status, code in (
        ("ZZZZZZZZZZ", 404, "code_unknown"),
        ("", 422, None),
    ):
        r = client.post(
            "/api/v1/mall/verifications", json={"code": raw, "store_code": "SH001"}, headers=clerk
        )
        assert r.status_code == status, r.text
        if code:
            assert r.json()["error"]["code"] == code
    adj = client.post(
        "/api/v1/mall/stock/adjustments",
        json={"gift_code": "DEAR", "warehouse": "east", "delta": -6, "reason": "count"},
        headers=op,
    )
    assert adj.status_code == 409 and adj.json()["error"]["code"] == "stock_below_zero"
    tr = client.post(
        "/api/v1/mall/stock/transfers",
        json={
            "gift_code": "DEAR",
            "from_warehouse": "east",
            "to_warehouse": "north",
            "quantity": 9,
        },
        headers=op,
    )
    assert tr.status_code == 409
    wh = client.post(
        "/api/v1/mall/stock/receipts",
        json={"gift_code": "DEAR", "warehouse": "west", "quantity": 1},
        headers=op,
    )
    assert wh.status_code == 404 and wh.json()["error"]["code"] == "warehouse_not_found"
    assert (
        client.post(R, json={"member_no": no, "gift_code": "DEAR"}, headers=analyst).status_code
        == 403
    )
    assert _counts(database) == before
    _clean(database)


def test_expired_code_is_refused(client, database, clock, op, api_key_headers, make_member):
    clerk = api_key_headers("mall:redeem", "mall:read")
    store(client, op)
    setup_gift(client, op)
    no = make_member()
    grant(database, clock, no, 1000)
    code = client.post(R, json={"member_no": no, "gift_code": "MUG"}, headers=clerk).json()["code"]
    clock.advance(timedelta(days=31))
    r = client.post(
        "/api/v1/mall/verifications", json={"code": code, "store_code": "SH001"}, headers=clerk
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "code_expired"


def test_stock_receipt_adjust_transfer(client, database, op):
    setup_gift(client, op, stock={"east": 10})
    for path, body in (
        ("adjustments", {"delta": -3, "reason": "broken", "warehouse": "east"}),
        ("transfers", {"from_warehouse": "east", "to_warehouse": "north", "quantity": 4}),
    ):
        r = client.post(f"/api/v1/mall/stock/{path}", json={"gift_code": "MUG", **body}, headers=op)
        assert r.status_code == 201, r.text
    levels = {
        x["warehouse"]: x["on_hand"]
        for x in client.get("/api/v1/mall/stock", headers=op).json()["items"]
    }
    assert levels == {"east": 3, "north": 4}
    kinds = [
        m["kind"] for m in client.get("/api/v1/mall/stock/movements", headers=op).json()["items"]
    ]
    assert kinds == ["transfer_in", "transfer_out", "adjustment", "receipt"]
    _clean(database)


def test_catalogue_filters_and_hot(client, database, clock, op, clerk, make_member):
    setup_gift(client, op, "PEN", points=80, category="digital")
    setup_gift(client, op, "MUG", points=300)
    setup_gift(client, op, "TV", points=9000, category="digital")
    no = make_member()
    grant(database, clock, no, 1000)
    client.post(R, json={"member_no": no, "gift_code": "PEN"}, headers=clerk)
    items = client.get("/api/v1/mall/gifts", params={"category": "digital"}, headers=op).json()[
        "items"
    ]
    assert [(g["code"], g["value_band"], g["hot"]) for g in items] == [
        ("PEN", "<100", True),
        ("TV", ">500", False),
    ]
    band = client.get("/api/v1/mall/gifts", params={"band": 1}, headers=op).json()["items"]
    assert [g["code"] for g in band] == ["MUG"]
    bad = client.put(
        "/api/v1/mall/gifts/X",
        json={"code": "X", "name": "x", "category": "cars", "points": 1},
        headers=op,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_category"
