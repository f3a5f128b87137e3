"""Pure coupon rules: templates, validity, applicability, and the choice of the best
combination (property tests: never worse than any other valid combination, no line below
zero, no percent coupon above its cap)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from patron.coupons import domain
from patron.coupons.domain import BaseLine, Basket, Candidate, Stacking, TemplateRules

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def rules(kind="amount_off", **kw):
    kw.setdefault("valid_days", 30)
    if kind in ("amount_off", "threshold"):
        kw.setdefault("amount_fen", 1000)
    if kind == "threshold":
        kw.setdefault("min_spend_fen", 20000)
    if kind == "percent_off":
        kw.setdefault("percent_off_bp", 2000)
    if kind == "free_gift":
        kw.setdefault("gift_sku", "GIFT-1")
    return TemplateRules(kind=kind, **kw)


def cand(code, r, member_id=1, status="issued", until=NOW + timedelta(days=5)):
    return Candidate(code, "T-" + code, r, member_id, status, NOW - timedelta(days=1), until)


def basket(*amounts, member_price=(), cats=None, points=False, no_tier=None, store="SH001"):
    cats = cats or ["beauty"] * len(amounts)
    lines = tuple(
        BaseLine(f"SKU-{i}", cats[i], a, i in member_price) for i, a in enumerate(amounts)
    )
    nt = no_tier or amounts
    lines_nt = tuple(BaseLine(f"SKU-{i}", cats[i], a, i in member_price) for i, a in enumerate(nt))
    return Basket(1, "silver", store, "store", NOW, points, lines, lines_nt)


def test_templates_validate_what_each_kind_needs():
    with pytest.raises(ValidationError):
        TemplateRules(kind="amount_off", valid_days=3)
    with pytest.raises(ValidationError):
        TemplateRules(kind="threshold", amount_fen=3000, min_spend_fen=3000, valid_days=3)
    with pytest.raises(ValidationError):
        TemplateRules(kind="percent_off", valid_days=3)
    with pytest.raises(ValidationError):
        TemplateRules(kind="free_gift", valid_days=3)
    with pytest.raises(ValidationError, match="either valid_days"):
        TemplateRules(kind="free_shipping")
    with pytest.raises(ValidationError, match="either valid_days"):
        TemplateRules(kind="free_shipping", valid_days=3, valid_until=date(2026, 4, 1))


def test_validity_days_after_issue_end_at_the_business_day_end():
    start, end = rules(valid_days=1).validity(NOW, SH)
    assert start == NOW
    assert end == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # midnight in Shanghai
    r = rules(valid_days=None, valid_from=date(2026, 3, 5), valid_until=date(2026, 3, 31))
    start, end = r.validity(NOW, SH)
    assert start == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)


def test_birthday_key_is_per_business_year():
    late = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # already 2027 in Shanghai
    assert domain.issue_key("birthday", "", at=late, tz=SH) == "birthday:2027"
    assert domain.issue_key("welcome", "x", at=late, tz=SH) == "welcome"
    assert domain.issue_key("manual", "B-1", at=late, tz=SH) == "manual:B-1"


def test_threshold_is_met_by_eligible_goods_only():
    b = basket(15000, 8000, cats=["beauty", "fresh"])
    c = cand("A", rules("threshold", categories=["beauty"]))
    assert domain.unusable(c, b)[0] == "coupon_below_threshold"
    c = cand("B", rules("threshold", amount_fen=3000, min_spend_fen=20000))
    assert domain.unusable(c, b) is None
    sel = domain.choose([c], b)
    assert sel.coupon_discount_fen == 3000
    assert sum(sel.line_discounts) == 3000


@pytest.mark.parametrize(
    ("cand_kw", "rule_kw", "bkw", "code"),
    [
        ({"status": "redeemed"}, {}, {}, "coupon_used"),
        ({"status": "voided"}, {}, {}, "coupon_voided"),
        ({"until": NOW}, {}, {}, "coupon_expired"),
        ({"member_id": 2}, {}, {}, "coupon_not_member"),
        ({}, {"stores": ["BJ001"]}, {}, "coupon_wrong_store"),
        ({}, {"channels": ["online"]}, {}, "coupon_wrong_store"),
        ({}, {"tiers": ["gold"]}, {}, "coupon_wrong_tier"),
        ({}, {"categories": ["fresh"]}, {}, "coupon_not_applicable"),
        ({}, {"exclude_skus": ["SKU-0"]}, {}, "coupon_not_applicable"),
        (
            {},
            {"stacking": Stacking(with_member_price=False)},
            {"member_price": (0,)},
            "coupon_not_applicable",
        ),
    ],
)
def test_unusable_coupons_say_why(cand_kw, rule_kw, bkw, code):
    c = cand("X", rules(**rule_kw), **cand_kw)
    assert domain.unusable(c, basket(10000, **bkw))[0] == code


def test_percent_off_is_capped_and_exclusive_stands_alone():
    b = basket(30000, 20000)
    pct = cand("P", rules("percent_off", percent_off_bp=2000, cap_fen=5000))
    amt = cand("A", rules("amount_off", amount_fen=2000))
    excl = cand("E", rules("amount_off", amount_fen=6000, stacking=Stacking(exclusive=True)))
    sel = domain.choose([pct, amt], b)
    assert [a.code for a in sel.applied] == ["P", "A"]
    assert sel.coupon_discount_fen == 7000  # 20 % of 500 = 100 → capped at 50, then 20
    sel = domain.choose([pct, amt, excl], b)
    assert sel.coupon_discount_fen == 7000
    assert {c for c, r, _ in sel.left_out if r == "coupon_not_chosen"} == {"E"}
    sel = domain.choose([pct, excl], b)
    assert [a.code for a in sel.applied] == ["E"]  # 60 alone beats 50


def test_one_per_type_and_points_stacking():
    b = basket(30000, points=True)
    a1 = cand("A1", rules(amount_fen=1000))
    a2 = cand("A2", rules(amount_fen=1500))
    nop = cand("N", rules("threshold", amount_fen=3000, stacking=Stacking(with_points=False)))
    sel = domain.choose([a1, a2, nop], b)
    assert [a.code for a in sel.applied] == ["A2"]
    assert {c: r for c, r, _ in sel.left_out} == {
        "N": "coupon_not_with_points",
        "A1": "coupon_not_chosen",
    }


def test_a_coupon_not_stacking_with_the_tier_discount_prices_without_it():
    # with tier: 9000; without: 10000. A 500 coupon without the tier saves less than the tier.
    b = basket(9000, no_tier=(10000,))
    weak = cand("W", rules(amount_fen=500, stacking=Stacking(with_tier_discount=False)))
    assert domain.choose([weak], b).applied == ()
    strong = cand("S", rules(amount_fen=3000, stacking=Stacking(with_tier_discount=False)))
    sel = domain.choose([strong], b)
    assert sel.drop_tier and sel.saving_fen == 2000


def test_gift_and_shipping_rank_by_value_and_take_nothing_off():
    b = basket(10000)
    gift = cand("G", rules("free_gift", value_fen=800))
    ship = cand("S", rules("free_shipping", value_fen=1000))
    sel = domain.choose([gift, ship], b)
    assert sel.coupon_discount_fen == 0 and sel.saving_fen == 1800
    assert sel.applied[0].gift_sku == "GIFT-1"


# ---- properties -------------------------------------------------------------------------------

amounts = st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=5)


@st.composite
def coupon_rules(draw):
    kind = draw(st.sampled_from(domain.KINDS))
    stacking = Stacking(
        exclusive=draw(st.booleans()),
        with_member_price=draw(st.booleans()),
        with_tier_discount=draw(st.booleans()),
        with_points=draw(st.booleans()),
    )
    kw = {"stacking": stacking, "valid_days": 10}
    if kind in ("amount_off", "threshold"):
        kw["amount_fen"] = draw(st.integers(1, 20_000))
    if kind == "threshold":
        kw["min_spend_fen"] = kw["amount_fen"] + draw(st.integers(1, 60_000))
    if kind == "percent_off":
        kw["percent_off_bp"] = draw(st.integers(1, BP - 1))
        kw["cap_fen"] = draw(st.integers(0, 10_000))
    if kind == "free_gift":
        kw["gift_sku"] = "G"
    if kind in ("free_gift", "free_shipping"):
        kw["value_fen"] = draw(st.integers(0, 2_000))
    if draw(st.booleans()):
        kw["categories"] = [draw(st.sampled_from(["beauty", "fresh"]))]
    return TemplateRules(kind=kind, **kw)


BP = domain.BP


@settings(max_examples=300, deadline=None)
@given(
    amts=amounts,
    data=st.data(),
    rs=st.lists(coupon_rules(), min_size=0, max_size=5),
    points=st.booleans(),
)
def test_the_chosen_combination_is_never_worse_than_another_valid_one(amts, data, rs, points):
    n = len(amts)
    cats = data.draw(st.lists(st.sampled_from(["beauty", "fresh"]), min_size=n, max_size=n))
    extra = data.draw(st.lists(st.integers(0, 5_000), min_size=n, max_size=n))
    mp = tuple(i for i in range(n) if data.draw(st.booleans()))
    b = basket(
        *amts,
        cats=cats,
        member_price=mp,
        points=points,
        no_tier=tuple(a + e for a, e in zip(amts, extra, strict=True)),
    )
    cands = [cand(f"C{i}", r) for i, r in enumerate(rs)]
    usable = [c for c in cands if domain.unusable(c, b) is None]
    sel = domain.choose(usable, b)
    lines = b.lines_without_tier if sel.drop_tier else b.lines
    # never below zero, allocations exact, percent coupons within their cap
    assert all(0 <= d <= ln.amount_fen for d, ln in zip(sel.line_discounts, lines, strict=True))
    assert sum(sel.line_discounts) == sel.coupon_discount_fen
    for a in sel.applied:
        assert a.discount_fen == sum(f for _, f in a.lines) >= 0
        r = next(c.rules for c in usable if c.code == a.code)
        if r.kind == "percent_off" and r.cap_fen:
            assert a.discount_fen <= r.cap_fen
    assert sel.saving_fen >= 0
    # brute force: every valid combination saves at most as much
    allowed = [c for c in usable if not (points and not c.rules.stacking.with_points)]
    for k in range(len(allowed) + 1):
        for combo in combinations(allowed, k):
            if domain.compatible(combo):
                assert domain.evaluate(combo, b).saving_fen <= sel.saving_fen
