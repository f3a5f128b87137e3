"""Plan a return in pure code: from the order, the lines returned and the member's facts read
under the ledger lock, compute every row the return writes — no I/O here
(``orders.return_writer`` applies the plan).

Every return is planned here, after the caller has settled the member's ledger (due pending
points released, due lots expired, debt repaid): the clawback takes the order's pending hold
first, then the balance, the rest as debt; points given back repay debt first; a refund already
recorded under the return's key (by the ledger API) is replayed, not clawed twice; coupons whose
discounted lines are all back return to the wallet. The rows are those the ledger's own flows
(``ledger.flows.refund``, ``ledger.flows.earn``) write, and the coupons' restore wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from patron.errors import Conflict, Invalid, NotFound
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
    #: pending points due for release or lots due to expire now: the caller settles first
    settling_due: bool
    #: the order's pending hold (a return window): (hold id, amount), or None
    hold: tuple[int, int] | None
    #: a ledger refund already recorded under the return's key: (member id, amount, order
    #: total, points clawed, growth clawed), or None
    refund_taken: tuple[int, int, int, int, int] | None
    #: a posting already holds the clawback's key without a refund row
    clawback_key_taken: bool
    #: a posting already holds the key of the points given back: (posting id, member id,
    #: kind, available delta), or None
    restore_taken: tuple[int, int, str, int] | None
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
class RedeemedCoupon:
    """A coupon redeemed on the order (read only when the order has one)."""

    id: int
    code: str
    template_code: str
    member_id: int
    #: the line numbers its discount was spread over
    line_nos: tuple[int, ...]
    valid_until: datetime


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


#: stands for the lot of the points given back (its id is known once written); it sorts
#: after every existing lot, as the new lot's id does
NEW_LOT = 2**62


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
    #: the member has no points account yet (SQLite): the writer opens it
    open_account: bool
    #: a ledger refund is written (False: none asked, or replayed from an earlier one)
    refunded: bool
    #: what the return records (replayed: the earlier refund's figures)
    points_clawed: int
    from_pending: int
    #: the order's hold the clawback takes from: (id, amount left after it)
    hold_left: tuple[int, int] | None
    from_available: int
    to_debt: int
    clawback_key: str
    takes: tuple[Take, ...]
    growth_clawed: int
    growth_effective_at: datetime
    #: the refund opens the member's growth account (it had none)
    open_growth_account: bool
    order_total_fen: int
    tier_move: ReturnTierMove | None
    #: the points payment given back: a new lot (0: none)
    points_back: int
    #: the points given back are written (False: none, or replayed from an earlier posting)
    restored: bool
    restore_source_id: str
    restore_key: str
    restore_reason: str
    restores_id: int | None
    restore_expires_at: datetime | None
    #: debt repaid from the points given back, and the lots it takes (``NEW_LOT`` among them)
    repay: int
    repay_takes: tuple[Take, ...]
    #: coupons back to the wallet
    coupons_back: tuple[RedeemedCoupon, ...]
    returned_at: datetime
    digest: str
    audits: tuple[tuple[str, dict[str, Any]], ...]


def lots_needed(order: ReturnOrder, parts: tuple[LinePart, ...], facts: ReturnFacts) -> bool:
    """Whether the plan may take points from lots (the caller then reads the open lots): the
    return refunds cash of an order whose points are not all clawed back yet, or gives points
    back to a member in debt. Without a balance there are no open lots to read."""
    if not facts.available:
        return False
    refund_fen = sum(p.refund_fen for p in parts)
    clawback = (
        order.paid_fen > 0 and refund_fen > 0 and facts.points_earned > facts.points_clawed_before
    )
    return clawback or (facts.debt > 0 and any(p.points for p in parts))


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
    coupons: tuple[RedeemedCoupon, ...] = (),
    restore_on_return: bool = True,
) -> ReturnPlan:
    """Every row the return writes. ``facts`` are read after settling (``settling_due`` is
    False); ``own_lots``: ids of the order's own lots among ``open_lots`` (a clawback takes them
    first); ``coupons``: those redeemed on the order. Raises ``Conflict`` / ``NotFound`` /
    ``Invalid`` as the ledger would refuse the refund or the points given back."""
    if facts.settling_due:
        raise ValueError("settle the member's ledger before planning the return")
    source_id = f"{order.source}:{order.external_id}"
    clawback_key = f"clawback:order:{source_id}:{return_id}"
    refund_fen = sum(p.refund_fen for p in parts)
    points_back = sum(p.points for p in parts)
    available = facts.available or 0
    audits: list[tuple[str, dict[str, Any]]] = []
    asked = (
        order.paid_fen > 0 and refund_fen > 0 and bool(order.points_earned or order.growth_earned)
    )
    refunded = False
    points = g_done = from_pending = from_available = to_debt = 0
    hold_left: tuple[int, int] | None = None
    takes: tuple[Take, ...] = ()
    lots = list(open_lots)
    tier_move: ReturnTierMove | None = None
    open_growth = False
    g_effective = facts.growth_effective_at or now
    if asked:
        ledger_domain.validate_points(
            order.paid_fen, field="order_total_fen", upper=ledger_domain.MAX_AMOUNT_FEN
        )
        ledger_domain.validate_points(
            refund_fen, field="refund_amount_fen", upper=ledger_domain.MAX_AMOUNT_FEN
        )
    if asked and facts.refund_taken is not None:
        # recorded under the return's key by the ledger API: replayed, never clawed twice
        member_id, amount, total, points, g_done = facts.refund_taken
        if (member_id, amount, total) != (facts.member_id, refund_fen, order.paid_fen):
            raise Conflict("idempotency_conflict", f"refund {return_id!r} was recorded differently")
    elif asked:
        if facts.clawback_key_taken:
            raise Conflict(
                "idempotency_conflict",
                f"{clawback_key!r} was already used for a different posting",
            )
        low, high = facts.refund_totals
        if low is not None and (low != order.paid_fen or high != order.paid_fen):
            raise Conflict("order_total_mismatch", "order total differs from earlier refunds")
        refunded = True
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
        open_growth = facts.growth_balance is None
        g_done = max(min(g, facts.growth_balance or 0), 0)
        if points > 0:
            held = facts.hold[1] if facts.hold else 0
            split = ledger_domain.split_clawback(points, pending_hold=held, available=available)
            from_pending, from_available, to_debt = (
                split.from_pending,
                split.from_available,
                split.to_debt,
            )
            if facts.hold and from_pending:
                hold_left = (facts.hold[0], facts.hold[1] - from_pending)
            if from_available:
                takes = tuple(
                    ledger_domain.allocate(lots, from_available, now=now, prefer=own_lots)
                )
                lots = _after(lots, takes)
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
    restore_key = f"earn:order_return:{restore_source}"
    restored = False
    repay = 0
    repay_takes: tuple[Take, ...] = ()
    restore_expires_at = None
    if points_back:
        ledger_domain.validate_points(points_back)
        if facts.restore_taken is not None:
            posting_id, member_id, kind, delta = facts.restore_taken
            if (member_id, kind, delta) != (facts.member_id, "earn", points_back):
                raise Conflict(
                    "idempotency_conflict",
                    f"{restore_key!r} was already used for a different posting",
                    details={"posting_id": posting_id},
                )
        else:
            _check_restorable(order, facts, points_back)
            restored = True
            restore_expires_at = ledger_domain.compute_expiry(now, expiry, tz)
            # the new points repay debt first (soonest-expiring lots first, the new one too)
            debt = facts.debt + to_debt
            lots.append(LotView(NEW_LOT, points_back, restore_expires_at))
            live = sum(lot.remaining for lot in lots if ledger_domain.is_live(lot, now))
            repay = ledger_domain.debt_repayment(debt, live) if debt else 0
            if repay:
                repay_takes = tuple(ledger_domain.allocate(lots, repay, now=now))
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
    back = {
        ln.line_no
        for ln in order.lines
        if ln.returned_quantity + by_no.get(ln.line_no, 0) == ln.quantity
    }
    all_back = len(back) == len(order.lines)
    coupons_back = tuple(
        c
        for c in coupons
        if restore_on_return
        and c.valid_until > now
        and all(no in back for no in c.line_nos if no in {ln.line_no for ln in order.lines})
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
        open_account=facts.available is None,
        refunded=refunded,
        points_clawed=points,
        from_pending=from_pending,
        hold_left=hold_left,
        from_available=from_available,
        to_debt=to_debt,
        clawback_key=clawback_key,
        takes=takes,
        growth_clawed=g_done,
        growth_effective_at=g_effective,
        open_growth_account=open_growth,
        order_total_fen=order.paid_fen,
        tier_move=tier_move,
        points_back=points_back,
        restored=restored,
        restore_source_id=restore_source,
        restore_key=restore_key,
        restore_reason=f"points payment returned for order {order.external_id}"[:200],
        restores_id=order.spend_posting_id,
        restore_expires_at=restore_expires_at,
        repay=repay,
        repay_takes=repay_takes,
        coupons_back=coupons_back,
        returned_at=returned_at,
        digest=digest,
        audits=tuple(audits),
    )


def _after(lots: list[LotView], takes: tuple[Take, ...]) -> list[LotView]:
    """The open lots once ``takes`` are taken from them."""
    taken = {t.lot_id: t.amount for t in takes}
    return [
        LotView(lot.id, lot.remaining - taken.get(lot.id, 0), lot.expires_at)
        for lot in lots
        if lot.remaining > taken.get(lot.id, 0)
    ]


def _check_restorable(order: ReturnOrder, facts: ReturnFacts, points: int) -> None:
    """The points given back never exceed what is left of the order's points payment."""
    if order.spend_posting_id is None:
        return
    if facts.spend_left is None:
        raise NotFound(
            "spend_not_found", f"No redemption {order.spend_posting_id} for this member."
        )
    if points > facts.spend_left:
        left = max(facts.spend_left, 0)
        raise Conflict(
            "reversal_exceeds_spend",
            f"Only {left} points of redemption {order.spend_posting_id} are left to give back.",
            details={"posting_id": order.spend_posting_id, "left": left},
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
