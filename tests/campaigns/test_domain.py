"""Pure campaign rules: schedules in business dates, budgets, caps, assignment, uplift."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from patron.campaigns import domain, experiment
from patron.campaigns.domain import (
    Annual,
    Audience,
    BirthdayMonth,
    LastWeekend,
    Monthly,
    OneOff,
    Weekly,
)
from patron.rules.definitions import applies_to, last_weekend


def test_member_day_weekly_and_monthly():
    thursday = Weekly(weekdays=(4,))
    assert domain.is_on(thursday, date(2026, 3, 5))
    assert not domain.is_on(thursday, date(2026, 3, 6))
    eighth = Monthly(days=(8, 18), active_from=date(2026, 3, 1))
    assert domain.is_on(eighth, date(2026, 3, 18))
    assert not domain.is_on(eighth, date(2026, 2, 18))  # before it is in force
    assert domain.next_days(eighth, date(2026, 3, 9), count=3) == [
        date(2026, 3, 18),
        date(2026, 4, 8),
        date(2026, 4, 18),
    ]


def test_last_weekend_of_the_month():
    # March 2026 ends on a Tuesday: its last weekend is 28-29 March
    assert [d.day for d in domain.next_days(LastWeekend(), date(2026, 3, 1), count=2)] == [28, 29]
    # January 2028 ends on a Monday: 29-30; October 2026 ends on a Saturday: the 31st alone
    assert last_weekend(date(2028, 1, 29)) and last_weekend(date(2028, 1, 30))
    assert last_weekend(date(2026, 10, 31))
    assert not last_weekend(date(2026, 10, 24))
    assert not last_weekend(date(2026, 10, 25))  # the Sunday after the 24th is not the last


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_last_weekend_is_a_weekend_within_the_last_seven_days(day):
    if last_weekend(day):
        assert day.isoweekday() in (6, 7)
        later = [date.fromordinal(day.toordinal() + k) for k in range(1, 8)]
        assert not any(d.isoweekday() == 6 and d.month == day.month for d in later)


def test_annual_carnival_runs_over_the_new_year():
    carnival = Annual(start_month=12, start_day=20, end_month=1, end_day=5)
    assert domain.is_on(carnival, date(2026, 12, 31))
    assert domain.is_on(carnival, date(2027, 1, 5))
    assert not domain.is_on(carnival, date(2027, 1, 6))
    with pytest.raises(ValidationError):
        Annual(start_month=4, start_day=31, end_month=5, end_day=1)


def test_one_off_and_birthday_month_audience():
    week = OneOff(start=date(2026, 3, 1), end=date(2026, 3, 7))
    assert domain.is_on(week, date(2026, 3, 7)) and not domain.is_on(week, date(2026, 3, 8))
    with pytest.raises(ValidationError):
        OneOff(start=date(2026, 3, 2), end=date(2026, 3, 1))
    window = domain.to_window(
        BirthdayMonth(),
        campaign_id=7,
        name="birthday",
        multiplier_bp=20_000,
        audience=Audience(tiers=("gold",)),
        budget_points=100,
        holdout=None,
    )
    march = date(2026, 3, 10)
    kw = {"member_id": 1, "joined": None}
    assert applies_to(window, march, tier_code="gold", birthday=date(1990, 3, 2), **kw)
    assert not applies_to(window, march, tier_code="gold", birthday=date(1990, 4, 2), **kw)
    assert not applies_to(window, march, tier_code="silver", birthday=date(1990, 3, 2), **kw)


def test_budget_cap_and_costs():
    # 95 % of the smaller of 10,000 points and what ¥50 buys (5,000 points at 100 points = ¥1)
    assert (
        domain.points_cap(budget_points=10_000, budget_fen=5_000, cap_bp=9_500, fen_per_100=100)
        == 4_750
    )
    assert (
        domain.points_cap(budget_points=None, budget_fen=None, cap_bp=9_500, fen_per_100=100)
        is None
    )
    assert domain.points_cost_fen(101, 100) == 101
    assert domain.points_cost_fen(1, 50) == 1  # rounded up
    assert domain.budget_reached(4_750, 4_750) and not domain.budget_reached(4_749, 4_750)


def test_action_caps():
    kw = {"daily_cap": 2, "total_cap": 5, "budget_left": None}
    assert domain.action_points(10, done_today=1, done_total=1, **kw) == (10, None)
    assert domain.action_points(10, done_today=2, done_total=2, **kw) == (0, "daily_cap")
    assert domain.action_points(10, done_today=0, done_total=5, **kw) == (0, "total_cap")
    kw["budget_left"] = 9
    assert domain.action_points(10, done_today=0, done_total=0, **kw) == (0, "budget")


def test_assignment_is_deterministic_and_balanced_by_tier():
    key = "campaign:spring"
    groups = [experiment.group_of(key, m, 1_000) for m in range(1, 20_001)]
    assert groups == [experiment.group_of(key, m, 1_000) for m in range(1, 20_001)]
    # tiers by id stripes: every stratum holds about 10 % controls
    for tier in range(4):
        stratum = [g for m, g in enumerate(groups, 1) if m % 4 == tier]
        share = stratum.count("control") / len(stratum)
        assert 0.085 < share < 0.115
    assert experiment.group_of(key, 5, 0) == "treatment"
    # another experiment draws another control group
    other = [experiment.group_of("campaign:autumn", m, 1_000) for m in range(1, 20_001)]
    assert other != groups


def test_uplift_recovers_a_known_effect():
    rng = np.random.default_rng(7)
    n = 4_000

    # control: 20 % buy, spend ~ ¥200; treatment: 30 % buy, same basket → +¥20 per member
    def spends(p):
        buy = rng.random(n) < p
        return [int(x) if b else 0 for b, x in zip(buy, rng.normal(20_000, 3_000, n), strict=True)]

    up = experiment.uplift(spends(0.30), spends(0.20))
    assert up.conversion is not None and up.spend_per_member is not None
    assert up.conversion.low < 0.10 < up.conversion.high
    assert up.conversion.low > 0  # significant
    assert up.spend_per_member.low < 2_000 < up.spend_per_member.high
    # no effect: the interval covers zero
    none = experiment.uplift(spends(0.2), spends(0.2))
    assert none.spend_per_member is not None
    assert none.spend_per_member.low < 0 < none.spend_per_member.high


def test_stratified_uplift_removes_tier_imbalance():
    rng = np.random.default_rng(11)

    # gold members spend ¥1000, base ¥100; +¥50 effect in both tiers; control over-weights gold
    def draw(mean, n):
        return [int(v) for v in rng.normal(mean, 1_000, n)]

    strata = {
        "gold": (draw(105_000, 500), draw(100_000, 500)),
        "base": (draw(15_000, 4_500), draw(10_000, 500)),
    }
    naive = experiment.uplift(
        strata["gold"][0] + strata["base"][0], strata["gold"][1] + strata["base"][1]
    )
    assert naive.spend_per_member is not None and naive.spend_per_member.estimate < 0  # biased
    est = experiment.stratified_spend_uplift(strata)
    assert est is not None and est.low < 5_000 < est.high


def test_every_schedule_the_api_accepts_compiles_to_a_window():
    """What the campaign's model accepts, the earning rules accept too (no 500 at start)."""
    with pytest.raises(ValidationError):
        Weekly(weekdays=(4, 4))
    with pytest.raises(ValidationError):
        Monthly(days=(8, 8))
    for schedule in (
        Weekly(weekdays=(1, 7)),
        Monthly(days=(31,)),
        LastWeekend(active_from=date(2026, 1, 1)),
        Annual(start_month=2, start_day=29, end_month=3, end_day=1),
        BirthdayMonth(),
        OneOff(start=date(2026, 1, 1), end=date(2027, 1, 1)),
    ):
        domain.to_window(
            schedule,
            campaign_id=1,
            name="x",
            multiplier_bp=20_000,
            audience=Audience(tiers=("gold",), joined_from=date(2025, 1, 1)),
            budget_points=1,
            holdout=None,
        )
