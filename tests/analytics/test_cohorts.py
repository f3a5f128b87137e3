"""Registration cohorts and the purchase funnel (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from patron.analytics import cohorts
from patron.analytics.domain import Ratio
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
