"""Registration cohorts and the purchase funnel (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update

from patron.analytics import cohorts
from patron.analytics.domain import Ratio
from patron.ledger.models import PointsPosting
from patron.members.models import Member
from patron.orders.models import Order
from tests.analytics.history import add_members, add_orders

SH = ZoneInfo("Asia/Shanghai")


def test_empty_database(database, clock):
    with database.unit_of_work() as s:
        r = cohorts.cohorts(s, now=clock.now(), tz=SH)
    assert [c.month for c in r.cohorts] == [
        "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03",
    ]  # fmt: skip
    assert all(c.members == 0 for c in r.cohorts)
    assert r.funnel.registered == 0
    assert r.funnel.first_purchase.value is None


def test_cohorts_and_funnel(database, clock):
    with database.unit_of_work() as s:
        # three in January (one of them registered 31 January 20:00 Shanghai = 12:00 UTC),
        # one in February
        jan = add_members(s, 2, at=datetime(2026, 1, 10, 2, tzinfo=ZoneInfo("UTC")))
        late = add_members(s, 1, start_id=3, at=datetime(2026, 1, 31, 12, tzinfo=ZoneInfo("UTC")))
        feb = add_members(s, 1, start_id=4, at=datetime(2026, 2, 3, 2, tzinfo=ZoneInfo("UTC")))
        a, b = jan
        add_orders(
            s,
            [
                (a, date(2026, 1, 12), 1000),
                (a, date(2026, 1, 20), 1000),  # same month: counted once
                (a, date(2026, 3, 1), 1000),
                (b, date(2026, 2, 5), 1000),
                (late[0], date(2026, 2, 1), 1000),
            ],
        )
        add_orders(s, [(feb[0], date(2026, 2, 4), 500)], status="returned")
        r = cohorts.cohorts(s, now=clock.now(), tz=SH)
    by = {c.month: c for c in r.cohorts}
    assert by["2026-01"].members == 3
    assert by["2026-01"].retention == [Ratio(1, 3), Ratio(2, 3), Ratio(1, 3)]
    assert by["2026-02"].members == 1
    assert by["2026-02"].retention == [Ratio(0, 1), Ratio(0, 1)]
    assert by["2026-03"].retention == [Ratio(0, 0)]
    assert r.funnel.registered == 4
    assert r.funnel.first_purchase == Ratio(3, 4)
    assert r.funnel.second_purchase == Ratio(1, 3)


def _posting(member_id: int, kind: str, delta: int, key: str, reverses: int | None = None):
    at = datetime(2026, 2, 20, 2, tzinfo=UTC)
    return {
        "member_id": member_id,
        "kind": kind,
        "available_delta": delta,
        "pending_delta": 0,
        "debt_delta": 0,
        "idempotency_key": key,
        "reverses_id": reverses,
        "created_at": at,
    }


def test_spend_curves_points_funnel_and_attribution(database, clock):
    """Hand-made data: returns (full and partial), an erased member, a member with no orders,
    months with nobody, members registered before the window, an undone redemption."""
    with database.unit_of_work() as s:
        jan = add_members(s, 2, at=datetime(2026, 1, 10, 2, tzinfo=UTC))
        late = add_members(s, 1, start_id=3, at=datetime(2026, 1, 31, 12, tzinfo=UTC))
        feb = add_members(s, 2, start_id=4, at=datetime(2026, 2, 3, 2, tzinfo=UTC))
        old = add_members(s, 2, start_id=6, at=datetime(2025, 6, 1, 2, tzinfo=UTC))
        a, b = jan
        erased, idle = feb
        s.execute(
            update(Member)
            .where(Member.id.in_([b, late[0]]))
            .values(registration_channel="store", registration_store_code="S1")
        )
        s.execute(
            update(Member)
            .where(Member.id == idle)
            .values(registration_channel="app", registration_store_code="S2")
        )
        s.execute(update(Member).where(Member.id == erased).values(status="erased"))
        add_orders(
            s,
            [
                (a, date(2026, 1, 12), 1000),
                (a, date(2026, 1, 20), 1000),
                (a, date(2026, 3, 1), 3000),  # 500 of it refunded below
                (b, date(2026, 2, 5), 2000),
                (late[0], date(2026, 3, 1), 400),
                (erased, date(2026, 2, 4), 9999),
                (old[0], date(2025, 7, 1), 500),  # first purchase before the window
                (old[0], date(2026, 2, 10), 800),
                (old[1], date(2026, 2, 12), 1500),
            ],
        )
        add_orders(s, [(b, date(2026, 2, 6), 700), (late[0], date(2026, 2, 1), 1000)],
                   status="returned")  # fmt: skip
        s.execute(
            update(Order)
            .where(Order.member_id == a, Order.business_date == date(2026, 3, 1))
            .values(refunded_fen=500)
        )
        s.execute(update(Order).where(Order.member_id == a).values(store_code="S1"))
        s.execute(update(Order).where(Order.member_id.in_([b, old[1]])).values(channel="online"))
        s.execute(
            insert(PointsPosting),
            [
                _posting(a, "earn", 100, "e1"),
                _posting(b, "earn", 100, "e2"),
                _posting(late[0], "earn", 50, "e3"),
                _posting(erased, "earn", 100, "e4"),
                _posting(a, "redeem", -40, "r1"),
                _posting(erased, "redeem", -40, "r4"),
            ],
        )
        undone = s.scalar(
            insert(PointsPosting)
            .values(_posting(b, "redeem", -30, "r2"))
            .returning(PointsPosting.id)
        )
        s.execute(insert(PointsPosting).values(_posting(b, "reversal", 30, "x2", undone)))
        r = cohorts.cohorts(s, now=clock.now(), tz=SH)

    by = {c.month: c for c in r.cohorts}
    jan_c = by["2026-01"]
    assert jan_c.members == 3
    assert jan_c.retention == [Ratio(1, 3), Ratio(1, 3), Ratio(2, 3)]
    assert jan_c.spend_fen == [2000, 2000, 2500 + 400]
    assert jan_c.spend_per_member == [667, 1333, 2300]  # 2,000 / 3, 4,000 / 3, 6,900 / 3
    assert by["2026-02"].members == 1  # the erased member is left out
    assert by["2026-02"].spend_fen == [0, 0]
    assert by["2026-02"].spend_per_member == [0, 0]
    assert by["2026-03"].spend_per_member == [None]
    assert by["2025-12"].spend_fen == [0, 0, 0, 0]
    assert by["2025-12"].spend_per_member == [None] * 4

    f = r.funnel
    assert f.registered == 6
    assert (f.first_purchase, f.second_purchase) == (Ratio(5, 6), Ratio(2, 5))
    assert f.earned == Ratio(3, 6)
    assert f.redeemed == Ratio(1, 3)  # b's redemption was undone

    at = r.attribution
    assert at.since == "2025-10"
    assert at.registrations_by_channel == [
        ("store", Ratio(2, 4)), ("app", Ratio(1, 4)), ("web", Ratio(1, 4)),
    ]  # fmt: skip
    assert at.registrations_by_store == [
        ("S1", Ratio(2, 4)), ("", Ratio(1, 4)), ("S2", Ratio(1, 4)),
    ]  # fmt: skip
    # First purchases in the window: a (S1), b (online), late (its February order was returned),
    # old[1]; old[0] bought first in July 2025, the erased member is left out.
    assert at.first_orders_by_channel == [("online", Ratio(2, 4)), ("store", Ratio(2, 4))]
    assert at.first_orders_by_store == [("", Ratio(3, 4)), ("S1", Ratio(1, 4))]


def test_attribution_of_an_empty_database(database, clock):
    with database.unit_of_work() as s:
        r = cohorts.cohorts(s, now=clock.now(), tz=SH)
    assert r.attribution.registrations_by_channel == []
    assert r.attribution.first_orders_by_store == []
    assert r.funnel.earned == Ratio(0, 0) and r.funnel.redeemed == Ratio(0, 0)
