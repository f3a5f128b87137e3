"""The mall's jobs: unclaimed pickup codes are released once (points and stock back through
the cancel path, the member told), and slow movers are marked down within the operator's
bounds with a price history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from patron import checks
from patron.mall import domain, jobs, pricing
from patron.mall import service as mall
from patron.mall.models import Gift, PriceChange, Redemption
from patron.webhooks.models import WebhookEvent
from tests.mall.helpers import ACTOR, SH, grant, setup_gift, store
from tests.statements import count_statements

API = "/api/v1/mall"


def test_marked_down_rule():
    assert domain.marked_down(1000, 1000, 10, 70) == 900
    assert domain.marked_down(1000, 750, 10, 70) == 700  # never below the floor
    assert domain.marked_down(1000, 700, 10, 70) == 700  # at the floor: no change
    assert domain.marked_down(5, 5, 10, 70) == 4  # at least one point a step
    assert domain.marked_down(1, 1, 10, 10) == 1  # never below one point
    assert domain.turnover_permille(10, 5, 15) == 1000
    assert domain.turnover_permille(3, 0, 0) is None


def _events(database, kind: str) -> list[dict]:
    with database.unit_of_work() as s:
        return [
            e.payload
            for e in s.scalars(select(WebhookEvent).where(WebhookEvent.event_type == kind))
        ]


def test_unclaimed_codes_are_released_once(client, database, clock, api_key_headers, make_member):
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage", "catalog:write", "points:read")
    store(client, op)
    setup_gift(client, op, "MUG", points=100, stock={"east": 5})
    no = make_member()
    grant(database, clock, no, 1000)
    body = {"member_no": no, "gift_code": "MUG", "store_code": "SH001"}
    codes = [client.post(f"{API}/redemptions", json=body, headers=op).json()["code"] for _ in "abc"]
    shipped = client.post(
        f"{API}/redemptions", json={**body, "delivery": "ship"}, headers=op
    ).json()["code"]
    verified = codes.pop()
    r = client.post(
        f"{API}/verifications", json={"code": verified, "store_code": "SH001"}, headers=op
    )
    assert r.status_code == 200
    assert client.get(f"/api/v1/members/{no}/points", headers=op).json()["available"] == 600
    tz = SH
    assert jobs.run_release_unclaimed(database, clock.now(), tz) == 0  # nothing expired yet
    clock.advance(timedelta(days=31))  # past code_valid_days (30)
    with count_statements(database.engine) as log:
        assert jobs.run_release_unclaimed(database, clock.now(), tz) == 2
    assert log.count <= 2 + 2 * 32, log.report()  # the read, and per code the cancel path
    assert jobs.run_release_unclaimed(database, clock.now(), tz) == 0  # once
    assert client.get(f"/api/v1/members/{no}/points", headers=op).json()["available"] == 800
    assert client.get(f"{API}/gifts/MUG", headers=op).json()["available"] == 3  # 5 - 1 - 1 kept
    with database.unit_of_work() as s:
        status = dict(s.execute(select(Redemption.code, Redemption.status)).all())
        assert [status[c] for c in codes] == ["cancelled", "cancelled"]
        assert (status[verified], status[shipped]) == ("fulfilled", "reserved")
        assert checks.run_all(s) == []
    told = _events(database, "mall.redemption.unclaimed")
    assert sorted(e["code"] for e in told) == sorted(codes)
    assert {e["member_no"] for e in told} == {no} and told[0]["points_returned"] == 100
    assert len(_events(database, "mall.redemption.cancelled")) == 2


def test_slow_movers_are_marked_down_within_bounds(client, database, clock, api_key_headers):
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage")
    setup_gift(client, op, "VASE", points=1000, stock={"north": 3})
    setup_gift(client, op, "PEN", points=200, stock={"east": 3})
    clock.advance(timedelta(days=91))  # nothing redeemed for 91 days: both are slow movers
    assert jobs.run_markdowns(database, clock.now(), SH) == 0  # off by default
    with database.unit_of_work() as s:
        on = mall.get_settings(s).model_copy(
            update={
                "markdown_enabled": True,
                "markdown_step_percent": 15,
                "markdown_floor_percent": 60,
                "markdown_every_days": 30,
            }
        )
        mall.put_settings(s, ACTOR, on, clock.now())
    assert jobs.run_markdowns(database, clock.now(), SH) == 2
    assert jobs.run_markdowns(database, clock.now(), SH) == 0  # once per 30 days
    prices = []
    for _ in range(4):
        clock.advance(timedelta(days=30))
        jobs.run_markdowns(database, clock.now(), SH)
        prices.append(client.get(f"{API}/gifts/VASE", headers=op).json()["points"])
    assert prices == [700, 600, 600, 600]  # 1000 → 850 → 700 → 600 (the floor), then stays
    # the operator's change ends the markdown and is in the history
    body = {"code": "VASE", "name": "Vase", "category": "home", "points": 900}
    assert client.put(f"{API}/gifts/VASE", json=body, headers=op).status_code == 200
    with database.unit_of_work() as s:
        gift = s.scalar(select(Gift).where(Gift.code == "VASE"))
        assert (gift.points, gift.base_points) == (900, None)
        changes = [(c.old_points, c.new_points, c.reason) for c in pricing.history(s, gift)]
        assert changes == [
            (600, 900, "operator"),
            (700, 600, "slow_mover"),
            (850, 700, "slow_mover"),
            (1000, 850, "slow_mover"),
        ]
        assert s.scalar(select(func.count()).select_from(PriceChange)) == 4 + 3  # PEN: 3 steps
        assert checks.run_all(s) == []
    # 30 days on, VASE (back at the operator's 900) is marked down from its new price
    clock.advance(timedelta(days=30))
    with database.unit_of_work() as s:
        ctx = mall.make_ctx(s, ACTOR, clock.now(), SH)
        done = {c.gift_id: (c.old_points, c.new_points) for c in pricing.apply_markdowns(s, ctx)}
        vase = s.scalar(select(Gift.id).where(Gift.code == "VASE"))
        assert done[vase] == (900, 765)
