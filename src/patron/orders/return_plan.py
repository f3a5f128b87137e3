"""Plan a return in pure code: from the order, the lines returned and the member's facts read
under the ledger lock, compute every row the return writes — no I/O here
(``orders.return_writer`` applies the plan).

A plan covers the common case: the member's ledger needs no settling (nothing due, no debt),
the order's points are not held for a return window, nothing was refunded under the return's
keys by another path, no coupon was redeemed on the order, and the clawback leaves no debt that
the points given back would repay. ``plan_return`` answers None when the caller must take the
general path (``orders.returns``) instead; both write the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from patron.errors import Conflict, Invalid
from patron.ledger import domain as ledger_domain
from patron.ledger.domain import ExpiryPolicy, LotView, Take
from patron.tiers import domain as tier_domain
from patron.tiers.domain import TierLadder


@dataclass(frozen=True, slots=True)
class LineState:
    """An order line as stored before the return."""

    line_no: int
    quantity: int
    returned_quantity: int
    paid_fen: int
    refunded_fen: int
    points: int
    refunded_points: int


@dataclass(frozen=True, slots=True)
class LinePart:
    """What one return takes of one line."""

    line_no: int
    quantity: int
    refund_fen: int
    points: int


def split_lines(
    lines: tuple[LineState, ...], wanted: list[tuple[int, int]], order_ref: str
) -> tuple[LinePart, ...]:
    """The parts of the lines a return takes (``wanted``: (line_no, quantity) as asked, a line
    may come twice): proportional by quantity, the return that completes a line takes the rest.
    Raises ``Invalid`` for an unknown line or more than remains of a line."""
    by_no = {ln.line_no: ln for ln in lines}
    totals: dict[int, int] = {}
    for i, (no, qty) in enumerate(wanted):
        if no not in by_no:
            raise Invalid(
                "unknown_line",
                f"Order {order_ref} has no line {no}.",
                details={"field": f"lines.{i}.line_no"},
            )
        totals[no] = totals.get(no, 0) + qty
    for no, qty in totals.items():
        ln = by_no[no]
        if ln.returned_quantity + qty > ln.quantity:
            raise Invalid(
                "return_exceeds_purchase",
                f"Line {no}: {qty} returned but only {ln.quantity - ln.returned_quantity} of "
                f"{ln.quantity} remain.",
                details={"field": "lines", "line_no": no},
            )
    parts: list[LinePart] = []
    for no, qty in sorted(totals.items()):
        ln = by_no[no]
        final = ln.returned_quantity + qty == ln.quantity
        cash = ln.paid_fen - ln.refunded_fen if final else ln.paid_fen * qty // ln.quantity
        pts = ln.points - ln.refunded_points if final else ln.points * qty // ln.quantity
        parts.append(LinePart(no, qty, cash, pts))
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class ReturnFacts:
    """What the member's ledger and tier say about the order's return, read under the lock."""

    member_id: int
    member_no: str
    available: int | None  # None: the member has no points account
    debt: int
    #: pending points due for release or lots due to expire now
    settling_due: bool
    #: a posting or refund already holds one of the return's keys (made by another path)
    keys_taken: bool
    #: the order's earned points are still held (a return window)
    hold_pending: bool
    #: refunds of the order so far: amount, points clawed, growth clawed, min/max order total
    refunded_before: int
    points_clawed_before: int
    growth_clawed_before: int
    refund_totals: tuple[int | None, int | None]
    #: what the order earned (points, growth) and when its growth took effect
    points_earned: int
    growth_earned: int
    growth_effective_at: datetime | None
    growth_balance: int | None  # None: no growth account
    #: points of the order's points payment not given back yet (None: no such spend)
    spend_left: int | None
    tier_row_code: str | None
    override_until: datetime | None
    #: growth in the qualification window of now, before the return
    window_growth: int
    coupons_redeemed: bool


@dataclass(frozen=True, slots=True)
class ReturnOrder:
    order_id: int
    source: str
    external_id: str
    paid_fen: int
    points_earned: int
    growth_earned: int
    refunded_fen: int
    spend_posting_id: int | None
    lines: tuple[LineState, ...]


@dataclass(frozen=True, slots=True)
class ReturnTierMove:
    from_code: str
    to_code: str
    kind: str
    reason: str
    growth: int
    next_evaluation_at: datetime


@dataclass(frozen=True, slots=True)
class ReturnPlan:
    member_id: int
    member_no: str
    order_id: int
    order_source: str
    order_external_id: str
    source_id: str
    return_id: str
    actor: str
    now: datetime
    parts: tuple[LinePart, ...]
    refund_fen: int
    order_refunded_fen: int
    order_status: str
    #: a ledger refund was recorded (the order earned and this return refunds cash)
    refunded: bool
    points_clawed: int
    from_available: int
    to_debt: int
    clawback_key: str
    takes: tuple[Take, ...]
    growth_clawed: int
    growth_effective_at: datetime
    order_total_fen: int
    tier_move: ReturnTierMove | None
    #: the points payment given back: a new lot (0: none)
    points_back: int
    restore_source_id: str
    restore_key: str
    restore_reason: str
    restores_id: int | None
    restore_expires_at: datetime | None
    returned_at: datetime
    digest: str
    audits: tuple[tuple[str, dict[str, Any]], ...]


def lots_needed(order: ReturnOrder, parts: tuple[LinePart, ...], facts: ReturnFacts) -> bool:
    """Whether the plan may take points from the balance (the caller then reads the open
    lots): the return refunds cash of an order whose points are not all clawed back yet."""
    refund_fen = sum(p.refund_fen for p in parts)
    return (
        order.paid_fen > 0
        and refund_fen > 0
        and bool(facts.available)
        and facts.points_earned > facts.points_clawed_before
    )


def plan_return(
    order: ReturnOrder,
    parts: tuple[LinePart, ...],
    facts: ReturnFacts,
    ladder: TierLadder,
    expiry: ExpiryPolicy,
    *,
    return_id: str,
    returned_at: datetime,
    digest: str,
    own_lots: tuple[int, ...],
    open_lots: tuple[LotView, ...],
    actor: str,
    now: datetime,
    tz: ZoneInfo,
) -> ReturnPlan | None:
    """Every row the return writes, as the general path would write them, or None when the
    general path must take it (see the module's docstring). ``own_lots``: ids of the order's
    own lots among ``open_lots`` (a clawback takes them first)."""
    if (
        facts.available is None
        or facts.settling_due
        or facts.debt > 0
        or facts.keys_taken
        or facts.hold_pending
        or facts.coupons_redeemed
    ):
        return None
    source_id = f"{order.source}:{order.external_id}"
    refund_fen = sum(p.refund_fen for p in parts)
    points_back = sum(p.points for p in parts)
    audits: list[tuple[str, dict[str, Any]]] = []
    refunded = (
        order.paid_fen > 0 and refund_fen > 0 and bool(order.points_earned or order.growth_earned)
    )
    points = g_done = from_available = to_debt = 0
    takes: tuple[Take, ...] = ()
    tier_move: ReturnTierMove | None = None
    g_effective = facts.growth_effective_at or now
    if refunded:
        low, high = facts.refund_totals
        if low is not None and (low != order.paid_fen or high != order.paid_fen):
            return None  # the general path refuses it (order_total_mismatch)
        ledger_domain.validate_points(
            order.paid_fen, field="order_total_fen", upper=ledger_domain.MAX_AMOUNT_FEN
        )
        ledger_domain.validate_points(
            refund_fen, field="refund_amount_fen", upper=ledger_domain.MAX_AMOUNT_FEN
        )
        points = ledger_domain.proportional_clawback(
            earned=facts.points_earned,
            order_total=order.paid_fen,
            returned_before=facts.refunded_before,
            return_amount=refund_fen,
            clawed_before=facts.points_clawed_before,
        )
        g = ledger_domain.proportional_clawback(
            earned=facts.growth_earned,
            order_total=order.paid_fen,
            returned_before=facts.refunded_before,
            return_amount=refund_fen,
            clawed_before=facts.growth_clawed_before,
        )
        if facts.growth_balance is None:
            return None  # the general path opens the growth account
        g_done = max(min(g, facts.growth_balance), 0)
        if points > 0:
            split = ledger_domain.split_clawback(points, pending_hold=0, available=facts.available)
            from_available, to_debt = split.from_available, split.to_debt
            if to_debt and points_back:
                return None  # the points given back would repay the debt (general path)
            if from_available:
                takes = tuple(
                    ledger_domain.allocate(open_lots, from_available, now=now, prefer=own_lots)
                )
        if g_done:
            tier_move = _tier_move(facts, ladder, g_done, g_effective, now, tz)
        audits.append(
            (
                "points.refund_clawback",
                {
                    "refund": f"order:{source_id}:{return_id}",
                    "points": points,
                    "growth": g_done,
                    "to_debt": to_debt,
                },
            )
        )
    restore_source = f"{source_id}:{return_id}"[:64]
    if points_back:
        ledger_domain.validate_points(points_back)
        if facts.spend_left is None:
            return None  # the general path answers spend_not_found
        if points_back > facts.spend_left:
            raise Conflict(
                "reversal_exceeds_spend",
                f"Only {max(facts.spend_left, 0)} points of redemption {order.spend_posting_id} "
                "are left to give back.",
                details={"posting_id": order.spend_posting_id, "left": max(facts.spend_left, 0)},
            )
        audits.append(
            (
                "points.earn",
                {
                    "points": points_back,
                    "growth": 0,
                    "source": f"order_return:{restore_source}",
                    "pending_days": 0,
                },
            )
        )
    by_no = {p.line_no: p.quantity for p in parts}
    all_back = all(
        ln.returned_quantity + by_no.get(ln.line_no, 0) == ln.quantity for ln in order.lines
    )
    return ReturnPlan(
        member_id=facts.member_id,
        member_no=facts.member_no,
        order_id=order.order_id,
        order_source=order.source,
        order_external_id=order.external_id,
        source_id=source_id,
        return_id=return_id,
        actor=actor[:120],
        now=now,
        parts=parts,
        refund_fen=refund_fen,
        order_refunded_fen=order.refunded_fen + refund_fen,
        order_status="returned" if all_back else "partially_returned",
        refunded=refunded,
        points_clawed=points,
        from_available=from_available,
        to_debt=to_debt,
        clawback_key=f"clawback:order:{source_id}:{return_id}",
        takes=takes,
        growth_clawed=g_done,
        growth_effective_at=g_effective,
        order_total_fen=order.paid_fen,
        tier_move=tier_move,
        points_back=points_back,
        restore_source_id=restore_source,
        restore_key=f"earn:order_return:{restore_source}",
        restore_reason=f"points payment returned for order {order.external_id}"[:200],
        restores_id=order.spend_posting_id,
        restore_expires_at=ledger_domain.compute_expiry(now, expiry, tz) if points_back else None,
        returned_at=returned_at,
        digest=digest,
        audits=tuple(audits),
    )


def _tier_move(
    facts: ReturnFacts,
    ladder: TierLadder,
    growth_clawed: int,
    effective_at: datetime,
    now: datetime,
    tz: ZoneInfo,
) -> ReturnTierMove | None:
    """The tier move of a refund that took growth back (``tiers.service.on_growth_change``):
    an upgrade still reached, or with ``demote_on_refund`` a demotion; never while an override
    holds the tier."""
    if facts.override_until is not None and facts.override_until > now:
        return None
    current = facts.tier_row_code or ladder.base.code
    start = tier_domain.window_start(ladder.qualification_window, now, tz)
    value = facts.window_growth - (growth_clawed if effective_at >= start else 0)
    nxt = tier_domain.next_evaluation(ladder.qualification_window, now, tz)
    up = tier_domain.upgrade_target(ladder, current, value)
    if up is not None:
        return ReturnTierMove(
            current, up.code, "upgrade", "growth reached the threshold", value, nxt
        )
    down = tier_domain.refund_demotion_target(ladder, current, value)
    if down is not None:
        return ReturnTierMove(
            current,
            down.code,
            "refund_demotion",
            "refund took growth below the threshold",
            value,
            nxt,
        )
    return None
