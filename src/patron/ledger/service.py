"""Use cases of the points ledger. Services flush, never commit.

Locking protocol (see docs/ledger.md): every write first updates the member's
``points_accounts`` row (a row lock on PostgreSQL, the database write lock on SQLite), then
touches that member's lots in id order. Nothing reads a balance and writes later: the spend
guard is ``UPDATE … SET available = available - :n WHERE available >= :n`` with a rowcount check.

Before doing its own work, every write *settles* the member: releases due pending points,
expires due lots and repays debt — so a spend never uses points that are already past expiry,
even when the expiry job has not run yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import domain
from patron.ledger.domain import ExpiryPolicy, InsufficientPoints
from patron.ledger.models import (
    PointsAccount,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.ledger.store import (
    account_row,
    bump,
    consume,
    lock_account,
    new_lot,
    open_lots,
    post,
    rowcount,
)
from patron.program import service as program

SECTION = "points"


class PointsSettings(BaseModel):
    """Operator-editable points settings (program section ``points``), seed defaults."""

    model_config = ConfigDict(extra="forbid")

    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    #: members whose points lapse within this many days are listed for a reminder
    reminder_days: int = Field(default=30, ge=1, le=365)
    #: adjustments with a larger magnitude need a second approver (points or growth)
    adjustment_approval_limit: int = Field(default=10_000, ge=0, le=domain.MAX_POINTS_PER_POSTING)
    #: what one staff member may adjust without a second approver per business day (sum of the
    #: magnitudes, per ledger); the adjustment that would pass it waits for approval. It also
    #: caps what one caller credits by direct earnings per business day.
    adjustment_daily_limit: StrictInt = Field(
        default=20_000, ge=0, le=domain.MAX_POINTS_PER_POSTING
    )
    #: hours after which the requester may decide their own adjustment that waits for approval
    #: (a program with a single admin is not stuck); 0 = never, a second person always decides
    self_approval_delay_hours: StrictInt = Field(default=24, ge=0, le=24 * 30)
    #: the most one free-form earning (``POST .../points/earn``) may credit; more is an adjustment
    direct_earn_limit: StrictInt = Field(default=1_000, ge=0, le=domain.MAX_POINTS_PER_POSTING)
    #: pending (return-window) days applied to an earning that does not say; 0 = immediate
    default_pending_days: int = Field(default=0, ge=0, le=365)


def get_points_settings(session: Session) -> PointsSettings:
    return program.get_section(session, SECTION, PointsSettings)


@dataclass(frozen=True, slots=True)
class Ctx:
    """Who acts, when, and in which business timezone."""

    actor: Principal
    now: datetime
    tz: ZoneInfo
    settings: PointsSettings = field(default_factory=PointsSettings)


@dataclass(frozen=True, slots=True)
class PostingResult:
    posting_id: int
    replayed: bool = False


# --------------------------------------------------------------------------- settle


def settle(session: Session, ctx: Ctx, member_id: int) -> None:
    """Release due pending points, expire due lots, repay debt. Caller holds the lock."""
    due_holds = session.execute(
        select(PointsHold.id)
        .where(
            PointsHold.member_id == member_id,
            PointsHold.status == "pending",
            PointsHold.release_at <= ctx.now,
        )
        .order_by(PointsHold.id)
    ).scalars()
    for hold_id in list(due_holds):
        release_hold(session, ctx, hold_id)
    expire_member(session, ctx, member_id)
    repay_debt(session, ctx, member_id)


def release_hold(session: Session, ctx: Ctx, hold_id: int) -> bool:
    hold = session.execute(
        select(
            PointsHold.member_id,
            PointsHold.amount,
            PointsHold.earned_at,
            PointsHold.source_type,
            PointsHold.source_id,
        ).where(PointsHold.id == hold_id)
    ).one()
    # A hold resolves once: the status guard makes a second release a no-op.
    res = session.execute(
        update(PointsHold)
        .where(PointsHold.id == hold_id, PointsHold.status == "pending")
        .values(status="released", resolved_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(res) != 1:
        return False
    posting_id = post(
        session,
        ctx,
        hold.member_id,
        "release",
        f"release:{hold_id}",
        available=hold.amount,
        pending=-hold.amount,
        reason="pending points released",
        source_type=hold.source_type,
        source_id=hold.source_id,
    )
    new_lot(
        session,
        hold.member_id,
        posting_id,
        hold.amount,
        earned_at=hold.earned_at,
        expires_at=domain.compute_expiry(hold.earned_at, ctx.settings.expiry, ctx.tz),
        source_type=hold.source_type,
        source_id=hold.source_id,
    )
    bump(
        session,
        hold.member_id,
        available=hold.amount,
        pending=-hold.amount,
        lifetime_earned=hold.amount,
    )
    return True


def expire_member(session: Session, ctx: Ctx, member_id: int) -> int:
    """Expire the remaining part of the member's due lots; returns points expired."""
    due = session.execute(
        select(PointsLot.id, PointsLot.remaining)
        .where(
            PointsLot.member_id == member_id,
            PointsLot.remaining > 0,
            PointsLot.expires_at <= ctx.now,
        )
        .order_by(PointsLot.id)
    ).all()
    total = int(sum(r.remaining for r in due))
    if not total:
        return 0
    posting_id = post(
        session,
        ctx,
        member_id,
        "expire",
        f"expire:{member_id}:{uuid.uuid4().hex}",
        available=-total,
        reason="points expired",
    )
    consume(session, member_id, posting_id, [domain.Take(r.id, r.remaining) for r in due])
    bump(session, member_id, available=-total, lifetime_expired=total)
    return total


def repay_debt(session: Session, ctx: Ctx, member_id: int) -> int:
    acc = account_row(session, member_id)
    if acc is None or acc.debt == 0 or acc.available == 0:
        return 0
    lots = open_lots(session, member_id)
    live = sum(lot.remaining for lot in lots if domain.is_live(lot, ctx.now))
    amount = domain.debt_repayment(acc.debt, live)
    if not amount:
        return 0
    takes = domain.allocate(lots, amount, now=ctx.now)
    posting_id = post(
        session,
        ctx,
        member_id,
        "repay",
        f"repay:{member_id}:{uuid.uuid4().hex}",
        available=-amount,
        debt=-amount,
        reason="points debt repaid from new points",
    )
    consume(session, member_id, posting_id, takes)
    bump(session, member_id, available=-amount, debt=-amount)
    return amount


_BEGUN = "patron.ledger.begun"


def begin(session: Session, ctx: Ctx, member_id: int) -> None:
    """Lock the member's ledger and settle it as of ``ctx.now``. Once per member and instant
    within a transaction: nothing a ledger write does makes more points due at the same instant
    (new lots and holds become due later; a cancelled spend expires what it restores itself)."""
    begun: set[tuple[int, datetime]] = session.info.setdefault(_BEGUN, set())
    if (member_id, ctx.now) in begun:
        return
    lock_account(session, member_id, ctx.now)
    settle(session, ctx, member_id)
    begun.add((member_id, ctx.now))


def is_begun(session: Session, member_id: int, now: datetime) -> bool:
    """Whether this transaction already locked and settled the member as of ``now``."""
    return (member_id, now) in session.info.get(_BEGUN, ())


def mark_begun(session: Session, member_ids: list[int], now: datetime) -> None:
    """A batch writer locked and settled these members as ``begin`` would have."""
    begun: set[tuple[int, datetime]] = session.info.setdefault(_BEGUN, set())
    begun.update((m, now) for m in member_ids)


@event.listens_for(Session, "after_transaction_end")
def _forget_begun(session: Session, transaction: Any) -> None:
    # The end of the transaction or of any savepoint (a rolled-back savepoint may have undone
    # the lock row); not the internal subtransactions of a flush.
    if transaction.nested or transaction.parent is None:
        session.info.pop(_BEGUN, None)


# --------------------------------------------------------------------------- idempotency


def _replay(
    session: Session, key: str, member_id: int, kind: str, expect: dict[str, int]
) -> PostingResult | None:
    row = session.scalar(select(PointsPosting).where(PointsPosting.idempotency_key == key))
    if row is None:
        return None
    actual = {
        "available": row.available_delta,
        "pending": row.pending_delta,
    }
    same = row.member_id == member_id and row.kind == kind
    same = same and all(actual.get(k, v) == v for k, v in expect.items())
    if not same:
        raise Conflict(
            "idempotency_conflict",
            f"{key!r} was already used for a different posting",
            details={"posting_id": row.id},
        )
    return PostingResult(row.id, replayed=True)


def _source_key(kind: str, source_type: str, source_id: str) -> str:
    return f"{kind}:{source_type}:{source_id}"


# --------------------------------------------------------------------------- earn & spend


def earn(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    points: int,
    source_type: str,
    source_id: str,
    reason: str = "",
    pending_days: int | None = None,
    restores_id: int | None = None,
) -> PostingResult:
    """Credit points for a source (one earning per source). With a return window the points
    are pending until ``now + pending_days``. ``restores_id`` names the spend whose points this
    gives back (an order's points payment on its return): the spend's reversals never exceed it."""
    points = domain.validate_points(points)
    days = ctx.settings.default_pending_days if pending_days is None else pending_days
    if days < 0 or days > 365:
        raise Invalid("invalid_pending_days", "pending_days must be between 0 and 365")
    key = _source_key("earn", source_type, source_id)
    begin(session, ctx, member_id)
    bucket = "pending" if days else "available"
    replay = _replay(session, key, member_id, "earn", {bucket: points})
    if replay:
        return replay
    if restores_id is not None:
        _check_restorable(session, member_id, restores_id, points)
    if days:
        posting_id = post(
            session,
            ctx,
            member_id,
            "earn",
            key,
            pending=points,
            reason=reason,
            source_type=source_type,
            source_id=source_id,
        )
        session.execute(
            insert(PointsHold).values(
                member_id=member_id,
                posting_id=posting_id,
                original_amount=points,
                amount=points,
                status="pending",
                earned_at=ctx.now,
                release_at=ctx.now + timedelta(days=days),
                source_type=source_type,
                source_id=source_id,
            )
        )
        bump(session, member_id, pending=points)
        return PostingResult(posting_id)
    posting_id = _credit(
        session,
        ctx,
        member_id,
        points,
        "earn",
        key,
        reason,
        source_type,
        source_id,
        restores_id=restores_id,
    )
    return PostingResult(posting_id)


def reversed_so_far(session: Session, posting_id: int) -> int:
    """Points given back for a posting so far: its cancellation and every partial return."""
    return int(
        session.scalar(
            select(
                func.coalesce(
                    func.sum(PointsPosting.available_delta + PointsPosting.pending_delta), 0
                )
            ).where(
                (PointsPosting.reverses_id == posting_id)
                | (PointsPosting.restores_id == posting_id)
            )
        )
        or 0
    )


def _check_restorable(session: Session, member_id: int, spend_id: int, points: int) -> None:
    """Caller holds the member's lock, so the sum cannot move before the credit is written."""
    spend = session.get(PointsPosting, spend_id)
    if spend is None or spend.member_id != member_id or spend.kind != "redeem":
        raise NotFound("spend_not_found", f"No redemption {spend_id} for this member.")
    left = -spend.available_delta - reversed_so_far(session, spend_id)
    if points > left:
        raise Conflict(
            "reversal_exceeds_spend",
            f"Only {max(left, 0)} points of redemption {spend_id} are left to give back.",
            details={"posting_id": spend_id, "left": max(left, 0)},
        )


def _credit(
    session: Session,
    ctx: Ctx,
    member_id: int,
    points: int,
    kind: str,
    key: str,
    reason: str,
    source_type: str | None,
    source_id: str | None,
    *,
    restores_id: int | None = None,
) -> int:
    posting_id = post(
        session,
        ctx,
        member_id,
        kind,
        key,
        available=points,
        reason=reason,
        source_type=source_type,
        source_id=source_id,
        restores_id=restores_id,
    )
    new_lot(
        session,
        member_id,
        posting_id,
        points,
        earned_at=ctx.now,
        expires_at=domain.compute_expiry(ctx.now, ctx.settings.expiry, ctx.tz),
        source_type=source_type,
        source_id=source_id,
    )
    bump(session, member_id, available=points, lifetime_earned=points)
    repay_debt(session, ctx, member_id)
    return posting_id


def _debit(
    session: Session,
    ctx: Ctx,
    member_id: int,
    points: int,
    kind: str,
    key: str,
    reason: str,
    source_type: str | None = None,
    source_id: str | None = None,
) -> int:
    # The guard *is* the check: no balance is read before this write.
    res = session.execute(
        update(PointsAccount)
        .where(PointsAccount.member_id == member_id, PointsAccount.available >= points)
        .values(
            available=PointsAccount.available - points,
            lifetime_redeemed=PointsAccount.lifetime_redeemed + (points if kind == "redeem" else 0),
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(res) != 1:
        acc = account_row(session, member_id)
        raise InsufficientPoints(points, acc.available if acc else 0)
    takes = domain.allocate(open_lots(session, member_id), points, now=ctx.now)
    posting_id = post(
        session,
        ctx,
        member_id,
        kind,
        key,
        available=-points,
        reason=reason,
        source_type=source_type,
        source_id=source_id,
    )
    consume(session, member_id, posting_id, takes)
    return posting_id


def spend(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    points: int,
    source_type: str,
    source_id: str,
    reason: str = "",
) -> PostingResult:
    """Redeem points (soonest-expiring lots first); 409 ``insufficient_points`` otherwise."""
    points = domain.validate_points(points)
    key = _source_key("redeem", source_type, source_id)
    begin(session, ctx, member_id)
    replay = _replay(session, key, member_id, "redeem", {"available": -points})
    if replay:
        return replay
    return PostingResult(
        _debit(session, ctx, member_id, points, "redeem", key, reason, source_type, source_id)
    )


def cancel_spend(
    session: Session, ctx: Ctx, member_id: int, posting_id: int, *, owner: str | None = None
) -> PostingResult:
    """Reverse a redemption, restoring exactly the lots it consumed. ``owner`` is the source
    type of the Patron flow that made the spend (the mall cancelling its own redemption);
    without it only spends made through the spend API can be cancelled."""
    original = session.get(PointsPosting, posting_id)
    if original is None or original.member_id != member_id or original.kind != "redeem":
        raise NotFound("spend_not_found", f"No redemption {posting_id} for this member.")
    if owner is not None and original.source_type == owner:
        pass  # the flow that made it reverses it (and gives back what it sold)
    elif original.source_type == domain.ORDER_SOURCE:
        raise Conflict(
            "spend_belongs_to_order",
            f"Redemption {posting_id} paid for order {original.source_id}: return the order "
            "(POST /api/v1/orders/{source}/{external_id}/returns) to give its points back.",
            details={"posting_id": posting_id, "order": original.source_id},
        )
    elif not domain.is_api_source(original.source_type):
        # Patron's own redemptions are reversed by the flow that made them.
        raise Conflict(
            "spend_not_cancellable",
            f"Redemption {posting_id} was not made through the spend API and cannot be "
            "cancelled here.",
            details={"posting_id": posting_id},
        )
    key = f"reversal:{posting_id}"
    begin(session, ctx, member_id)
    replay = _replay(session, key, member_id, "reversal", {"available": -original.available_delta})
    if replay:
        return replay
    if reversed_so_far(session, posting_id):
        raise Conflict(
            "spend_partly_returned",
            f"Part of redemption {posting_id} was already given back; it cannot be cancelled.",
            details={"posting_id": posting_id},
        )
    allocations = session.execute(
        select(PointsAllocation.lot_id, PointsAllocation.amount)
        .where(PointsAllocation.posting_id == posting_id)
        .order_by(PointsAllocation.lot_id)
    ).all()
    amount = -original.available_delta
    reversal_id = post(
        session,
        ctx,
        member_id,
        "reversal",
        key,
        available=amount,
        reason=f"redemption {posting_id} cancelled",
        source_type=original.source_type,
        source_id=original.source_id,
        reverses_id=posting_id,
    )
    for alloc in allocations:
        session.execute(
            update(PointsLot)
            .where(PointsLot.id == alloc.lot_id)
            .values(remaining=PointsLot.remaining + alloc.amount)
            .execution_options(synchronize_session=False)
        )
    session.execute(
        insert(PointsAllocation),
        [
            {
                "posting_id": reversal_id,
                "lot_id": a.lot_id,
                "member_id": member_id,
                "amount": -a.amount,
            }
            for a in allocations
        ],
    )
    bump(session, member_id, available=amount, lifetime_redeemed=-amount)
    # restored lots may already be past expiry, and restored points repay debt first
    expire_member(session, ctx, member_id)
    repay_debt(session, ctx, member_id)
    return PostingResult(reversal_id)


# --------------------------------------------------------------------------- clawback


@dataclass(frozen=True, slots=True)
class Clawback:
    points: int
    from_pending: int
    from_available: int
    to_debt: int
    posting_id: int | None


def clawback_points(
    session: Session,
    ctx: Ctx,
    member_id: int,
    amount: int,
    *,
    source_type: str,
    source_id: str,
    refund_id: str,
    reason: str | None = None,
) -> Clawback:
    """Take back ``amount`` points of a source: its pending hold first, then the balance
    (its own lots first), the rest as debt. Caller holds the lock and has settled."""
    if amount <= 0:
        return Clawback(0, 0, 0, 0, None)
    hold = session.execute(
        select(PointsHold.id, PointsHold.amount).where(
            PointsHold.member_id == member_id,
            PointsHold.source_type == source_type,
            PointsHold.source_id == source_id,
            PointsHold.status == "pending",
        )
    ).first()
    acc = account_row(session, member_id)
    assert acc is not None
    split = domain.split_clawback(
        amount, pending_hold=hold.amount if hold else 0, available=acc.available
    )
    if hold and split.from_pending:
        left = hold.amount - split.from_pending
        session.execute(
            update(PointsHold)
            .where(PointsHold.id == hold.id, PointsHold.status == "pending")
            .values(
                amount=left,
                status="pending" if left else "cancelled",
                resolved_at=None if left else ctx.now,
            )
            .execution_options(synchronize_session=False)
        )
    posting_id = post(
        session,
        ctx,
        member_id,
        "clawback",
        f"clawback:{source_type}:{source_id}:{refund_id}",
        available=-split.from_available,
        pending=-split.from_pending,
        debt=split.to_debt,
        reason=reason or f"refund {refund_id}",
        source_type=source_type,
        source_id=source_id,
    )
    if split.from_available:
        own = session.execute(
            select(PointsLot.id)
            .where(
                PointsLot.member_id == member_id,
                PointsLot.source_type == source_type,
                PointsLot.source_id == source_id,
            )
            .order_by(PointsLot.id)
        ).scalars()
        takes = domain.allocate(
            open_lots(session, member_id), split.from_available, now=ctx.now, prefer=list(own)
        )
        consume(session, member_id, posting_id, takes)
    bump(
        session,
        member_id,
        available=-split.from_available,
        pending=-split.from_pending,
        debt=split.to_debt,
    )
    return Clawback(amount, split.from_pending, split.from_available, split.to_debt, posting_id)


def pending_of_source(session: Session, member_id: int, source_type: str, source_id: str) -> int:
    """What a source's hold still keeps pending (0 once released or cancelled)."""
    held = session.scalar(
        select(func.coalesce(func.sum(PointsHold.amount), 0)).where(
            PointsHold.member_id == member_id,
            PointsHold.source_type == source_type,
            PointsHold.source_id == source_id,
            PointsHold.status == "pending",
        )
    )
    return int(held or 0)


def earned_by_source(session: Session, member_id: int, source_type: str, source_id: str) -> int:
    return int(
        session.scalar(
            select(
                func.coalesce(
                    func.sum(PointsPosting.available_delta + PointsPosting.pending_delta), 0
                )
            ).where(
                PointsPosting.member_id == member_id,
                PointsPosting.kind == "earn",
                PointsPosting.source_type == source_type,
                PointsPosting.source_id == source_id,
            )
        )
        or 0
    )


# --------------------------------------------------------------------------- adjust


def adjust_points(
    session: Session, ctx: Ctx, member_id: int, amount: int, *, key: str, reason: str
) -> int:
    """Apply a signed manual adjustment (approval is checked by the caller)."""
    begin(session, ctx, member_id)
    replay = _replay(session, key, member_id, "adjust", {"available": amount})
    if replay:
        return replay.posting_id
    if amount > 0:
        return _credit(session, ctx, member_id, amount, "adjust", key, reason, None, None)
    return _debit(session, ctx, member_id, -amount, "adjust", key, reason)
