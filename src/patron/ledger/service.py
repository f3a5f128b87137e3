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
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import CursorResult, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.auth.principal import Principal
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import domain
from patron.ledger.domain import ExpiryPolicy, InsufficientPoints, LotView
from patron.ledger.models import (
    PointsAccount,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.program import service as program
from patron.webhooks import events

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


# --------------------------------------------------------------------------- low level


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> None:
    ins = (postgresql.insert if dialect(session) == "postgresql" else sqlite.insert)(model)
    session.execute(ins.values(**values).on_conflict_do_nothing())


def new_account(member_id: int, now: datetime) -> dict[str, Any]:
    """The row of a member's points account before their first posting."""
    return {
        "member_id": member_id,
        "available": 0,
        "pending": 0,
        "debt": 0,
        "lifetime_earned": 0,
        "lifetime_redeemed": 0,
        "lifetime_expired": 0,
        "version": 0,
        "updated_at": now,
    }


def lock_account(session: Session, member_id: int, now: datetime) -> None:
    """Take the member's ledger lock (creating the account row on first use)."""
    _insert_ignore(session, PointsAccount, new_account(member_id, now))
    session.execute(
        update(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .values(version=PointsAccount.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _bump(session: Session, member_id: int, **deltas: int) -> None:
    values = {name: getattr(PointsAccount, name) + delta for name, delta in deltas.items() if delta}
    if values:
        session.execute(
            update(PointsAccount)
            .where(PointsAccount.member_id == member_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def account_row(session: Session, member_id: int) -> PointsAccount | None:
    # populate_existing: Core updates above bypass the identity map
    return session.scalar(
        select(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .execution_options(populate_existing=True)
    )


def _post(
    session: Session,
    ctx: Ctx,
    member_id: int,
    kind: str,
    key: str,
    *,
    available: int = 0,
    pending: int = 0,
    debt: int = 0,
    reason: str = "",
    source_type: str | None = None,
    source_id: str | None = None,
    reverses_id: int | None = None,
    restores_id: int | None = None,
) -> int:
    posting_id = int(
        session.execute(
            insert(PointsPosting)
            .values(
                member_id=member_id,
                kind=kind,
                available_delta=available,
                pending_delta=pending,
                debt_delta=debt,
                reason=reason[:200],
                source_type=source_type,
                source_id=source_id,
                idempotency_key=key,
                reverses_id=reverses_id,
                restores_id=restores_id,
                actor=ctx.actor.label[:120],
                created_at=ctx.now,
            )
            .returning(PointsPosting.id)
        ).scalar_one()
    )
    # Every posting is announced, in its own transaction (see webhooks.events).
    events.points_posted(
        session,
        member_id,
        posting_id=posting_id,
        kind=kind,
        available_delta=available,
        pending_delta=pending,
        debt_delta=debt,
        source_type=source_type,
        source_id=source_id,
        reverses_id=reverses_id,
        now=ctx.now,
    )
    return posting_id


def _new_lot(
    session: Session,
    member_id: int,
    posting_id: int,
    amount: int,
    *,
    earned_at: datetime,
    expires_at: datetime | None,
    source_type: str | None,
    source_id: str | None,
) -> int:
    return int(
        session.execute(
            insert(PointsLot)
            .values(
                member_id=member_id,
                posting_id=posting_id,
                amount=amount,
                remaining=amount,
                earned_at=earned_at,
                expires_at=expires_at,
                source_type=source_type,
                source_id=source_id,
            )
            .returning(PointsLot.id)
        ).scalar_one()
    )


def _open_lots(session: Session, member_id: int) -> list[LotView]:
    """The member's lots that still hold points, locked in id order (fixed lock order)."""
    stmt = (
        select(PointsLot.id, PointsLot.remaining, PointsLot.expires_at)
        .where(PointsLot.member_id == member_id, PointsLot.remaining > 0)
        .order_by(PointsLot.id)
    )
    if dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    return [LotView(r.id, r.remaining, r.expires_at) for r in session.execute(stmt)]


def _consume(session: Session, member_id: int, posting_id: int, takes: list[domain.Take]) -> None:
    for take in takes:
        res = session.execute(
            update(PointsLot)
            .where(PointsLot.id == take.lot_id, PointsLot.remaining >= take.amount)
            .values(remaining=PointsLot.remaining - take.amount)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(res) != 1:  # pragma: no cover - the account lock makes this impossible
            raise RuntimeError(f"lot {take.lot_id} changed under the ledger lock")
    if takes:
        session.execute(
            insert(PointsAllocation),
            [
                {
                    "posting_id": posting_id,
                    "lot_id": t.lot_id,
                    "member_id": member_id,
                    "amount": t.amount,
                }
                for t in takes
            ],
        )


def consume(session: Session, member_id: int, posting_id: int, takes: list[domain.Take]) -> None:
    """Take points from lots for a posting (guarded updates, then its allocation rows)."""
    _consume(session, member_id, posting_id, takes)


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
    if _rowcount(res) != 1:
        return False
    posting_id = _post(
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
    _new_lot(
        session,
        hold.member_id,
        posting_id,
        hold.amount,
        earned_at=hold.earned_at,
        expires_at=domain.compute_expiry(hold.earned_at, ctx.settings.expiry, ctx.tz),
        source_type=hold.source_type,
        source_id=hold.source_id,
    )
    _bump(
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
    posting_id = _post(
        session,
        ctx,
        member_id,
        "expire",
        f"expire:{member_id}:{uuid.uuid4().hex}",
        available=-total,
        reason="points expired",
    )
    _consume(session, member_id, posting_id, [domain.Take(r.id, r.remaining) for r in due])
    _bump(session, member_id, available=-total, lifetime_expired=total)
    return total


def repay_debt(session: Session, ctx: Ctx, member_id: int) -> int:
    acc = account_row(session, member_id)
    if acc is None or acc.debt == 0 or acc.available == 0:
        return 0
    lots = _open_lots(session, member_id)
    live = sum(lot.remaining for lot in lots if domain.is_live(lot, ctx.now))
    amount = domain.debt_repayment(acc.debt, live)
    if not amount:
        return 0
    takes = domain.allocate(lots, amount, now=ctx.now)
    posting_id = _post(
        session,
        ctx,
        member_id,
        "repay",
        f"repay:{member_id}:{uuid.uuid4().hex}",
        available=-amount,
        debt=-amount,
        reason="points debt repaid from new points",
    )
    _consume(session, member_id, posting_id, takes)
    _bump(session, member_id, available=-amount, debt=-amount)
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
        posting_id = _post(
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
        _bump(session, member_id, pending=points)
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
    posting_id = _post(
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
    _new_lot(
        session,
        member_id,
        posting_id,
        points,
        earned_at=ctx.now,
        expires_at=domain.compute_expiry(ctx.now, ctx.settings.expiry, ctx.tz),
        source_type=source_type,
        source_id=source_id,
    )
    _bump(session, member_id, available=points, lifetime_earned=points)
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
    if _rowcount(res) != 1:
        acc = account_row(session, member_id)
        raise InsufficientPoints(points, acc.available if acc else 0)
    takes = domain.allocate(_open_lots(session, member_id), points, now=ctx.now)
    posting_id = _post(
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
    _consume(session, member_id, posting_id, takes)
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
    reversal_id = _post(
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
    _bump(session, member_id, available=amount, lifetime_redeemed=-amount)
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
    posting_id = _post(
        session,
        ctx,
        member_id,
        "clawback",
        f"clawback:{source_type}:{source_id}:{refund_id}",
        available=-split.from_available,
        pending=-split.from_pending,
        debt=split.to_debt,
        reason=f"refund {refund_id}",
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
            _open_lots(session, member_id), split.from_available, now=ctx.now, prefer=list(own)
        )
        _consume(session, member_id, posting_id, takes)
    _bump(
        session,
        member_id,
        available=-split.from_available,
        pending=-split.from_pending,
        debt=split.to_debt,
    )
    return Clawback(amount, split.from_pending, split.from_available, split.to_debt, posting_id)


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
