"""A return planned in pure code (``orders.return_plan``): the lines' split, the clawback and
the points given back, the tier move, debt, holds, replays and coupons."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from patron.errors import Conflict, Invalid, NotFound
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
    hold=None,
    refund_taken=None,
    clawback_key_taken=False,
    restore_taken=None,
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


def test_a_member_in_debt_repays_it_from_the_points_given_back_first():
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    # nothing to claw from: the clawback becomes debt, the points given back repay it and
    # the earlier debt, from the new lot
    p = _plan(parts, replace(FACTS, available=0, debt=100), lots=())
    assert (p.points_clawed, p.from_available, p.to_debt) == (30, 0, 30)
    assert p.restored and p.points_back == 666
    assert p.repay == 130 and p.repay_takes == (Take(rp.NEW_LOT, 130),)
    # a debt larger than the points given back takes them all
    p = _plan(parts, replace(FACTS, available=0, debt=5_000), lots=())
    assert p.repay == 666 and p.repay_takes == (Take(rp.NEW_LOT, 666),)
    # with a balance, the debt takes the soonest-expiring lot (the new one expires last)
    lots = (LotView(1, 50, NOW + timedelta(days=3)),)
    p = _plan(parts, replace(FACTS, available=50, debt=70), lots=lots)
    assert p.takes == (Take(1, 30),)  # the order's own lot 2 is gone: lot 1 pays the clawback
    assert p.repay == 70 and p.repay_takes == (Take(1, 20), Take(rp.NEW_LOT, 50))


def test_a_return_of_an_order_whose_points_are_held_claws_back_the_hold_first():
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    p = _plan(parts, replace(FACTS, hold=(9, 190)))
    assert (p.from_pending, p.from_available, p.to_debt) == (30, 0, 0)
    assert p.hold_left == (9, 160) and p.takes == ()
    full = rp.split_lines(LINES, [(1, 1), (2, 3)], "O-1")
    p = _plan(full, replace(FACTS, hold=(9, 100)))
    assert (p.from_pending, p.from_available) == (100, 90)
    assert p.hold_left == (9, 0)  # cancelled by the writer


def test_a_refund_already_recorded_under_the_returns_key_is_replayed():
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    p = _plan(parts, replace(FACTS, refund_taken=(5, 3_000, 19_000, 25, 20)))
    assert not p.refunded and (p.points_clawed, p.growth_clawed, p.to_debt) == (25, 20, 0)
    assert p.takes == () and p.tier_move is None
    assert [a for a, _ in p.audits] == ["points.earn"]
    with pytest.raises(Conflict) as other:
        _plan(parts, replace(FACTS, refund_taken=(5, 2_999, 19_000, 25, 20)))
    assert other.value.code == "idempotency_conflict"
    with pytest.raises(Conflict) as taken:
        _plan(parts, replace(FACTS, clawback_key_taken=True))
    assert taken.value.code == "idempotency_conflict"


def test_points_given_back_already_under_the_key_are_replayed():
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    p = _plan(parts, replace(FACTS, restore_taken=(44, 5, "earn", 666)))
    assert p.points_back == 666 and not p.restored and p.repay == 0
    assert [a for a, _ in p.audits] == ["points.refund_clawback"]
    with pytest.raises(Conflict) as other:
        _plan(parts, replace(FACTS, restore_taken=(44, 6, "earn", 666)))
    assert other.value.code == "idempotency_conflict"
    assert other.value.details == {"posting_id": 44}


@pytest.mark.parametrize(
    ("facts", "code"),
    [
        (replace(FACTS, refund_totals=(18_000, 18_000)), "order_total_mismatch"),
        (replace(FACTS, spend_left=None), "spend_not_found"),
    ],
)
def test_what_the_ledger_refuses_the_plan_refuses(facts, code):
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    with pytest.raises((Conflict, NotFound)) as refused:
        _plan(parts, facts)
    assert refused.value.code == code


def test_members_without_accounts_get_them_opened_and_settling_comes_first():
    parts = rp.split_lines(LINES, [(2, 1)], "O-1")
    p = _plan(parts, replace(FACTS, available=None, growth_balance=None), lots=())
    assert p.open_account and p.open_growth_account
    assert (p.to_debt, p.growth_clawed, p.repay) == (30, 0, 30)
    with pytest.raises(ValueError):
        _plan(parts, replace(FACTS, settling_due=True))


def _coupon(cid, lines, days=10):
    return rp.RedeemedCoupon(cid, f"C{cid}", "T", 5, lines, NOW + timedelta(days=days))


def test_coupons_come_back_once_every_line_they_discounted_is_returned_and_still_valid():
    coupons = (_coupon(1, (1,)), _coupon(2, (1, 2)), _coupon(3, (2,), days=-1), _coupon(4, ()))
    parts = rp.split_lines(LINES, [(1, 1)], "O-1")

    def back(parts, restore=True):
        p = rp.plan_return(
            ORDER,
            parts,
            FACTS,
            TierLadder(),
            ExpiryPolicy(),
            return_id="R-1",
            returned_at=NOW,
            digest="d",
            own_lots=(2,),
            open_lots=LOTS,
            actor="t",
            now=NOW,
            tz=SH,
            coupons=coupons,
            restore_on_return=restore,
        )
        return [c.id for c in p.coupons_back]

    assert back(parts) == [1, 4]  # coupon 2 waits for line 2; an order-wide coupon comes back
    assert back(rp.split_lines(LINES, [(1, 1), (2, 3)], "O-1")) == [1, 2, 4]  # 3 has expired
    assert back(parts, restore=False) == []
