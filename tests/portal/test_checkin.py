"""Daily check-in: streak rules, business days in Asia/Shanghai, one per day, ledger points."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from patron.checkin import domain
from patron.checkin import service as checkin
from patron.checkin.domain import CheckinSettings
from patron.checkin.models import CheckIn
from patron.errors import Conflict
from patron.ledger import queries as ledger_queries
from patron.ledger.models import PointsPosting
from patron.program import service as program
from tests.portal.helpers import ACTOR, ctx, new_member

D = date(2026, 3, 1)


def test_streak_rules():
    assert domain.next_streak(None, 0, D, 30) == 1
    assert domain.next_streak(D - timedelta(days=1), 4, D, 30) == 5
    assert domain.next_streak(D - timedelta(days=2), 4, D, 30) == 1  # a missed day restarts
    assert domain.next_streak(D - timedelta(days=1), 30, D, 30) == 1  # the cycle restarts
    assert domain.next_streak(D - timedelta(days=1), 30, D, 0) == 31  # no cycle
    assert domain.current_streak(D - timedelta(days=1), 4, D) == 4
    assert domain.current_streak(D, 5, D) == 5
    assert domain.current_streak(D - timedelta(days=2), 4, D) == 0
    s = CheckinSettings()
    assert domain.reward(6, s).total == 5
    assert (domain.reward(7, s).points, domain.reward(7, s).bonus) == (5, 20)
    assert domain.reward(30, s).total == 105
    assert domain.next_bonus(3, s) == (4, 20)
    assert domain.next_bonus(7, s) == (23, 100)
    with pytest.raises(ValueError):
        CheckinSettings(streak_bonuses={0: 5})


def _check_in(database, clock, member_id):
    with database.unit_of_work() as s:
        return checkin.check_in(s, ctx(s, clock.now()), member_id)


def test_one_check_in_per_business_day_in_shanghai(database, clock):
    with database.unit_of_work() as s:
        mid = new_member(s, clock.now()).id
    # 23:59 on 1 March in Shanghai, then 00:01 on 2 March: two business days, 2 minutes apart
    clock.set(datetime(2026, 3, 1, 15, 59, tzinfo=UTC))
    assert _check_in(database, clock, mid).streak == 1
    with pytest.raises(Conflict) as again:
        _check_in(database, clock, mid)
    assert again.value.code == "already_checked_in"
    clock.set(datetime(2026, 3, 1, 16, 1, tzinfo=UTC))
    assert _check_in(database, clock, mid).streak == 2
    # 07:00 UTC on 2 March is still 2 March in Shanghai: refused although UTC "moved on"
    clock.set(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))
    with pytest.raises(Conflict):
        _check_in(database, clock, mid)
    # skip 3 March: the streak starts again
    clock.set(datetime(2026, 3, 4, 2, 0, tzinfo=UTC))
    assert _check_in(database, clock, mid).streak == 1
    with database.unit_of_work() as s:
        rows = checkin.month(s, mid, 2026, 3)
        assert [(r.business_date.day, r.streak) for r in rows] == [(1, 1), (2, 2), (4, 1)]
        postings = s.scalar(
            select(func.count())
            .select_from(PointsPosting)
            .where(PointsPosting.member_id == mid, PointsPosting.source_type == "checkin")
        )
        assert postings == 3
        assert ledger_queries.balance(s, mid, clock.now()).available == 15


def test_seven_day_bonus_and_operator_settings(database, clock):
    with database.unit_of_work() as s:
        mid = new_member(s, clock.now()).id
        program.put_section(
            s,
            ACTOR,
            domain.SECTION,
            CheckinSettings(points_per_day=2, streak_bonuses={3: 10}, cycle_days=3),
            now=clock.now(),
        )
    got = []
    for _ in range(4):
        got.append(_check_in(database, clock, mid))
        clock.advance(timedelta(days=1))
    assert [(r.streak, r.total) for r in got] == [(1, 2), (2, 2), (3, 12), (1, 2)]
    with database.unit_of_work() as s:
        assert ledger_queries.balance(s, mid, clock.now()).available == 18
        state = checkin.status(s, ctx(s, clock.now()), mid)
        assert (state.streak, state.checked_in_today) == (1, False)
        program.put_section(
            s, ACTOR, domain.SECTION, CheckinSettings(enabled=False), now=clock.now()
        )
    with pytest.raises(Conflict) as off:
        _check_in(database, clock, mid)
    assert off.value.code == "checkin_disabled"


def test_the_ledger_key_is_the_member_and_day(database, clock):
    """Even if the check-in row were lost, the ledger would not pay the same day twice."""
    with database.unit_of_work() as s:
        mid = new_member(s, clock.now()).id
    _check_in(database, clock, mid)
    with database.unit_of_work() as s:
        s.execute(CheckIn.__table__.delete())
    _check_in(database, clock, mid)
    with database.unit_of_work() as s:
        assert ledger_queries.balance(s, mid, clock.now()).available == 5
        keys = s.scalars(
            select(PointsPosting.idempotency_key).where(PointsPosting.source_type == "checkin")
        ).all()
        assert keys == [f"earn:checkin:{mid}:2026-03-01"]


def test_operators_edit_the_settings_through_the_api(client, auth_headers):
    r = client.get("/api/v1/checkin/settings", headers=auth_headers("operator"))
    assert r.status_code == 200
    assert r.json()["points_per_day"] == 5
    body = {"points_per_day": 3, "streak_bonuses": {"5": 15}, "cycle_days": 10, "enabled": True}
    assert (
        client.put("/api/v1/checkin/settings", json=body, headers=auth_headers("clerk")).status_code
        == 403
    )
    r = client.put("/api/v1/checkin/settings", json=body, headers=auth_headers("operator"))
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/checkin/settings", headers=auth_headers("operator")).json()[
        "streak_bonuses"
    ] == {"5": 15}
    bad = {**body, "points_per_day": -1}
    r = client.put("/api/v1/checkin/settings", json=bad, headers=auth_headers("operator"))
    assert r.status_code == 422
