"""Check-in plans beyond the daily points: a coupon for a streak, the month plan's steps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, select

from patron.checkin import domain
from patron.checkin import service as checkin
from patron.checkin.domain import CheckinSettings, PlanReward
from patron.checkin.models import CheckIn
from patron.checks import run_all
from patron.coupons import service as coupons
from patron.coupons.domain import TemplateRules
from patron.coupons.models import Coupon
from patron.errors import Conflict
from patron.ledger import queries as ledger_queries
from patron.program import service as program
from tests.portal.helpers import ACTOR, ctx, new_member
from tests.statements import count_statements

D = date(2026, 3, 1)
#: 10:00 in Shanghai on 1 March
MORNING = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def test_rewards_name_the_coupons_due():
    s = CheckinSettings(
        streak_bonuses={},
        streak_coupons={7: "T7"},
        month_plan={3: PlanReward(points=30), 20: PlanReward(points=100, coupon="M20")},
    )
    assert domain.reward(7, s, 2).coupons == (("streak7", "T7"),)
    got = domain.reward(7, s, 20)
    assert (got.bonus, got.coupons) == (100, (("streak7", "T7"), ("month20", "M20")))
    assert domain.reward(3, s, 3).bonus == 30 and domain.reward(3, s, 3).coupons == ()
    assert domain.next_plan_step(0, s) == (3, PlanReward(points=30))
    assert domain.next_plan_step(3, s) == (17, PlanReward(points=100, coupon="M20"))
    assert domain.next_plan_step(20, s) is None
    assert domain.coupon_ref(D, "streak7") == "2026-03-01:streak7"
    with pytest.raises(ValueError):
        CheckinSettings(month_plan={32: PlanReward(points=1)})
    with pytest.raises(ValueError):
        CheckinSettings(month_plan={5: PlanReward()})
    with pytest.raises(ValueError):
        CheckinSettings(streak_coupons={0: "T7"})


def _setup(database, clock, settings: CheckinSettings) -> int:
    with database.unit_of_work() as s:
        c = ctx(s, clock.now())
        for code in ("T3", "M2"):
            coupons.put_template(
                s,
                c,
                code,
                name=code,
                rules=TemplateRules(kind="amount_off", amount_fen=500, valid_days=30),
                total_quantity=None,
                per_member_limit=10,
                points_price=0,
                status="active",
            )
        program.put_section(s, ACTOR, domain.SECTION, settings, now=clock.now())
        return new_member(s, clock.now()).id


def _check_in(database, clock, member_id):
    with database.unit_of_work() as s:
        return checkin.check_in(s, ctx(s, clock.now()), member_id)


def _coupons(database, member_id):
    with database.unit_of_work() as s:
        return s.execute(
            select(Coupon.issue_key, Coupon.reason)
            .where(Coupon.member_id == member_id)
            .order_by(Coupon.id)
        ).all()


def test_a_streak_coupon_once_per_streak_across_the_day_boundary(database, clock):
    clock.set(MORNING)
    mid = _setup(
        database, clock, CheckinSettings(streak_bonuses={}, streak_coupons={3: "T3"}, cycle_days=0)
    )
    # 23:59 on 1 March and 00:01 on 2 March in Shanghai are two days in a row
    clock.set(datetime(2026, 3, 1, 15, 59, tzinfo=UTC))
    _check_in(database, clock, mid)
    clock.set(datetime(2026, 3, 1, 16, 1, tzinfo=UTC))
    _check_in(database, clock, mid)
    clock.set(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))  # 07:00 on 3 March
    third = _check_in(database, clock, mid)
    assert third.streak == 3 and len(third.issued) == 1
    assert _coupons(database, mid) == [("checkin:2026-03-03:streak3", "checkin")]
    # the same day again: refused, nothing more; rerunning the issue replays
    with pytest.raises(Conflict):
        _check_in(database, clock, mid)
    with database.unit_of_work() as s:
        again = checkin._give_coupons(s, ctx(s, clock.now()), mid, date(2026, 3, 3), third)
        assert again == ()
    assert len(_coupons(database, mid)) == 1
    # day 4 gives nothing; a missed day breaks the streak, and the next streak earns it again
    clock.advance(timedelta(days=1))
    assert _check_in(database, clock, mid).issued == ()
    clock.advance(timedelta(days=2))
    for _ in range(3):
        got = _check_in(database, clock, mid)
        clock.advance(timedelta(days=1))
    assert got.streak == 3 and len(got.issued) == 1
    assert [k for k, _ in _coupons(database, mid)] == [
        "checkin:2026-03-03:streak3",
        "checkin:2026-03-08:streak3",
    ]
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_the_month_plan_counts_days_in_the_business_month(database, clock):
    clock.set(datetime(2026, 3, 30, 2, 0, tzinfo=UTC))
    mid = _setup(
        database,
        clock,
        CheckinSettings(
            points_per_day=1, streak_bonuses={}, month_plan={2: PlanReward(points=50, coupon="M2")}
        ),
    )
    first = _check_in(database, clock, mid)
    assert (first.month_days, first.total, first.issued) == (1, 1, ())
    clock.advance(timedelta(days=1))  # 31 March: the second day of March
    second = _check_in(database, clock, mid)
    assert (second.month_days, second.total, len(second.issued)) == (2, 51, 1)
    with database.unit_of_work() as s:
        state = checkin.status(s, ctx(s, clock.now()), mid)
        assert (state.month_days, state.next_plan_step) == (2, None)
    # 1 April at 00:30 in Shanghai: a new month counts from one again
    clock.set(datetime(2026, 3, 31, 16, 30, tzinfo=UTC))
    with database.unit_of_work() as s:
        state = checkin.status(s, ctx(s, clock.now()), mid)
        assert (state.month_days, state.next_plan_step[0]) == (0, 2)
    assert _check_in(database, clock, mid).month_days == 1
    with database.unit_of_work() as s:
        assert ledger_queries.balance(s, mid, clock.now()).available == 53
    assert _coupons(database, mid) == [("checkin:2026-03-31:month2", "checkin")]


def test_a_missing_or_paused_template_does_not_stop_the_check_in(database, clock):
    clock.set(MORNING)
    mid = _setup(
        database,
        clock,
        CheckinSettings(
            streak_bonuses={}, streak_coupons={1: "NOPE"}, month_plan={1: PlanReward(coupon="T3")}
        ),
    )
    with database.unit_of_work() as s:
        coupons.get_template(s, "T3").status = "paused"
    got = _check_in(database, clock, mid)
    assert (got.total, got.issued) == (5, ())
    assert _coupons(database, mid) == []


def test_check_reports_a_checkin_coupon_without_its_check_in(database, clock):
    clock.set(MORNING)
    mid = _setup(database, clock, CheckinSettings(streak_bonuses={}, streak_coupons={1: "T3"}))
    got = _check_in(database, clock, mid)
    with database.unit_of_work() as s:
        assert run_all(s) == []
        s.execute(delete(CheckIn))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any(f"coupon {got.issued[0]} was given for a check-in" in v for v in found), found


# the check-in with a streak coupon: settings, the member's lock, the last check-in, the month's
# count, the ledger earning, the row; then the coupon issue (template lock, holdings, counter,
# coupon, history, event, audit)
BUDGET = {"sqlite": 30, "postgresql": 30}


def test_statements_of_a_check_in_with_a_coupon(database, clock):
    clock.set(MORNING)
    mid = _setup(
        database,
        clock,
        CheckinSettings(
            streak_bonuses={}, streak_coupons={1: "T3"}, month_plan={5: PlanReward(points=1)}
        ),
    )
    with count_statements(database.engine) as log:
        got = _check_in(database, clock, mid)
    assert len(got.issued) == 1
    budget = BUDGET[database.dialect]
    assert log.count <= budget, f"{log.count} statements > {budget}\n{log.report()}"
