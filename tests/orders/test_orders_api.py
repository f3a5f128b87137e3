"""Orders, returns and checkout through the API, checked against the ledger."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from patron.auth.principal import Principal
from patron.ledger import flows
from patron.ledger import queries as ledger_queries
from patron.ledger import service as ledger
from patron.members.models import Member
from patron.orders.models import Order, OrderReturn
from tests.factories import order_body

SH = ZoneInfo("Asia/Shanghai")


def _member_id(database, member_no):
    with database.unit_of_work() as s:
        return s.scalar(select(Member.id).where(Member.member_no == member_no))


def _balance(database, clock, member_no):
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == member_no))
        return ledger_queries.balance(s, mid, clock.now())


def _grant(database, clock, member_no, points):
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == member_no))
        ctx = ledger.Ctx(Principal.system("t"), clock.now(), SH)
        flows.earn(s, ctx, mid, points=points, source_type="test", source_id=f"grant-{points}")


def _count(database, model):
    with database.unit_of_work() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_order_earns_by_the_rules_and_is_idempotent(client, shop, make_member, database, clock):
    no = make_member()
    r = client.post("/api/v1/orders", json=order_body(no), headers=shop)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["total_fen"] == 21900
    assert order["points_earned"] >= 219  # 1 point per CNY of the paid amount, plus bonuses
    assert "base" in " ".join(c["rule_id"] for c in order["rules"]["points"])
    bal = _balance(database, clock, no)
    assert bal.available == order["points_earned"]
    # A retry of the same order changes nothing and answers with the same order.
    again = client.post("/api/v1/orders", json=order_body(no), headers=shop)
    assert again.status_code == 200
    assert again.json() == order
    assert _balance(database, clock, no).available == bal.available
    # The same id with different content is refused.
    changed = order_body(no, payments=[{"method": "cash", "amount_fen": 21900}])
    r = client.post("/api/v1/orders", json=changed, headers=shop)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "order_conflict"
    hist = client.get(f"/api/v1/members/{no}/orders", headers=shop).json()
    assert hist["total"] == 1


def test_points_payment_and_returns_claw_back_exactly(client, shop, make_member, database, clock):
    no = make_member()
    _grant(database, clock, no, 5000)
    body = order_body(
        no,
        payments=[
            {"method": "points", "amount_fen": 2000, "points": 2000},
            {"method": "card", "amount_fen": 19900},
        ],
    )
    r = client.post("/api/v1/orders", json=body, headers=shop)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["points_used"] == 2000
    assert order["paid_fen"] == 19900
    earned = order["points_earned"]
    assert _balance(database, clock, no).available == 5000 - 2000 + earned
    # Return one of the two fresh items, then everything else.
    r1 = client.post(
        "/api/v1/orders/pos/O-1/returns",
        json={
            "external_id": "R-1",
            "returned_at": "2026-03-02T10:00:00+08:00",
            "lines": [{"line_no": 2, "quantity": 1}],
        },
        headers=shop,
    )
    assert r1.status_code == 201, r1.text
    r2 = client.post(
        "/api/v1/orders/pos/O-1/returns",
        json={
            "external_id": "R-2",
            "returned_at": "2026-03-02T11:00:00+08:00",
            "lines": [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 1}],
        },
        headers=shop,
    )
    assert r2.status_code == 201, r2.text
    a, b = r1.json(), r2.json()
    assert a["refund_fen"] + b["refund_fen"] == 19900
    assert a["points_returned"] + b["points_returned"] == 2000
    assert a["points_clawed"] + b["points_clawed"] == earned
    # After a full return the member holds exactly what they had before the order.
    assert _balance(database, clock, no).available == 5000
    # Nothing more can be returned.
    r3 = client.post(
        "/api/v1/orders/pos/O-1/returns",
        json={
            "external_id": "R-3",
            "returned_at": "2026-03-02T12:00:00+08:00",
            "lines": [{"line_no": 1, "quantity": 1}],
        },
        headers=shop,
    )
    assert r3.status_code == 422
    assert r3.json()["error"]["code"] == "return_exceeds_purchase"
    got = client.get("/api/v1/orders/pos/O-1", headers=shop).json()
    assert got["status"] == "returned"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"member_no": "1234567897"}, 404, "member_not_found"),
        ({"store_code": "NOPE"}, 422, "unknown_store"),
        (
            {
                "lines": [{"sku": "NOPE", "quantity": 1, "unit_price_fen": 100}],
                "payments": [{"method": "cash", "amount_fen": 100}],
            },
            422,
            "unknown_sku",
        ),
        (
            {"lines": [{"sku": "BEA-1", "quantity": -1, "unit_price_fen": 100}]},
            422,
            "validation_error",
        ),
        ({"payments": [{"method": "cash", "amount_fen": 100}]}, 422, "payments_mismatch"),
        (
            {"payments": [{"method": "points", "amount_fen": 21900, "points": 21900}]},
            422,
            "points_share_exceeded",
        ),
        (
            {
                "payments": [
                    {"method": "points", "amount_fen": 2000, "points": 1999},
                    {"method": "cash", "amount_fen": 19900},
                ]
            },
            422,
            "points_value_mismatch",
        ),
        (
            {
                "payments": [
                    {"method": "points", "amount_fen": 2000, "points": 2000},
                    {"method": "cash", "amount_fen": 19900},
                ]
            },
            409,
            "insufficient_points",
        ),
        ({"ordered_at": "2030-01-01T00:00:00+08:00"}, 422, "ordered_at_in_future"),
        ({"tier": "gold"}, 422, "validation_error"),
    ],
)
def test_bad_orders_change_nothing(client, shop, make_member, database, change, status, code):
    no = make_member()
    body = {**order_body(no), **change}
    r = client.post("/api/v1/orders", json=body, headers=shop)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert _count(database, Order) == 0


def test_return_before_its_order_is_refused_clearly(client, shop):
    r = client.post(
        "/api/v1/orders/pos/NOT-YET/returns",
        json={
            "external_id": "R-1",
            "returned_at": "2026-03-02T10:00:00+08:00",
            "lines": [{"line_no": 1, "quantity": 1}],
        },
        headers=shop,
    )
    assert r.status_code == 404
    assert "send the order first" in r.json()["error"]["message"]


def test_a_return_sent_again_replays_and_different_content_conflicts(client, shop, make_member):
    no = make_member()
    assert client.post("/api/v1/orders", json=order_body(no), headers=shop).status_code == 201
    ret = {
        "external_id": "R-1",
        "returned_at": "2026-03-02T10:00:00+08:00",
        "lines": [{"line_no": 1, "quantity": 1}],
    }
    first = client.post("/api/v1/orders/pos/O-1/returns", json=ret, headers=shop)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/orders/pos/O-1/returns", json=ret, headers=shop)
    assert again.status_code == 200
    assert again.json() == first.json()
    other = {**ret, "returned_at": "2026-03-02T11:00:00+08:00"}
    r = client.post("/api/v1/orders/pos/O-1/returns", json=other, headers=shop)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "return_conflict"


def test_checkout_quote_and_commit_agree(client, shop, make_member, database, clock):
    no = make_member()
    _grant(database, clock, no, 3000)
    basket = {
        "member_no": no,
        "store_code": "SH001",
        "channel": "store",
        "lines": [{"sku": "BEA-1", "quantity": 2}, {"sku": "FRE-1", "quantity": 3}],
    }
    q0 = client.post("/api/v1/checkout/quote", json=basket, headers=shop)
    assert q0.status_code == 200, q0.text
    assert q0.json()["max_points"] > 0
    use = min(q0.json()["max_points"], 3000)
    q = client.post("/api/v1/checkout/quote", json={**basket, "points_to_use": use}, headers=shop)
    quote = q.json()
    commit = {
        **basket,
        "points_to_use": use,
        "external_id": "C-1",
        "expected_total_fen": quote["total_fen"],
        "expected_points_earned": quote["points_earned"],
        "payment_method": "wechat",
    }
    # A stale quote is refused and nothing is written.
    stale = {**commit, "expected_total_fen": quote["total_fen"] + 1}
    r = client.post("/api/v1/checkout/commit", json=stale, headers=shop)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "quote_mismatch"
    assert _count(database, Order) == 0
    r = client.post("/api/v1/checkout/commit", json=commit, headers=shop)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["total_fen"] == quote["total_fen"]
    assert order["points_used"] == quote["points_used"] == use
    assert order["paid_fen"] == quote["paid_fen"]
    assert order["points_earned"] == quote["points_earned"]
    assert _balance(database, clock, no).available == 3000 - use + quote["points_earned"]
    # More points than the balance: a clear 409, nothing written.
    r = client.post("/api/v1/checkout/quote", json={**basket, "points_to_use": 10**7}, headers=shop)
    assert r.status_code in (409, 422)
    assert _count(database, OrderReturn) == 0
