"""The growth-value ledger (成长值): a separate, never-spent ledger that drives tiers.

Writes run under the member's points-account lock (``service.begin``), so the growth account
needs no lock of its own and the lock order stays: account row, then lots, then tier row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from patron.errors import Conflict
from patron.ledger import domain
from patron.ledger.models import GrowthAccount, GrowthPosting
from patron.ledger.service import Ctx
from patron.ledger.store import insert_ignore
from patron.webhooks import events


def _ensure(session: Session, member_id: int, now: datetime) -> None:
    insert_ignore(
        session,
        GrowthAccount,
        {"member_id": member_id, "balance": 0, "lifetime_earned": 0, "updated_at": now},
    )


def balance(session: Session, member_id: int) -> tuple[int, int]:
    row = session.execute(
        select(GrowthAccount.balance, GrowthAccount.lifetime_earned).where(
            GrowthAccount.member_id == member_id
        )
    ).first()
    return (int(row.balance), int(row.lifetime_earned)) if row else (0, 0)


def window_total(session: Session, member_id: int, start: datetime) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(GrowthPosting.amount), 0)).where(
                GrowthPosting.member_id == member_id, GrowthPosting.effective_at >= start
            )
        )
        or 0
    )


def _post(
    session: Session,
    ctx: Ctx,
    member_id: int,
    kind: str,
    amount: int,
    key: str,
    *,
    effective_at: datetime,
    reason: str = "",
    source_type: str | None = None,
    source_id: str | None = None,
) -> int:
    posting_id = int(
        session.execute(
            insert(GrowthPosting)
            .values(
                member_id=member_id,
                kind=kind,
                amount=amount,
                effective_at=effective_at,
                reason=reason[:200],
                source_type=source_type,
                source_id=source_id,
                idempotency_key=key,
                actor=ctx.actor.label[:120],
                created_at=ctx.now,
            )
            .returning(GrowthPosting.id)
        ).scalar_one()
    )
    session.execute(
        update(GrowthAccount)
        .where(GrowthAccount.member_id == member_id)
        .values(
            balance=GrowthAccount.balance + amount,
            lifetime_earned=GrowthAccount.lifetime_earned + (amount if kind == "earn" else 0),
            updated_at=ctx.now,
        )
        .execution_options(synchronize_session=False)
    )
    events.growth_posted(
        session,
        member_id,
        posting_id=posting_id,
        kind=kind,
        amount=amount,
        source_type=source_type,
        source_id=source_id,
        now=ctx.now,
    )
    return posting_id


def _existing(session: Session, key: str) -> GrowthPosting | None:
    return session.scalar(select(GrowthPosting).where(GrowthPosting.idempotency_key == key))


def earn(
    session: Session,
    ctx: Ctx,
    member_id: int,
    amount: int,
    *,
    source_type: str,
    source_id: str,
    reason: str = "",
) -> int:
    amount = domain.validate_points(amount, field="growth")
    key = f"earn:{source_type}:{source_id}"
    existing = _existing(session, key)
    if existing is not None:
        if existing.member_id != member_id or existing.amount != amount:
            raise Conflict("idempotency_conflict", f"{key!r} was already used for other growth")
        return existing.id
    _ensure(session, member_id, ctx.now)
    return _post(
        session,
        ctx,
        member_id,
        "earn",
        amount,
        key,
        effective_at=ctx.now,
        reason=reason,
        source_type=source_type,
        source_id=source_id,
    )


def earned_by_source(
    session: Session, member_id: int, source_type: str, source_id: str
) -> tuple[int, datetime | None]:
    row = session.execute(
        select(
            func.coalesce(func.sum(GrowthPosting.amount), 0), func.min(GrowthPosting.effective_at)
        ).where(
            GrowthPosting.member_id == member_id,
            GrowthPosting.kind == "earn",
            GrowthPosting.source_type == source_type,
            GrowthPosting.source_id == source_id,
        )
    ).one()
    return int(row[0]), row[1]


def clawback(
    session: Session,
    ctx: Ctx,
    member_id: int,
    amount: int,
    *,
    source_type: str,
    source_id: str,
    refund_id: str,
    effective_at: datetime | None,
) -> int:
    """Claw back growth of a refunded source, never below zero; dated like the earning so the
    same qualification window loses it."""
    _ensure(session, member_id, ctx.now)
    current, _ = balance(session, member_id)
    amount = min(amount, current)
    if amount <= 0:
        return 0
    _post(
        session,
        ctx,
        member_id,
        "clawback",
        -amount,
        f"clawback:{source_type}:{source_id}:{refund_id}",
        effective_at=effective_at or ctx.now,
        reason=f"refund {refund_id}",
        source_type=source_type,
        source_id=source_id,
    )
    return amount


def adjust(
    session: Session, ctx: Ctx, member_id: int, amount: int, *, key: str, reason: str
) -> int:
    existing = _existing(session, key)
    if existing is not None:
        return existing.id
    _ensure(session, member_id, ctx.now)
    if amount < 0:
        current, _ = balance(session, member_id)
        if current + amount < 0:
            raise Conflict(
                "insufficient_growth",
                f"cannot remove {-amount} growth; the member has {current}",
                details={"requested": -amount, "available": current},
            )
    return _post(
        session, ctx, member_id, "adjust", amount, key, effective_at=ctx.now, reason=reason
    )
