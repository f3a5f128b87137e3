"""The mall's reconciliation sees data corrupted behind the services' back."""

from __future__ import annotations

from sqlalchemy import insert, update

from patron import checks
from patron.mall.check import run_check
from patron.mall.models import FlashSale, Gift, Redemption, Stock, StockMovement
from tests.mall.helpers import grant, setup_gift


def _redeem(client, database, clock, auth_headers, make_member):
    op = auth_headers("operator")
    setup_gift(client, op, stock={"east": 3})
    no = make_member()
    grant(database, clock, no, 1000)
    r = client.post(
        "/api/v1/mall/redemptions", json={"member_no": no, "gift_code": "MUG"}, headers=op
    )
    assert r.status_code == 201, r.text
    with database.unit_of_work() as s:
        assert checks.run_all(s) == []
    return r.json()["code"]


def test_cached_stock_that_disagrees_with_its_movements(
    client, database, clock, auth_headers, make_member
):
    _redeem(client, database, clock, auth_headers, make_member)
    with database.unit_of_work() as s:
        s.execute(update(Stock).values(on_hand=Stock.on_hand + 1))
    with database.unit_of_work() as s:
        found = run_check(s)
    assert any("movements sum to on hand 3" in v for v in found), found


def test_reservation_without_a_redemption(client, database, clock, auth_headers, make_member):
    _redeem(client, database, clock, auth_headers, make_member)
    with database.unit_of_work() as s:
        gid, wh = s.execute(StockMovement.__table__.select().limit(1)).one()[1:3]
        s.execute(update(Stock).values(reserved=Stock.reserved + 1))
        s.execute(
            insert(StockMovement).values(
                gift_id=gid,
                warehouse=wh,
                kind="reservation",
                on_hand_delta=0,
                reserved_delta=1,
                actor="x",
                reason="",
                created_at=clock.now(),
            )
        )
    with database.unit_of_work() as s:
        found = run_check(s)
    assert any("reserved redemptions hold 1" in v for v in found), found


def test_cancelled_without_points_back(client, database, clock, auth_headers, make_member):
    code = _redeem(client, database, clock, auth_headers, make_member)
    with database.unit_of_work() as s:
        s.execute(update(Redemption).where(Redemption.code == code).values(status="cancelled"))
    with database.unit_of_work() as s:
        found = run_check(s)
    assert any(f"redemption {code} (cancelled)" in v and "given back" in v for v in found), found


def test_flash_sale_granted_more_than_redeemed(client, database, clock, auth_headers, make_member):
    _redeem(client, database, clock, auth_headers, make_member)
    op = auth_headers("operator")
    r = client.post(
        "/api/v1/mall/flash-sales",
        json={
            "gift_code": "MUG",
            "points": 10,
            "quantity": 5,
            "starts_at": clock.now().isoformat(),
            "ends_at": "2030-01-01T00:00:00+00:00",
        },
        headers=op,
    )
    assert r.status_code == 201, r.text
    with database.unit_of_work() as s:
        s.execute(update(FlashSale).values(granted=2))
    with database.unit_of_work() as s:
        found = run_check(s)
    assert any("granted 2 unit(s), its redemptions hold 0" in v for v in found), found


def test_a_price_changed_behind_its_history(client, database, clock, auth_headers):
    op = auth_headers("operator")
    setup_gift(client, op, "VASE", points=500)
    body = {"code": "VASE", "name": "Vase", "category": "home", "points": 450}
    assert client.put("/api/v1/mall/gifts/VASE", json=body, headers=op).status_code == 200
    with database.unit_of_work() as s:
        assert run_check(s) == []
        s.execute(update(Gift).values(points=400))
    with database.unit_of_work() as s:
        found = run_check(s)
    assert found == ["gift VASE costs 400 points; its price history ends at 450"], found
    with database.unit_of_work() as s:
        s.execute(update(Gift).values(points=450, base_points=300))
    with database.unit_of_work() as s:
        found = run_check(s)
    assert found == ["gift VASE is marked down to 450 points, above its price 300"], found
