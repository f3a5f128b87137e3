"""Read side of the points ledger: balances with their expiry schedule, history, allocations.

Reads take no locks; the API and the console call these, never SQL of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, false, func, select
from sqlalchemy.orm import Session

from patron.ledger.models import (
    GrowthAccount,
    PointsAccount,
    PointsAdjustment,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.ledger.store import account_row


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    pending: int
    debt: int
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_expired: int
    #: (last valid business day, points) — lots still spendable, soonest first
    expiry_schedule: list[tuple[datetime, int]]
    #: (release time, points) — pending holds
    pending_schedule: list[tuple[datetime, int]]
    #: points past their expiry that the next write or expiry run will remove
    expired_unprocessed: int


def balance(session: Session, member_id: int, now: datetime) -> Balance:
    acc = account_row(session, member_id)
    lots = session.execute(
        select(PointsLot.expires_at, func.sum(PointsLot.remaining))
        .where(PointsLot.member_id == member_id, PointsLot.remaining > 0)
        .group_by(PointsLot.expires_at)
        .order_by(PointsLot.expires_at)
    ).all()
    schedule: list[tuple[datetime, int]] = []
    stale = 0
    for expires_at, amount in lots:
        if expires_at is not None and expires_at <= now:
            stale += int(amount)
        elif expires_at is not None:
            schedule.append((expires_at, int(amount)))
    holds = session.execute(
        select(PointsHold.release_at, PointsHold.amount)
        .where(PointsHold.member_id == member_id, PointsHold.status == "pending")
        .order_by(PointsHold.release_at)
    ).all()
    if acc is None:
        return Balance(0, 0, 0, 0, 0, 0, [], [], 0)
    return Balance(
        available=acc.available - stale,
        pending=acc.pending,
        debt=acc.debt,
        lifetime_earned=acc.lifetime_earned,
        lifetime_redeemed=acc.lifetime_redeemed,
        lifetime_expired=acc.lifetime_expired,
        expiry_schedule=schedule,
        pending_schedule=[(r.release_at, int(r.amount)) for r in holds],
        expired_unprocessed=stale,
    )


def spendable(session: Session, member_id: int, now: datetime) -> int:
    """``balance(...).available`` in one statement: the account's available points less its
    lots already past their expiry (which the next write or expiry run removes). For the
    checkout, which needs nothing else of the balance."""
    stale = (
        select(func.coalesce(func.sum(PointsLot.remaining), 0))
        .where(
            PointsLot.member_id == member_id,
            PointsLot.remaining > 0,
            PointsLot.expires_at <= now,
        )
        .scalar_subquery()
    )
    value = session.scalar(
        select(PointsAccount.available - stale).where(PointsAccount.member_id == member_id)
    )
    return int(value or 0)


def held_now(
    session: Session, member_ids: Sequence[int], now: datetime
) -> dict[tuple[int, str], int]:
    """(member, "points" | "growth") → what each member can give up now: spendable points (as
    :func:`balance` counts them, less lots past their expiry) and growth. Three statements
    whatever the number of members, for lists such as the approval queue."""
    ids = sorted(set(member_ids))
    out: dict[tuple[int, str], int] = {}
    if not ids:
        return out
    for mid, available in session.execute(
        select(PointsAccount.member_id, PointsAccount.available).where(
            PointsAccount.member_id.in_(ids)
        )
    ):
        out[(mid, "points")] = int(available)
    for mid, stale in session.execute(
        select(PointsLot.member_id, func.sum(PointsLot.remaining))
        .where(
            PointsLot.member_id.in_(ids),
            PointsLot.remaining > 0,
            PointsLot.expires_at <= now,
        )
        .group_by(PointsLot.member_id)
    ):
        out[(mid, "points")] = out.get((mid, "points"), 0) - int(stale or 0)
    for mid, growth in session.execute(
        select(GrowthAccount.member_id, GrowthAccount.balance).where(
            GrowthAccount.member_id.in_(ids)
        )
    ):
        out[(mid, "growth")] = int(growth)
    for mid in ids:
        out.setdefault((mid, "points"), 0)
        out.setdefault((mid, "growth"), 0)
    return out


def history(
    session: Session, member_id: int, *, limit: int, offset: int
) -> tuple[list[PointsPosting], int]:
    total = session.scalar(
        select(func.count()).select_from(PointsPosting).where(PointsPosting.member_id == member_id)
    )
    rows = session.scalars(
        select(PointsPosting)
        .where(PointsPosting.member_id == member_id)
        .order_by(PointsPosting.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


def allocations_of(session: Session, posting_ids: list[int]) -> dict[int, list[tuple[int, int]]]:
    out: dict[int, list[tuple[int, int]]] = {}
    if not posting_ids:
        return out
    for row in session.execute(
        select(PointsAllocation.posting_id, PointsAllocation.lot_id, PointsAllocation.amount)
        .where(PointsAllocation.posting_id.in_(posting_ids))
        .order_by(PointsAllocation.id)
    ):
        out.setdefault(row.posting_id, []).append((row.lot_id, row.amount))
    return out


def adjustments(
    session: Session,
    *,
    status: str | None = None,
    member_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[PointsAdjustment], int]:
    """Manual adjustments, oldest first when listing a status (an approval queue), newest first
    for one member (a history)."""
    conds = []
    if status:
        conds.append(PointsAdjustment.status == status)
    if member_id is not None:
        conds.append(PointsAdjustment.member_id == member_id)
    order = PointsAdjustment.id.desc() if member_id is not None else PointsAdjustment.id
    total = session.scalar(select(func.count()).select_from(PointsAdjustment).where(*conds))
    rows = session.scalars(
        select(PointsAdjustment).where(*conds).order_by(order).limit(limit).offset(offset)
    )
    return list(rows), int(total or 0)


def adjustments_by_id(session: Session, ids: list[int]) -> list[PointsAdjustment]:
    if not ids:
        return []
    return list(
        session.scalars(
            select(PointsAdjustment)
            .where(PointsAdjustment.id.in_(ids))
            .order_by(PointsAdjustment.id)
        )
    )


# --------------------------------------------------------------------------- program totals


@dataclass(frozen=True, slots=True)
class Outstanding:
    """Points members hold, over all members: spendable (lots past expiry that the expiry job
    has not processed yet left out, as on the dashboard) and pending (return window)."""

    available: int
    pending: int

    @property
    def total(self) -> int:
        return self.available + self.pending


def outstanding(session: Session, now: datetime) -> Outstanding:
    acc = session.execute(
        select(
            func.coalesce(func.sum(PointsAccount.available), 0),
            func.coalesce(func.sum(PointsAccount.pending), 0),
        )
    ).one()
    stale = session.scalar(
        select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
            PointsLot.remaining > 0, PointsLot.expires_at <= now
        )
    )
    return Outstanding(available=max(int(acc[0]) - int(stale or 0), 0), pending=int(acc[1]))


@dataclass(frozen=True, slots=True)
class PendingExpiry:
    """Pending points (not yet released), and of them those released by a horizon that would
    expire by it, for each cut-off of ``earned_before`` asked for."""

    pending: int
    expiring: tuple[int, ...]


def lots_expiring(session: Session, now: datetime, by: datetime) -> int:
    """Points of lots that expire after ``now`` and by ``by`` (their dates are fixed)."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PointsLot.remaining), 0)).where(
                PointsLot.remaining > 0, PointsLot.expires_at > now, PointsLot.expires_at <= by
            )
        )
        or 0
    )


def pending_expiring(
    session: Session, by: datetime, cutoffs: Sequence[datetime | None]
) -> PendingExpiry:
    """Pending holds get their expiry date when released (from the day they were earned, under
    the policy in force then): those released by ``by`` and earned before a cut-off expire by
    ``by`` under the policy the cut-off comes from (None: a policy under which nothing expires)."""
    pending = PointsHold.status == "pending"
    due = and_(pending, PointsHold.release_at <= by)
    columns = [func.coalesce(func.sum(case((pending, PointsHold.amount), else_=0)), 0)]
    for cutoff in cutoffs:
        hit = and_(due, PointsHold.earned_at < cutoff) if cutoff is not None else false()
        columns.append(func.coalesce(func.sum(case((hit, PointsHold.amount), else_=0)), 0))
    row = session.execute(select(*columns).where(pending)).one()
    return PendingExpiry(pending=int(row[0]), expiring=tuple(int(v) for v in row[1:]))
