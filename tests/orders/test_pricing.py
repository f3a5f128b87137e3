"""Checkout pricing: worked examples of each step, then exactness properties."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from patron.orders.pricing import (
    BasketLine,
    PricingError,
    PricingSettings,
    Quote,
    TierPricing,
    allocate_largest_remainder,
    earn_lines,
    is_birthday_month,
    max_points_for,
    quote,
)
from patron.rules.definitions import BP, EarningRules
from patron.rules.domain import EarnContext, evaluate_order

SH = ZoneInfo("Asia/Shanghai")
DEFAULTS = PricingSettings()
GOLD = TierPricing(tier_code="gold", discount_bp=9_000, birthday_discount_bp=9_500)
NONE = TierPricing()


def line(sku: str = "A", price: int = 10_000, qty: int = 1, **kw: Any) -> BasketLine:
    kw.setdefault("category", "daily")
    return BasketLine(sku=sku, quantity=qty, unit_price_fen=price, **kw)


def price(*lines: BasketLine, tier: TierPricing = GOLD, birthday: bool = False, **kw: Any) -> Quote:
    kw.setdefault("settings", DEFAULTS)
    return quote(lines, tier=tier, birthday_month=birthday, **kw)


# ------------------------------------------------------------------ per-line discounts


def test_tier_then_birthday_discount_floor_per_step() -> None:
    q = price(line(price=10_000, qty=2), birthday=True)
    (ql,) = q.lines
    assert (ql.list_amount_fen, ql.tier_discount_fen, ql.birthday_discount_fen) == (
        20_000,
        2_000,
        900,
    )
    assert ql.net_fen == ql.paid_fen == 17_100
    assert (q.total_fen, q.paid_fen) == (17_100, 17_100)


def test_percentage_steps_round_the_payable_down_to_the_fen() -> None:
    tier = TierPricing(tier_code="silver", discount_bp=9_500, birthday_discount_bp=9_500)
    (ql,) = price(line(price=999), tier=tier, birthday=True).lines
    # 999 × 95 % = 949.05 → 949; 949 × 95 % = 901.55 → 901
    assert (ql.tier_discount_fen, ql.birthday_discount_fen, ql.net_fen) == (50, 48, 901)


def test_member_price_replaces_list_price_without_tier_discount() -> None:
    (ql,) = price(line(price=10_000, qty=3, member_prices_fen={"gold": 8_800})).lines
    assert ql.member_price_applied
    assert (ql.unit_price_fen, ql.member_price_saving_fen, ql.tier_discount_fen) == (
        8_800,
        3_600,
        0,
    )
    assert ql.net_fen == 26_400


def test_tier_discount_may_stack_on_member_price_by_setting() -> None:
    stacking = PricingSettings(tier_discount_on_member_price=True)
    (ql,) = price(line(price=10_000, member_prices_fen={"gold": 8_800}), settings=stacking).lines
    assert (ql.tier_discount_fen, ql.net_fen) == (880, 7_920)


def test_birthday_discount_applies_on_member_price_too() -> None:
    (ql,) = price(line(price=10_000, member_prices_fen={"gold": 8_800}), birthday=True).lines
    assert (ql.tier_discount_fen, ql.birthday_discount_fen, ql.net_fen) == (0, 440, 8_360)


def test_member_price_of_another_tier_or_above_list_is_ignored() -> None:
    (ql,) = price(line(price=10_000, member_prices_fen={"diamond": 8_000})).lines
    assert not ql.member_price_applied
    assert ql.net_fen == 9_000
    (ql,) = price(line(price=10_000, member_prices_fen={"gold": 12_000})).lines
    assert not ql.member_price_applied
    assert ql.unit_price_fen == 10_000


def test_no_tier_no_discount() -> None:
    (ql,) = price(line(price=10_000, member_prices_fen={"gold": 1}), tier=NONE, birthday=True).lines
    assert ql.net_fen == 10_000


def test_line_discount_comes_before_the_tier_discount() -> None:
    (ql,) = price(line(price=10_000, line_discount_fen=2_000)).lines
    assert (ql.line_discount_fen, ql.tier_discount_fen, ql.net_fen) == (2_000, 800, 7_200)


def test_line_discount_is_capped_by_a_lower_member_price() -> None:
    (ql,) = price(
        line(price=10_000, line_discount_fen=9_000, member_prices_fen={"gold": 5_000})
    ).lines
    assert (ql.line_discount_fen, ql.net_fen) == (5_000, 0)


# ------------------------------------------------------------------ order discount and points


def test_order_discount_is_spread_by_largest_remainder() -> None:
    q = price(
        line("A", 1_000), line("B", 1_000), line("C", 1_000), tier=NONE, order_discount_fen=100
    )
    assert [ql.order_discount_fen for ql in q.lines] == [34, 33, 33]
    assert q.total_fen == 2_900


def test_order_discount_is_capped_at_the_order() -> None:
    q = price(line(price=1_000), tier=NONE, order_discount_fen=5_000)
    assert (q.order_discount_fen, q.total_fen, q.max_points) == (1_000, 0, 0)


def test_points_pay_at_most_half_the_order_and_the_balance() -> None:
    basket = (line("A", 10_000, 2), line("B", 3_333))
    q = price(*basket, tier=NONE, points_balance=1_000_000)
    assert q.total_fen == 23_333
    assert q.max_points == 11_666  # 50 % of ¥233.33, 1 point = 1 fen
    assert price(*basket, tier=NONE, points_balance=5_000).max_points == 5_000

    q = price(*basket, tier=NONE, points_balance=20_000, points_to_use=11_666)
    assert (q.points_used, q.points_fen, q.paid_fen) == (11_666, 11_666, 11_667)
    assert [ql.points_fen for ql in q.lines] == [10_000, 1_666]
    assert [ql.paid_fen for ql in q.lines] == [10_000, 1_667]
    assert sum(ql.points for ql in q.lines) == 11_666


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"points_balance": 100, "points_to_use": 200}, "points_over_balance"),
        ({"points_balance": 100_000, "points_to_use": 5_001}, "points_share_exceeded"),
        ({"points_balance": -1}, "negative_amount"),
        ({"order_discount_fen": -1}, "negative_amount"),
    ],
)
def test_points_limits_are_clear_errors(kw: dict[str, Any], code: str) -> None:
    with pytest.raises(PricingError) as excinfo:
        price(line(price=10_000), tier=NONE, **kw)
    assert excinfo.value.code == code


def test_points_step_and_rate() -> None:
    whole_yuan = PricingSettings(points_step=100)
    q = price(line(price=12_345), tier=NONE, settings=whole_yuan, points_balance=10**6)
    assert q.max_points == 6_100  # 50 % = 6172 fen → 6172 points → whole hundreds
    with pytest.raises(PricingError) as excinfo:
        price(
            line(price=12_345),
            tier=NONE,
            settings=whole_yuan,
            points_balance=10**6,
            points_to_use=150,
        )
    assert excinfo.value.code == "points_step"

    half_fen = PricingSettings(points_per_unit=200, unit_fen=100)  # 200 points = ¥1
    assert half_fen.effective_step() == 2
    q = price(
        line(price=1_001), tier=NONE, settings=half_fen, points_balance=999, points_to_use=998
    )
    assert q.max_points == 998
    assert (q.points_fen, q.paid_fen) == (499, 502)


def test_max_points_helper_with_zero_share() -> None:
    assert max_points_for(10_000, 10**6, PricingSettings(max_points_share_bp=0)) == 0
    assert max_points_for(10_000, 10**6, PricingSettings(max_points_share_bp=BP)) == 10_000


def test_empty_basket() -> None:
    with pytest.raises(PricingError) as excinfo:
        quote([], tier=NONE, birthday_month=False, settings=DEFAULTS)
    assert excinfo.value.code == "empty_basket"


@pytest.mark.parametrize(
    "data",
    [
        {"quantity": 0},
        {"quantity": -1},
        {"unit_price_fen": -1},
        {"line_discount_fen": 10_001},
        {"member_prices_fen": {"gold": -5}},
        {"sku": ""},
        {"colour": "red"},
    ],
)
def test_invalid_lines_are_rejected(data: dict[str, Any]) -> None:
    base = {"sku": "A", "category": "daily", "quantity": 1, "unit_price_fen": 10_000}
    with pytest.raises(ValidationError):
        BasketLine.model_validate({**base, **data})


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValidationError):
        PricingSettings(max_points_share_bp=10_001)
    with pytest.raises(ValidationError):
        TierPricing(discount_bp=0)


# ------------------------------------------------------------------ birthday month and earning


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC), False),  # 23:59:59 on 28 Feb
        (datetime(2026, 2, 28, 16, 0, 0, tzinfo=UTC), True),  # 00:00 on 1 March
        (datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), True),
        (datetime(2026, 3, 31, 16, 0, 0, tzinfo=UTC), False),  # 1 April
    ],
)
def test_birthday_month_in_business_timezone(utc: datetime, expected: bool) -> None:
    assert is_birthday_month(date(1990, 3, 15), utc, SH) is expected
    assert not is_birthday_month(None, utc, SH)


def test_quote_feeds_the_earning_engine_with_cash_paid() -> None:
    q = price(
        line("A", 10_000, category="beauty"),
        line("B", 5_000),
        points_balance=10**6,
        points_to_use=4_000,
    )
    lines = earn_lines(q)
    assert sum(el.paid_fen for el in lines) == q.paid_fen == 9_500
    ctx = EarnContext(occurred_at=datetime(2026, 3, 10, tzinfo=UTC), lines=lines)
    assert evaluate_order(EarningRules(), ctx, tz=SH).points == 95


# ------------------------------------------------------------------ properties


def test_allocation_examples() -> None:
    assert allocate_largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate_largest_remainder(0, [0, 0]) == [0, 0]
    assert allocate_largest_remainder(5, [0, 3, 7]) == [0, 2, 3]  # 1.5 / 3.5: tie → earlier
    with pytest.raises(ValueError, match="zero weights"):
        allocate_largest_remainder(1, [0, 0])


@settings(max_examples=500)
@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_allocation_is_exact_and_bounded(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        total = 0
    total = min(total, sum(weights))
    parts = allocate_largest_remainder(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert 0 <= part <= weight
        # never more than one fen away from the exact proportional share
        assert abs(part * sum(weights) - total * weight) < max(1, sum(weights))


tiers = st.builds(
    TierPricing,
    tier_code=st.sampled_from([None, "silver", "gold"]),
    discount_bp=st.integers(1, BP),
    birthday_discount_bp=st.integers(1, BP),
)


@st.composite
def basket_lines(draw: st.DrawFn) -> BasketLine:
    unit = draw(st.integers(0, 5_000_000))
    qty = draw(st.integers(1, 50))
    return BasketLine(
        sku=draw(st.sampled_from(["A", "B", "C"])),
        category=draw(st.sampled_from(["beauty", "fresh", "digital"])),
        quantity=qty,
        unit_price_fen=unit,
        member_prices_fen=draw(
            st.dictionaries(st.sampled_from(["silver", "gold"]), st.integers(0, 6_000_000))
        ),
        line_discount_fen=draw(st.integers(0, unit * qty)),
    )


pricing_settings = st.builds(
    PricingSettings,
    points_per_unit=st.sampled_from([1, 50, 100, 200, 1_000]),
    unit_fen=st.sampled_from([1, 100, 300]),
    max_points_share_bp=st.integers(0, BP),
    points_step=st.sampled_from([1, 10, 100]),
    tier_discount_on_member_price=st.booleans(),
)


@settings(max_examples=400)
@given(
    st.lists(basket_lines(), min_size=1, max_size=8),
    tiers,
    st.booleans(),
    pricing_settings,
    st.integers(0, 10**8),
    st.integers(0, 10**9),
    st.data(),
)
def test_quote_sums_are_exact_and_never_negative(
    lines: list[BasketLine],
    tier: TierPricing,
    birthday: bool,
    config: PricingSettings,
    order_discount: int,
    balance: int,
    data: st.DataObject,
) -> None:
    probe = quote(
        lines,
        tier=tier,
        birthday_month=birthday,
        settings=config,
        points_balance=balance,
        order_discount_fen=order_discount,
    )
    step = config.effective_step()
    use = data.draw(st.integers(0, probe.max_points // step)) * step
    q = quote(
        lines,
        tier=tier,
        birthday_month=birthday,
        settings=config,
        points_balance=balance,
        order_discount_fen=order_discount,
        points_to_use=use,
    )
    assert q.max_points == probe.max_points
    assert q.max_points <= balance
    assert config.points_value_fen(q.max_points) <= q.total_fen * config.max_points_share_bp // BP
    assert sum(ql.net_fen for ql in q.lines) == q.total_fen
    assert sum(ql.points_fen for ql in q.lines) == q.points_fen
    assert sum(ql.points for ql in q.lines) == q.points_used == use
    assert sum(ql.paid_fen for ql in q.lines) == q.paid_fen == q.total_fen - q.points_fen
    assert sum(ql.order_discount_fen for ql in q.lines) == q.order_discount_fen
    assert (
        q.list_total_fen
        - q.member_price_saving_fen
        - q.line_discount_fen
        - q.tier_discount_fen
        - q.birthday_discount_fen
        - q.order_discount_fen
        == q.total_fen
    )
    for ql in q.lines:
        assert min(ql.net_fen, ql.points_fen, ql.paid_fen, ql.points, ql.tier_discount_fen) >= 0
        assert ql.list_amount_fen == ql.list_unit_fen * ql.quantity
        assert ql.net_fen <= ql.list_amount_fen
        assert (
            ql.list_amount_fen
            - ql.member_price_saving_fen
            - ql.line_discount_fen
            - ql.tier_discount_fen
            - ql.birthday_discount_fen
            - ql.order_discount_fen
            == ql.net_fen
        )
        assert ql.points_fen <= ql.net_fen


@settings(max_examples=300)
@given(basket_lines(), tiers, st.booleans(), st.integers(1, 20))
def test_more_quantity_never_costs_less(
    item: BasketLine, tier: TierPricing, birthday: bool, extra: int
) -> None:
    more = item.model_copy(update={"quantity": item.quantity + extra})
    small = quote([item], tier=tier, birthday_month=birthday, settings=DEFAULTS)
    large = quote([more], tier=tier, birthday_month=birthday, settings=DEFAULTS)
    assert large.total_fen >= small.total_fen


@settings(max_examples=200)
@given(st.lists(basket_lines(), min_size=1, max_size=5), tiers, st.booleans())
def test_quote_is_deterministic(lines: list[BasketLine], tier: TierPricing, birthday: bool) -> None:
    # quote and commit agree exactly because the same pure function runs on the same input
    first = quote(lines, tier=tier, birthday_month=birthday, settings=DEFAULTS, points_balance=500)
    again = quote(lines, tier=tier, birthday_month=birthday, settings=DEFAULTS, points_balance=500)
    assert first == again


def test_worked_example_in_docs_rules_md() -> None:
    from patron.rules.definitions import MonthlyWindow
    from patron.rules.domain import proportional_clawback

    basket = [
        BasketLine(
            sku="LIP-01",
            category="beauty",
            quantity=1,
            unit_price_fen=30_000,
            member_prices_fen={"gold": 27_000},
        ),
        BasketLine(sku="SHAMPOO-2", category="daily", quantity=2, unit_price_fen=4_590),
    ]
    q = quote(
        basket,
        tier=GOLD,
        birthday_month=True,
        settings=DEFAULTS,
        points_balance=20_000,
        points_to_use=5_000,
    )
    assert (q.total_fen, q.max_points, q.paid_fen) == (33_498, 16_749, 28_498)
    assert [(ql.net_fen, ql.points_fen, ql.paid_fen) for ql in q.lines] == [
        (25_650, 3_829, 21_821),
        (7_848, 1_171, 6_677),
    ]
    rules = EarningRules(
        category_coefficients={"beauty": 12_000},
        windows=(MonthlyWindow(id="member_day", name="member day", days=(8,)),),
    )
    ctx = EarnContext(
        occurred_at=datetime(2026, 3, 8, 2, tzinfo=UTC),
        lines=earn_lines(q),
        tier_code="gold",
        tier_multiplier_bp=14_000,
        is_first_purchase=True,
    )
    result = evaluate_order(rules, ctx, tz=SH)
    assert {c.rule_id: c.points for c in result.points_trace} == {
        "base": 284,
        "category:beauty": 44,
        "tier:gold": 0,
        "member_day": 329,
        "first_purchase": 28,
    }
    assert (result.points, result.growth) == (685, 284)
    shampoo = q.lines[1]
    assert (
        proportional_clawback(
            earned=685,
            order_paid_fen=28_498,
            returned_before_fen=0,
            returned_now_fen=shampoo.paid_fen,
        )
        == 160
    )
    assert (
        proportional_clawback(
            earned=5_000,
            order_paid_fen=5_000,
            returned_before_fen=0,
            returned_now_fen=shampoo.points_fen,
        )
        == 1_171
    )
    assert (
        proportional_clawback(
            earned=685,
            order_paid_fen=28_498,
            returned_before_fen=shampoo.paid_fen,
            returned_now_fen=q.lines[0].paid_fen,
        )
        == 525
    )
