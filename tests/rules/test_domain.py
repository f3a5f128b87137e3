"""The earning engine: a worked example per rule, then properties over random rule sets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from patron.rules.definitions import (
    BP,
    BaseRate,
    Combine,
    DateRangeWindow,
    EarningRules,
    FirstPurchaseBonus,
    GrowthRule,
    MonthlyWindow,
    ProfileCompletionBonus,
    Rounding,
    WeeklyWindow,
    WelcomeBonus,
)
from patron.rules.domain import (
    EarnContext,
    EarningResult,
    EarnLine,
    add_months,
    div_round,
    evaluate_order,
    evaluate_profile_completion,
    format_factor,
    format_fen,
    preview_earning,
    proportional_clawback,
    remaining_budgets,
)

SH = ZoneInfo("Asia/Shanghai")
# 2026-03-08 is a Sunday; 10:00 in Shanghai
MEMBER_DAY_NOON = datetime(2026, 3, 8, 2, 0, tzinfo=UTC)
PLAIN_DAY = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
MEMBER_DAY = MonthlyWindow(id="member_day", name="member day", days=(8,))


def earn(rules: EarningRules, *lines: tuple[str, int], **kw: Any) -> EarningResult:
    kw.setdefault("occurred_at", PLAIN_DAY)
    ctx = EarnContext(lines=tuple(EarnLine(category=c, paid_fen=p) for c, p in lines), **kw)
    return evaluate_order(rules, ctx, tz=SH)


def points_of(result: EarningResult) -> dict[str, int]:
    return {c.rule_id: c.points for c in result.points_trace}


# ------------------------------------------------------------------ base rate and rounding


def test_default_is_one_point_per_cny_rounded_down() -> None:
    result = earn(EarningRules(), ("daily", 12_345))
    assert result.points == 123
    assert result.base_points == 123
    assert result.growth == 123
    assert points_of(result) == {"base": 123}
    assert result.rule_ids() == ["base"]


def test_one_point_per_ten_cny() -> None:
    rules = EarningRules(base=BaseRate(points=1, per_fen=1_000))
    assert earn(rules, ("daily", 12_345)).points == 12
    assert earn(rules, ("daily", 999)).points == 0


@pytest.mark.parametrize(
    ("rounding", "paid", "expected"),
    [
        (Rounding.FLOOR, 150, 1),
        (Rounding.HALF_UP, 150, 2),
        (Rounding.HALF_UP, 149, 1),
        (Rounding.CEIL, 101, 2),
        (Rounding.CEIL, 100, 1),
    ],
)
def test_rounding_policies(rounding: Rounding, paid: int, expected: int) -> None:
    assert earn(EarningRules(rounding=rounding), ("daily", paid)).points == expected


def test_rounding_happens_once_per_order_not_per_line() -> None:
    # two lines of ¥1.50 earn 3 points, not 1 + 1
    assert earn(EarningRules(), ("daily", 150), ("daily", 150)).points == 3


def test_div_round_rejects_negative_input() -> None:
    with pytest.raises(ValueError, match="numerator"):
        div_round(-1, 2, Rounding.FLOOR)


# ------------------------------------------------------------------ category coefficients


def test_category_coefficients_explain_each_category() -> None:
    rules = EarningRules(category_coefficients={"beauty": 12_000, "fresh": 5_000, "tobacco": 0})
    result = earn(rules, ("beauty", 30_000), ("fresh", 10_000), ("tobacco", 5_000), ("daily", 100))
    # base 451; beauty +60; fresh −50; tobacco −50 → 360 + 50 + 0 + 1 = 411
    assert points_of(result) == {
        "base": 451,
        "category:beauty": 60,
        "category:fresh": -50,
        "category:tobacco": -50,
    }
    assert result.points == 411
    assert [c.factor_bp for c in result.points_trace[1:]] == [12_000, 5_000, 0]


def test_category_not_in_the_order_is_not_in_the_trace() -> None:
    rules = EarningRules(category_coefficients={"beauty": 12_000})
    assert points_of(earn(rules, ("daily", 1_000))) == {"base": 10}


# ------------------------------------------------------------------ multipliers


def test_tier_multiplier() -> None:
    result = earn(EarningRules(), ("daily", 30_000), tier_code="gold", tier_multiplier_bp=14_000)
    assert points_of(result) == {"base": 300, "tier:gold": 120}
    assert result.points == 420


def test_highest_multiplier_wins_by_default() -> None:
    rules = EarningRules(windows=(MEMBER_DAY,))
    result = earn(
        rules,
        ("daily", 30_000),
        occurred_at=MEMBER_DAY_NOON,
        tier_code="gold",
        tier_multiplier_bp=14_000,
    )
    assert result.points == 600
    tier, window = result.points_trace[1:]
    assert (tier.rule_id, tier.points, tier.requested) == ("tier:gold", 0, 0)
    assert "superseded" in tier.note
    assert (window.rule_id, window.points) == ("member_day", 300)
    assert result.rule_ids() == ["base", "member_day"]


def test_tier_wins_when_it_is_higher() -> None:
    rules = EarningRules(windows=(MEMBER_DAY.model_copy(update={"multiplier_bp": 15_000}),))
    result = earn(
        rules,
        ("daily", 10_000),
        occurred_at=MEMBER_DAY_NOON,
        tier_code="dia",
        tier_multiplier_bp=20_000,
    )
    assert points_of(result) == {"base": 100, "tier:dia": 100, "member_day": 0}


def test_multiply_combines_every_multiplier() -> None:
    holiday = DateRangeWindow(
        id="womens_day", start=date(2026, 3, 8), end=date(2026, 3, 8), multiplier_bp=15_000
    )
    rules = EarningRules(combine=Combine.MULTIPLY, windows=(holiday, MEMBER_DAY))
    result = earn(
        rules,
        ("daily", 10_000),
        occurred_at=MEMBER_DAY_NOON,
        tier_code="gold",
        tier_multiplier_bp=14_000,
    )
    # 100 × 1.4 × 1.5 × 2 = 420
    assert points_of(result) == {"base": 100, "tier:gold": 40, "womens_day": 70, "member_day": 210}
    assert result.points == 420


def test_date_range_window_is_inclusive_in_business_dates() -> None:
    golden_week = DateRangeWindow(id="golden_week", start=date(2026, 10, 1), end=date(2026, 10, 7))
    rules = EarningRules(windows=(golden_week,))
    # 2026-09-30 16:00 UTC is 2026-10-01 00:00 in Shanghai
    assert earn(rules, ("d", 1_000), occurred_at=datetime(2026, 9, 30, 16, tzinfo=UTC)).points == 20
    assert (
        earn(rules, ("d", 1_000), occurred_at=datetime(2026, 9, 30, 15, 59, tzinfo=UTC)).points
        == 10
    )
    assert (
        earn(rules, ("d", 1_000), occurred_at=datetime(2026, 10, 7, 15, 59, tzinfo=UTC)).points
        == 20
    )
    assert earn(rules, ("d", 1_000), occurred_at=datetime(2026, 10, 7, 16, tzinfo=UTC)).points == 10


def test_weekly_window_and_active_bounds() -> None:
    saturdays = WeeklyWindow(
        id="saturday",
        weekdays=(6,),
        multiplier_bp=30_000,
        active_from=date(2026, 3, 1),
        active_until=date(2026, 3, 31),
    )
    rules = EarningRules(windows=(saturdays,))
    sat_noon = datetime(2026, 3, 14, 4, tzinfo=UTC)
    assert earn(rules, ("d", 1_000), occurred_at=sat_noon).points == 30
    assert earn(rules, ("d", 1_000), occurred_at=sat_noon + timedelta(days=1)).points == 10
    assert earn(rules, ("d", 1_000), occurred_at=sat_noon + timedelta(days=21)).points == 10


@pytest.mark.parametrize(
    ("utc", "member_day"),
    [
        (datetime(2026, 3, 7, 15, 59, 59, tzinfo=UTC), False),  # 23:59:59 on the 7th
        (datetime(2026, 3, 7, 16, 0, 0, tzinfo=UTC), True),  # 00:00:00 on the 8th
        (datetime(2026, 3, 8, 15, 59, 59, tzinfo=UTC), True),  # 23:59:59 on the 8th
        (datetime(2026, 3, 8, 16, 0, 0, tzinfo=UTC), False),  # 00:00:00 on the 9th
    ],
)
def test_member_day_follows_the_business_timezone(utc: datetime, member_day: bool) -> None:
    result = earn(EarningRules(windows=(MEMBER_DAY,)), ("d", 10_000), occurred_at=utc)
    assert result.points == (200 if member_day else 100)


def test_business_timezone_is_a_parameter() -> None:
    rules = EarningRules(windows=(MEMBER_DAY,))
    ctx = EarnContext(
        occurred_at=datetime(2026, 3, 8, 2, tzinfo=UTC),  # 2026-03-07 21:00 in New York
        lines=(EarnLine(category="d", paid_fen=10_000),),
    )
    assert evaluate_order(rules, ctx, tz=ZoneInfo("America/New_York")).points == 100
    assert evaluate_order(rules, ctx, tz=SH).points == 200


# ------------------------------------------------------------------ bonuses


def test_first_purchase_bonus_is_ten_percent_of_base_points() -> None:
    rules = EarningRules(category_coefficients={"beauty": 12_000})
    result = earn(rules, ("beauty", 30_000), is_first_purchase=True)
    assert points_of(result) == {"base": 300, "category:beauty": 60, "first_purchase": 30}
    assert earn(rules, ("beauty", 30_000)).points == 360


def test_first_purchase_bonus_uses_exact_base() -> None:
    # ¥9.99 → 9 base points (floor) but the bonus is floor(9.99 × 10 %) = 0; ¥19.99 → 1
    assert (
        points_of(earn(EarningRules(), ("d", 999), is_first_purchase=True))["first_purchase"] == 0
    )
    assert (
        points_of(earn(EarningRules(), ("d", 1_999), is_first_purchase=True))["first_purchase"] == 1
    )


def test_first_purchase_bonus_disabled() -> None:
    rules = EarningRules(first_purchase=FirstPurchaseBonus(enabled=False))
    assert earn(rules, ("d", 30_000), is_first_purchase=True).points == 300


JOINED = datetime(2026, 1, 31, 17, 0, tzinfo=UTC)  # 2026-02-01 01:00 in Shanghai


@pytest.mark.parametrize(
    ("order_at", "awarded"),
    [
        (datetime(2026, 2, 1, 3, tzinfo=UTC), True),
        (datetime(2026, 4, 30, 15, 59, tzinfo=UTC), True),  # 23:59 on 30 April
        (datetime(2026, 4, 30, 16, 0, tzinfo=UTC), False),  # 1 May = joined + 3 months
        (datetime(2026, 1, 31, 3, tzinfo=UTC), False),  # before joining (an imported order)
    ],
)
def test_welcome_bonus_within_three_months(order_at: datetime, awarded: bool) -> None:
    result = earn(EarningRules(), ("d", 5_000), occurred_at=order_at, member_since=JOINED)
    assert points_of(result).get("welcome", 0) == (1_000 if awarded else 0)


def test_welcome_bonus_only_once_and_not_for_a_zero_cash_order() -> None:
    at = datetime(2026, 2, 2, tzinfo=UTC)
    rules = EarningRules()
    assert earn(rules, ("d", 5_000), occurred_at=at, member_since=JOINED).points == 1_050
    assert (
        earn(
            rules, ("d", 5_000), occurred_at=at, member_since=JOINED, welcome_bonus_awarded=True
        ).points
        == 50
    )
    assert earn(rules, ("d", 0), occurred_at=at, member_since=JOINED).points == 0
    no_welcome = EarningRules(welcome=WelcomeBonus(enabled=False))
    assert earn(no_welcome, ("d", 5_000), occurred_at=at, member_since=JOINED).points == 50


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert add_months(date(2026, 3, 31), 3) == date(2026, 6, 30)


def test_profile_completion_bonus_once() -> None:
    rules = EarningRules()
    bonus = evaluate_profile_completion(rules, profile_complete=True, already_awarded=False)
    assert bonus is not None
    assert (bonus.rule_id, bonus.points) == ("profile_completion", 200)
    assert evaluate_profile_completion(rules, profile_complete=True, already_awarded=True) is None
    assert evaluate_profile_completion(rules, profile_complete=False, already_awarded=False) is None


def test_profile_completion_bonus_respects_budget_and_cap() -> None:
    rules = EarningRules(
        profile_completion=ProfileCompletionBonus(points=500, budget_points=10_000),
        daily_cap_points=1_000,
    )
    bonus = evaluate_profile_completion(
        rules,
        profile_complete=True,
        already_awarded=False,
        budget_used={"profile_completion": 9_700},
    )
    assert bonus is not None
    assert (bonus.requested, bonus.points) == (500, 300)
    bonus = evaluate_profile_completion(
        rules, profile_complete=True, already_awarded=False, points_earned_today=900
    )
    assert bonus is not None
    assert bonus.points == 100


# ------------------------------------------------------------------ budgets and caps


def test_window_budget_limits_what_the_window_gives() -> None:
    rules = EarningRules(windows=(MEMBER_DAY.model_copy(update={"budget_points": 1_000}),))
    result = earn(
        rules, ("d", 30_000), occurred_at=MEMBER_DAY_NOON, budget_used={"member_day": 950}
    )
    assert points_of(result) == {"base": 300, "member_day": 50}
    window = result.points_trace[1]
    assert (window.requested, window.points) == (300, 50)
    assert result.budget_remaining == {"member_day": 0}


def test_remaining_budgets_never_negative() -> None:
    rules = EarningRules(welcome=WelcomeBonus(budget_points=5_000))
    assert remaining_budgets(rules, {"welcome": 6_000}) == {"welcome": 0}
    assert remaining_budgets(rules, {}) == {"welcome": 5_000}


def test_daily_cap_takes_back_from_the_end_of_the_trace() -> None:
    rules = EarningRules(windows=(MEMBER_DAY,), daily_cap_points=2_000)
    result = earn(
        rules,
        ("d", 100_000),
        occurred_at=MEMBER_DAY_NOON,
        is_first_purchase=True,
        points_earned_today=800,
    )
    # requested: base 1000 + member day 1000 + first purchase 100 = 2100; 1200 allowed
    assert points_of(result) == {"base": 1_000, "member_day": 200, "first_purchase": 0}
    assert result.points == 1_200
    assert result.daily_cap_remaining == 0


def test_no_cap_by_default() -> None:
    result = earn(EarningRules(), ("d", 10_000_000), points_earned_today=10**9)
    assert result.points == 100_000
    assert result.daily_cap_remaining is None


# ------------------------------------------------------------------ growth


def test_growth_has_its_own_rate_and_categories() -> None:
    rules = EarningRules(
        category_coefficients={"beauty": 20_000},
        growth=GrowthRule(per_fen=1_000, category_coefficients={"digital": 5_000}),
    )
    result = earn(rules, ("beauty", 30_000), ("digital", 20_000), occurred_at=MEMBER_DAY_NOON)
    assert result.growth == 40  # 30 + 20 × 0.5
    assert {c.rule_id: c.points for c in result.growth_trace} == {
        "growth": 50,
        "growth_category:digital": -10,
    }


# ------------------------------------------------------------------ returns


def test_clawback_of_thirds_takes_the_remainder_last() -> None:
    takes = []
    returned = 0
    for part in (10_000, 10_000, 10_000):
        takes.append(
            proportional_clawback(
                earned=100,
                order_paid_fen=30_000,
                returned_before_fen=returned,
                returned_now_fen=part,
            )
        )
        returned += part
    assert takes == [33, 33, 34]


def test_clawback_full_return_at_once() -> None:
    assert (
        proportional_clawback(
            earned=1_360, order_paid_fen=30_000, returned_before_fen=0, returned_now_fen=30_000
        )
        == 1_360
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "earned": 10,
                "order_paid_fen": 100,
                "returned_before_fen": 60,
                "returned_now_fen": 50,
            },
            "more than",
        ),
        (
            {"earned": -1, "order_paid_fen": 100, "returned_before_fen": 0, "returned_now_fen": 1},
            "negative",
        ),
        (
            {"earned": 5, "order_paid_fen": 0, "returned_before_fen": 0, "returned_now_fen": 0},
            "paid nothing",
        ),
    ],
)
def test_clawback_rejects_impossible_returns(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proportional_clawback(**kwargs)


# ------------------------------------------------------------------ validation of rule data


@pytest.mark.parametrize(
    "data",
    [
        {
            "windows": [
                {"kind": "date_range", "id": "a", "start": "2026-10-01", "end": "2026-10-07"},
                {"kind": "date_range", "id": "b", "start": "2026-10-07", "end": "2026-10-08"},
            ]
        },
        {
            "windows": [
                {"kind": "date_range", "id": "a", "start": "2026-10-01", "end": "2026-10-07"},
                {"kind": "date_range", "id": "b", "start": "2026-05-01", "end": "2026-05-05"},
            ]
        },
        {
            "windows": [
                {"kind": "date_range", "id": "a", "start": "2026-10-07", "end": "2026-10-01"}
            ]
        },
        {
            "windows": [
                {"kind": "date_range", "id": "a", "start": "2026-01-01", "end": "2027-06-01"}
            ]
        },
        {"windows": [{"kind": "monthly", "id": "base", "days": [8]}]},
        {"windows": [{"kind": "monthly", "id": "m", "days": [8, 8]}]},
        {"windows": [{"kind": "monthly", "id": "m", "days": []}]},
        {"windows": [{"kind": "monthly", "id": "m", "days": [32]}]},
        {"windows": [{"kind": "weekly", "id": "w", "weekdays": [0]}]},
        {
            "windows": [
                {
                    "kind": "weekly",
                    "id": "w",
                    "weekdays": [6],
                    "active_from": "2026-03-02",
                    "active_until": "2026-03-01",
                }
            ]
        },
        {"windows": [{"kind": "monthly", "id": "m", "days": [8], "multiplier_bp": 5_000}]},
        {"windows": [{"kind": "monthly", "id": "m", "days": [8], "multiplier_bp": 200_000}]},
        {"windows": [{"kind": "monthly", "id": "Member Day", "days": [8]}]},
        {"windows": [{"kind": "yearly", "id": "y"}]},
        {"category_coefficients": {"beauty": -1}},
        {"category_coefficients": {"beauty": 100_001}},
        {"category_coefficients": {"": 12_000}},
        {"base": {"points": 0}},
        {"base": {"per_fen": 0}},
        {"daily_cap_points": 0},
        {"welcome": {"within_months": 0}},
        {"first_purchase": {"bonus_bp": -5}},
        {"rounding": "banker"},
        {"surprise": 1},
    ],
)
def test_invalid_rule_sets_are_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EarningRules.model_validate(data)


def test_rule_set_round_trips_through_json() -> None:
    rules = EarningRules(
        category_coefficients={"beauty": 12_000},
        windows=(
            DateRangeWindow(id="spring", start=date(2026, 2, 14), end=date(2026, 2, 20)),
            DateRangeWindow(id="labour", start=date(2026, 5, 1), end=date(2026, 5, 5)),
            MEMBER_DAY,
            WeeklyWindow(id="weekend", weekdays=(6, 7), multiplier_bp=15_000),
        ),
        daily_cap_points=50_000,
    )
    assert EarningRules.model_validate_json(rules.model_dump_json()) == rules


def test_naive_order_time_is_rejected() -> None:
    with pytest.raises(ValidationError):
        EarnContext(occurred_at=datetime(2026, 3, 8, 10), lines=())  # noqa: DTZ001


def test_negative_paid_amount_is_rejected() -> None:
    with pytest.raises(ValidationError):
        EarnLine(category="d", paid_fen=-1)


# ------------------------------------------------------------------ preview


def test_preview_sentence_for_the_console() -> None:
    rules = EarningRules(category_coefficients={"beauty": 12_000}, windows=(MEMBER_DAY,))
    preview = preview_earning(
        rules,
        amount_fen=30_000,
        category="beauty",
        at=MEMBER_DAY_NOON,
        tz=SH,
        tier_code="gold",
        tier_name="Gold",
        tier_multiplier_bp=14_000,
    )
    assert preview.points == 720
    assert preview.text == (
        "A Gold member spending ¥300 on beauty on 2026-03-08 earns 720 points (base 300, "
        "category beauty ×1.2 (+60), Gold ×1.4 superseded, member day ×2 (+360)) and 300 growth"
    )


def test_formatting_helpers() -> None:
    assert format_factor(12_000) == "×1.2"
    assert format_factor(20_000) == "×2"
    assert format_factor(12_345) == "×1.2345"
    assert format_fen(30_000) == "¥300"
    assert format_fen(12_345) == "¥123.45"
    assert format_fen(5) == "¥0.05"


# ------------------------------------------------------------------ properties

CATEGORIES = ("beauty", "fresh", "daily", "digital")
factor = st.integers(min_value=0, max_value=3 * BP)
multiplier = st.integers(min_value=BP, max_value=3 * BP)


@st.composite
def rule_sets(draw: st.DrawFn) -> EarningRules:
    windows: list[Any] = []
    if draw(st.booleans()):
        windows.append(
            MonthlyWindow(
                id="member_day",
                days=tuple(draw(st.sets(st.integers(1, 31), min_size=1, max_size=3))),
                multiplier_bp=draw(multiplier),
                budget_points=draw(st.none() | st.integers(0, 5_000)),
            )
        )
    if draw(st.booleans()):
        windows.append(
            WeeklyWindow(
                id="weekend",
                weekdays=tuple(draw(st.sets(st.integers(1, 7), min_size=1, max_size=3))),
                multiplier_bp=draw(multiplier),
            )
        )
    return EarningRules(
        base=BaseRate(
            points=draw(st.integers(1, 5)), per_fen=draw(st.sampled_from([1, 100, 1_000]))
        ),
        rounding=draw(st.sampled_from(list(Rounding))),
        category_coefficients=draw(st.dictionaries(st.sampled_from(CATEGORIES), factor)),
        combine=draw(st.sampled_from(list(Combine))),
        windows=tuple(windows),
        first_purchase=FirstPurchaseBonus(budget_points=draw(st.none() | st.integers(0, 500))),
        welcome=WelcomeBonus(budget_points=draw(st.none() | st.integers(0, 2_000))),
        daily_cap_points=draw(st.none() | st.integers(1, 20_000)),
        growth=GrowthRule(
            category_coefficients=draw(st.dictionaries(st.sampled_from(CATEGORIES), factor))
        ),
    )


moments = st.datetimes(
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
lines = st.lists(
    st.tuples(st.sampled_from(CATEGORIES), st.integers(0, 2_000_000)), min_size=1, max_size=5
)


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    at = draw(moments)
    return {
        "occurred_at": at,
        "tier_code": "t",
        "tier_multiplier_bp": draw(st.integers(0, 3 * BP)),
        "member_since": at - timedelta(days=draw(st.integers(-5, 200))),
        "is_first_purchase": draw(st.booleans()),
        "welcome_bonus_awarded": draw(st.booleans()),
        "points_earned_today": draw(st.integers(0, 20_000)),
        "budget_used": {
            "member_day": draw(st.integers(0, 6_000)),
            "first_purchase": draw(st.integers(0, 600)),
            "welcome": draw(st.integers(0, 3_000)),
        },
    }


@settings(max_examples=300)
@given(rule_sets(), lines, contexts())
def test_trace_sums_to_the_award_and_nothing_is_negative(
    rules: EarningRules, order: list[tuple[str, int]], ctx: dict[str, Any]
) -> None:
    result = earn(rules, *order, **ctx)
    assert result.points == sum(c.points for c in result.points_trace)
    assert result.growth == sum(c.points for c in result.growth_trace)
    assert result.points >= 0
    assert result.growth >= 0
    for c in result.points_trace:
        # budgets and caps only ever reduce a positive contribution, never below zero
        assert (0 <= c.points <= c.requested) if c.requested > 0 else c.points == c.requested


@settings(max_examples=300)
@given(rule_sets(), lines, contexts())
def test_caps_and_budgets_are_respected(
    rules: EarningRules, order: list[tuple[str, int]], ctx: dict[str, Any]
) -> None:
    result = earn(rules, *order, **ctx)
    if rules.daily_cap_points is not None:
        assert ctx["points_earned_today"] + result.points <= max(
            rules.daily_cap_points, ctx["points_earned_today"]
        )
        assert result.daily_cap_remaining is not None
        assert result.daily_cap_remaining >= 0
    before = remaining_budgets(rules, ctx["budget_used"])
    awarded = {c.rule_id: c.points for c in result.points_trace}
    for rule_id, left in before.items():
        assert awarded.get(rule_id, 0) <= left
        assert result.budget_remaining[rule_id] == left - max(0, awarded.get(rule_id, 0))


@settings(max_examples=300)
@given(rule_sets(), lines, moments, st.integers(0, 3 * BP))
def test_uncapped_points_equal_the_exact_product_rounded_once(
    rules: EarningRules, order: list[tuple[str, int]], at: datetime, tier_bp: int
) -> None:
    rules = rules.model_copy(update={"daily_cap_points": None, "windows": ()})
    result = earn(rules, *order, occurred_at=at, tier_code="t", tier_multiplier_bp=tier_bp)
    exact = sum(
        Fraction(
            paid * rules.base.points * rules.category_coefficients.get(cat, BP),
            rules.base.per_fen * BP,
        )
        for cat, paid in order
    ) * Fraction(tier_bp, BP)
    expected = {
        Rounding.FLOOR: exact.numerator // exact.denominator,
        Rounding.CEIL: -(-exact.numerator // exact.denominator),
        Rounding.HALF_UP: (2 * exact.numerator + exact.denominator) // (2 * exact.denominator),
    }[rules.rounding]
    assert result.points == expected


@settings(max_examples=300)
@given(rule_sets(), lines, contexts(), st.integers(0, 1_000_000), st.data())
def test_more_paid_never_earns_less(
    rules: EarningRules,
    order: list[tuple[str, int]],
    ctx: dict[str, Any],
    extra: int,
    data: st.DataObject,
) -> None:
    i = data.draw(st.integers(0, len(order) - 1))
    bigger = list(order)
    bigger[i] = (order[i][0], order[i][1] + extra)
    small, large = earn(rules, *order, **ctx), earn(rules, *bigger, **ctx)
    assert large.points >= small.points
    assert large.growth >= small.growth


@settings(max_examples=200)
@given(rule_sets(), lines, contexts())
def test_highest_wins_never_beats_multiply_when_multipliers_are_at_least_one(
    rules: EarningRules, order: list[tuple[str, int]], ctx: dict[str, Any]
) -> None:
    ctx = {**ctx, "tier_multiplier_bp": max(BP, ctx["tier_multiplier_bp"])}
    unbounded = rules.model_copy(
        update={
            "daily_cap_points": None,
            "windows": tuple(w.model_copy(update={"budget_points": None}) for w in rules.windows),
        }
    )
    highest = earn(unbounded.model_copy(update={"combine": Combine.HIGHEST}), *order, **ctx)
    multiply = earn(unbounded.model_copy(update={"combine": Combine.MULTIPLY}), *order, **ctx)
    assert highest.points <= multiply.points


@settings(max_examples=300)
@given(
    st.integers(0, 10**9),
    st.lists(st.integers(1, 10**7), min_size=1, max_size=8),
    st.booleans(),
)
def test_clawbacks_never_exceed_earned_and_full_return_takes_all(
    earned: int, parts: list[int], full: bool
) -> None:
    paid = sum(parts) + (0 if full else 1)
    returned = 0
    taken = 0
    for part in parts:
        take = proportional_clawback(
            earned=earned, order_paid_fen=paid, returned_before_fen=returned, returned_now_fen=part
        )
        assert take >= 0
        returned += part
        taken += take
        assert taken <= earned
        assert taken == earned * returned // paid  # floor of the cumulative share
    assert (taken == earned) if full else taken <= earned


@settings(max_examples=200)
@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)))
def test_member_day_boundary_at_shanghai_midnight(day: date) -> None:
    rules = EarningRules(windows=(MonthlyWindow(id="md", days=(day.day,)),))
    midnight = datetime(day.year, day.month, day.day, tzinfo=SH).astimezone(UTC)
    just_before = midnight - timedelta(seconds=1)
    last_second = midnight + timedelta(days=1, seconds=-1)
    assert earn(rules, ("d", 10_000), occurred_at=midnight).points == 200
    assert earn(rules, ("d", 10_000), occurred_at=last_second).points == 200
    yesterday = (midnight - timedelta(days=1)).astimezone(SH).day
    assert earn(rules, ("d", 10_000), occurred_at=just_before).points == (
        200 if yesterday == day.day else 100
    )
