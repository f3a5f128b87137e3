"""plan_order without a database: the rows an order writes, from its facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from patron.ledger.domain import InsufficientPoints, LotView, Take
from patron.ledger.service import PointsSettings
from patron.orders import plan
from patron.rules.definitions import EarningRules
from patron.rules.domain import EarnLine
from patron.tiers.domain import TierLadder

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SETTINGS = plan.Settings(points=PointsSettings(), earning=EarningRules(), ladder=TierLadder())


def facts(**over: object) -> plan.MemberFacts:
    base = plan.MemberFacts(
        member_id=7,
        member_no="2230000007",
        member_since=NOW - timedelta(days=400),  # past the welcome window
        tier_row_code=None,
        override_until=None,
        window_growth=0,
        orders_so_far=3,
        welcome_given=1000,
        points_today=0,
        available=0,
        debt=0,
        settling_due=False,
        keys_taken=False,
        budget_used={},
    )
    return replace(base, **over)  # type: ignore[arg-type]


def order(points_used: int = 0, points_fen: int = 0, earn: bool = True) -> plan.OrderInput:
    net = 21900
    return plan.OrderInput(
        source="pos",
        external_id="O-1",
        channel="store",
        store_code="SH001",
        ordered_at=NOW - timedelta(minutes=5),
        lines=(
            plan.PlanLine(1, "BEA-1", "beauty", 1, 19900, 0, 19900, points_fen, points_used, 0),
            plan.PlanLine(2, "FRE-1", "fresh", 2, 1250, 500, 2000, 0, 0, 2000),
        ),
        payments=(("wechat", net - points_fen, 0),)
        + ((("points", points_fen, points_used),) if points_used else ()),
        points_used=points_used,
        earn=earn,
        digest="d" * 64,
    )


def planned(data: plan.OrderInput, f: plan.MemberFacts, lots: tuple[LotView, ...] = ()):
    lines = tuple(
        EarnLine(category=ln.category, paid_fen=ln.paid_fen, sku=ln.sku) for ln in data.lines
    )
    earning = plan.evaluate(f, SETTINGS, occurred_at=data.ordered_at, lines=lines, tz=SH)
    return plan.plan_order(
        data, f, SETTINGS, earning=earning, open_lots=lots, actor="pos-key", now=NOW, tz=SH
    ), earning


def test_an_earn_only_order_plans_one_earning_with_its_lot_growth_and_audit():
    data = replace(order(), lines=tuple(replace(ln, paid_fen=ln.net_fen) for ln in order().lines))
    p, earning = planned(data, facts())
    assert earning.points == 219  # 1 point per CNY paid, no bonuses
    assert p.spend is None and p.takes == ()
    assert p.earn == plan.Posting(
        "earn", "earn:order:pos:O-1", 219, "order O-1 (store SH001): base"
    )
    assert p.lot_expires_at is not None and p.lot_expires_at > NOW + timedelta(days=364)
    assert p.growth == earning.growth == 219
    assert p.tier_move is None
    assert [a.action for a in p.audits] == ["points.earn"]
    assert p.order["points_earned"] == 219
    assert p.order["total_fen"] == 21900 and p.order["paid_fen"] == 21900
    assert p.order["business_date"].isoformat() == "2026-03-01"
    assert p.order["first_purchase"] is False and p.order["welcome_bonus"] == 0


def test_first_order_of_a_new_member_gets_the_bonuses_on_the_order_row():
    data = replace(order(), lines=tuple(replace(ln, paid_fen=ln.net_fen) for ln in order().lines))
    p, _ = planned(
        data, facts(member_since=NOW - timedelta(days=3), orders_so_far=0, welcome_given=0)
    )
    assert p.order["welcome_bonus"] == 1000
    assert p.order["first_purchase"] is True
    assert p.earn is not None and p.earn.available_delta == p.order["points_earned"] > 1000


def test_points_payment_takes_soonest_expiring_live_lots_first():
    lots = (
        LotView(1, 500, NOW + timedelta(days=300)),
        LotView(2, 800, NOW + timedelta(days=10)),
        LotView(3, 900, NOW - timedelta(days=1)),  # already expired: never used
    )
    data = order(points_used=1000, points_fen=1000)
    p, _ = planned(data, facts(available=1300), lots)
    assert p.spend == plan.Posting(
        "redeem", "redeem:order:pos:O-1", -1000, "paid order O-1 (store SH001)"
    )
    assert p.takes == (Take(2, 800), Take(1, 200))
    assert [a.action for a in p.audits] == ["points.spend", "points.earn"]
    assert p.order["points_used"] == 1000 and p.order["points_fen"] == 1000


def test_points_payment_beyond_the_balance_is_refused():
    with pytest.raises(InsufficientPoints):
        planned(
            order(points_used=1000, points_fen=1000), facts(available=999), (LotView(1, 999, None),)
        )


def test_growth_crossing_a_threshold_moves_the_tier_unless_an_override_holds_it():
    data = replace(order(), lines=tuple(replace(ln, paid_fen=ln.net_fen) for ln in order().lines))
    p, _ = planned(data, facts(window_growth=900))
    assert p.tier_move is not None
    assert (p.tier_move.from_code, p.tier_move.to_code, p.tier_move.growth) == (
        "regular",
        "silver",
        1119,
    )
    held, _ = planned(data, facts(window_growth=900, override_until=NOW + timedelta(days=1)))
    assert held.tier_move is None


def test_an_order_recorded_without_earning_writes_no_posting():
    p = plan.plan_order(
        order(earn=False), facts(), SETTINGS, earning=None, open_lots=(), actor="a", now=NOW, tz=SH
    )
    assert p.earn is None and p.spend is None and p.growth == 0 and p.audits == ()
    assert p.order["rules_trace"]["note"] == plan.NO_EARNING_NOTE


def test_budgeted_rules_are_charged_what_they_gave():
    rules = EarningRules.model_validate({"welcome": {"budget_points": 5000}})
    settings = replace(SETTINGS, earning=rules)
    f = facts(
        member_since=NOW - timedelta(days=3),
        orders_so_far=0,
        welcome_given=0,
        budget_used={"welcome": 0},
    )
    data = replace(order(), lines=tuple(replace(ln, paid_fen=ln.net_fen) for ln in order().lines))
    lines = tuple(
        EarnLine(category=ln.category, paid_fen=ln.paid_fen, sku=ln.sku) for ln in data.lines
    )
    earning = plan.evaluate(f, settings, occurred_at=data.ordered_at, lines=lines, tz=SH)
    p = plan.plan_order(data, f, settings, earning=earning, open_lots=(), actor="a", now=NOW, tz=SH)
    assert p.budget_charges == (("welcome", 1000),)


@pytest.mark.parametrize(
    ("over", "settings", "general"),
    [
        ({}, SETTINGS, False),
        ({"debt": 1}, SETTINGS, True),
        ({"settling_due": True}, SETTINGS, True),
        ({"keys_taken": True}, SETTINGS, True),
        ({}, replace(SETTINGS, points=PointsSettings(default_pending_days=7)), True),
    ],
)
def test_members_whose_ledger_needs_settling_take_the_general_path(over, settings, general):
    assert plan.needs_general_path(facts(**over), settings) is general
