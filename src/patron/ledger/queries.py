"""Read side of the points ledger: balances with their expiry schedule, history, allocations.

Reads take no locks; the API and the console call these, never SQL of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.ledger.models import (
    PointsAdjustment,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.ledger.service import account_row


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
