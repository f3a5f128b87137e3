"""Flash sales and lotteries through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from patron import checks
from patron.mall.models import LotteryDraw, LotteryPrize
from tests.mall.helpers import grant, setup_gift

R = "/api/v1/mall/redemptions"


@pytest.fixture
def op(auth_headers):
    return auth_headers("operator")


def _clean(database):
    with database.unit_of_work() as s:
        assert checks.run_all(s) == []


def test_flash_sale_grants_exactly_its_quantity(client, database, clock, op, make_member):
    setup_gift(client, op, stock={"east": 10})
    start = clock.now() + timedelta(minutes=5)
    sale = client.post(
        "/api/v1/mall/flash-sales",
        json={
            "gift_code": "MUG",
            "points": 50,
            "quantity": 2,
            "per_member_limit": 1,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        },
        headers=op,
    ).json()
    members = [make_member() for _ in range(3)]
    for no in members:
        grant(database, clock, no, 100)
    body = {"gift_code": "MUG", "flash_sale_id": sale["id"]}
    early = client.post(R, json={"member_no": members[0], **body}, headers=op)
    assert early.status_code == 409 and early.json()["error"]["code"] == "flash_not_started"
    clock.set(start)
    first = client.post(R, json={"member_no": members[0], **body}, headers=op)
    assert first.status_code == 201 and first.json()["points"] == 50
    again = client.post(R, json={"member_no": members[0], **body}, headers=op)
    assert again.json()["error"]["code"] == "over_member_limit"
    assert client.post(R, json={"member_no": members[1], **body}, headers=op).status_code == 201
    lost = client.post(R, json={"member_no": members[2], **body}, headers=op)
    assert lost.status_code == 409 and lost.json()["error"]["code"] == "flash_sold_out"
    # the loser kept every point
    pts = client.get(f"/api/v1/members/{members[2]}/points", headers=op).json()["available"]
    assert pts == 100
    # a cancelled unit goes back to the sale
    client.post(f"{R}/{first.json()['code']}/cancel", json={}, headers=op)
    assert client.post(R, json={"member_no": members[2], **body}, headers=op).status_code == 201
    listed = client.get("/api/v1/mall/flash-sales", headers=op).json()["items"][0]
    assert (listed["granted"], listed["remaining"]) == (2, 0)
    _clean(database)


def _pool(**over):
    body = {
        "code": "WHEEL",
        "name": "Lucky wheel",
        "cost_points": 10,
        "daily_limit": 2,
        "prizes": [
            {"name": "Vase", "kind": "item", "ppm": 1_000_000, "stock": 1},
            {"name": "Thanks", "kind": "none", "ppm": 0, "is_fallback": True},
        ],
    }
    body.update(over)
    return body


def test_lottery_draws_fall_back_and_respect_the_daily_limit(
    client, database, clock, api_key_headers, make_member
):
    # an API key: a staff token would lapse when the clock moves a day
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage", "points:read")
    r = client.put("/api/v1/mall/lotteries/WHEEL", json=_pool(), headers=op)
    assert r.status_code == 200, r.text
    no = make_member()
    grant(database, clock, no, 100)
    d1 = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    assert d1.status_code == 201, d1.text
    assert d1.json()["prize"]["name"] == "Vase" and not d1.json()["fell_back"]
    d2 = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    # the only vase is gone: the draw gives the fallback prize
    assert d2.json()["prize"]["name"] == "Thanks" and d2.json()["fell_back"]
    assert d2.json()["draws_left_today"] == 0
    d3 = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    assert d3.status_code == 409 and d3.json()["error"]["code"] == "over_daily_limit"
    assert client.get(f"/api/v1/members/{no}/points", headers=op).json()["available"] == 80
    clock.advance(timedelta(days=1))
    # a new version of the pool: earlier draws keep the version they used
    client.put(
        "/api/v1/mall/lotteries/WHEEL",
        json=_pool(
            prizes=[
                {"name": "50 points", "kind": "points", "award_points": 50, "ppm": 1_000_000},
                {"name": "Thanks", "kind": "none", "ppm": 0, "is_fallback": True},
            ]
        ),
        headers=op,
    )
    d4 = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    assert d4.json()["pool_version"] == 2 and d4.json()["points_awarded"] == 50
    assert client.get(f"/api/v1/members/{no}/points", headers=op).json()["available"] == 120
    with database.unit_of_work() as s:
        versions = sorted(v for (v,) in s.execute(select(LotteryDraw.pool_version)))
    assert versions == [1, 1, 2]
    _clean(database)


def test_pool_whose_odds_do_not_sum_to_one_is_refused(client, database, op):
    bad = _pool(
        prizes=[
            {"name": "Vase", "kind": "item", "ppm": 500_000, "stock": 1},
            {"name": "Thanks", "kind": "none", "ppm": 400_000, "is_fallback": True},
        ]
    )
    r = client.put("/api/v1/mall/lotteries/WHEEL", json=bad, headers=op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "lottery_odds_not_one"
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(LotteryPrize)) == 0
    assert client.get("/api/v1/mall/lotteries/WHEEL", headers=op).status_code == 404


def test_lottery_with_too_few_points_writes_nothing(client, database, clock, op, make_member):
    client.put("/api/v1/mall/lotteries/WHEEL", json=_pool(), headers=op)
    no = make_member()
    grant(database, clock, no, 5)
    r = client.post("/api/v1/mall/lotteries/WHEEL/draws", json={"member_no": no}, headers=op)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(LotteryDraw)) == 0
        assert s.scalar(select(LotteryPrize.stock).where(LotteryPrize.name == "Vase")) == 1
