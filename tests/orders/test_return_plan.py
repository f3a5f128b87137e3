"""A return planned in pure code (``orders.return_plan``): the lines' split, the clawback and
the points given back, the tier move, and when the general path must take it instead."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from patron.errors import Conflict, Invalid
from patron.ledger.domain import ExpiryPolicy, LotView, Take
from patron.orders import return_plan as rp
from patron.tiers.domain import TierLadder

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
LINES = (
    rp.LineState(1, 1, 0, 10_000, 0, 0, 0),
    rp.LineState(2, 3, 0, 9_000, 0, 2_000, 0),
)
ORDER = rp.ReturnOrder(
    order_id=7,
    source="pos",
    external_id="O-1",
    paid_fen=19_000,
    points_earned=190,
    growth_earned=190,
    refunded_fen=0,
    spend_posting_id=3,
    lines=LINES,
)
FACTS = rp.ReturnFacts(
    member_id=5,
    member_no="0000000005",
    available=3_190,
    debt=0,
    settling_due=False,
    keys_taken=False,
    hold_pending=False,
    refunded_before=0,
    points_clawed_before=0,
    growth_clawed_before=0,
    refund_totals=(None, None),
    points_earned=190,
    growth_earned=190,
    growth_effective_at=NOW - timedelta(days=1),
    growth_balance=1_100,
    spend_left=2_000,
    tier_row_code="silver",
    override_until=None,
    window_growth=1_100,
    coupons_redeemed=False,
)
LOTS = (
    LotView(1, 3_000, NOW + timedelta(days=30)),
    LotView(2, 190, NOW + timedelta(days=300)),
)


def _plan(parts, facts=FACTS, ladder=None, lots=LOTS):
    return rp.plan_return(
        ORDER,
        parts,
        facts,
        ladder or TierLadder(),
        ExpiryPolicy(),
        return_id="R-1",
        returned_at=NOW,
        digest="d",
        own_lots=(2,),
        open_lots=lots,
        actor="t",
        now=NOW,
        tz=SH,
    )


def test_lines_split_by_quantity_and_the_last_return_takes_the_rest():
    parts = rp.split_lines(LINES, [(2, 1), (2, 1)], "O-1")
    assert parts == (rp.LinePart(2, 2, 6_000, 1_333),)
    done = replace(LINES[1], returned_quantity=2, refunded_fen=6_000, refunded_points=1_333)
    assert rp.split_lines((LINES[0], done), [(2, 1)], "O-1") == (rp.LinePart(2, 1, 3_000, 667),)
    with pytest.raises(Invalid) as unknown:
        rp.split_lines(LINES, [(9, 1)], "O-1")
    assert unknown.value.code == "unknown_line"
    with pytest.raises(Invalid) as beyond:
        rp.split_lines(LINES, [(1, 2)], "O-1")
    assert beyond.value.code == "return_exceeds_purchase"


def test_a_return_claws_back_from_the_orders_own_lot_first_and_gives_points_back():
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    p = _plan(parts)
    assert p is not None
    assert (p.refund_fen, p.points_clawed, p.from_available, p.to_debt) == (3_000, 30, 30, 0)
    assert p.takes == (Take(2, 30),)  # the order's own lot, not the one expiring sooner
    assert (p.growth_clawed, p.points_back, p.order_status) == (30, 666, "partially_returned")
    assert [a for a, _ in p.audits] == ["points.refund_clawback", "points.earn"]
    assert p.tier_move is None  # 1,070 still keeps silver (no demotion on refund by default)


def test_a_refund_demotes_when_the_ladder_says_so():
    parts = rp.split_lines(LINES, [(1, 1), (2, 3)], "O-1")
    p = _plan(parts, ladder=TierLadder(demote_on_refund=True))
    assert p is not None and p.order_status == "returned"
    assert p.tier_move is not None
    assert (p.tier_move.from_code, p.tier_move.to_code, p.tier_move.growth) == (
        "silver",
        "regular",
        910,
    )


def test_more_points_back_than_the_payment_left_is_refused():
    parts = rp.split_lines(LINES, [(2, 3)], "O-1")
    with pytest.raises(Conflict) as refused:
        _plan(parts, replace(FACTS, spend_left=100))
    assert refused.value.code == "reversal_exceeds_spend"


@pytest.mark.parametrize(
    "facts",
    [
        replace(FACTS, settling_due=True),
        replace(FACTS, debt=5),
        replace(FACTS, keys_taken=True),
        replace(FACTS, hold_pending=True),
        replace(FACTS, coupons_redeemed=True),
        replace(FACTS, available=None),
        replace(FACTS, growth_balance=None),
        replace(FACTS, refund_totals=(18_000, 18_000)),
        # the clawback leaves debt that the points given back would repay
        replace(FACTS, available=0),
    ],
)
def test_the_general_path_takes_what_the_plan_does_not_cover(facts):
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    assert _plan(parts, facts, lots=()) is None
