"""The ledger's row-level writes, under the member's lock: the account row (the lock itself),
postings with their events, lots and their allocations. ``ledger.service`` builds every use
case from these; batch writers (orders, imports) reuse the account row and the lock."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, CursorResult, exists, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.ledger import domain
from patron.ledger.domain import LotView
from patron.ledger.models import (
    PointsAccount,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.webhooks import events

if TYPE_CHECKING:  # the context is the service's; only its actor and clock are read here
    from patron.ledger.service import Ctx


def rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def insert_ignore(session: Session, model: Any, values: dict[str, Any]) -> None:
    ins = (postgresql.insert if dialect(session) == "postgresql" else sqlite.insert)(model)
    session.execute(ins.values(**values).on_conflict_do_nothing())


def settling_due(member_id: Any, now: Any) -> ColumnElement[bool]:
    """True when the member's ledger must be settled before a write (what ``service.begin``
    settles): a pending hold due for release or a lot past its expiry. Values or bound
    parameters, for the fast paths' one-statement fact reads."""
    return or_(
        exists().where(
            PointsHold.member_id == member_id,
            PointsHold.status == "pending",
            PointsHold.release_at <= now,
        ),
        exists().where(
            PointsLot.member_id == member_id, PointsLot.remaining > 0, PointsLot.expires_at <= now
        ),
    )


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
    insert_ignore(session, PointsAccount, new_account(member_id, now))
    session.execute(
        update(PointsAccount)
        .where(PointsAccount.member_id == member_id)
        .values(version=PointsAccount.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def bump(session: Session, member_id: int, **deltas: int) -> None:
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


def post(
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


def new_lot(
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


def open_lots(session: Session, member_id: int) -> list[LotView]:
    """The member's lots that still hold points, locked in id order (fixed lock order)."""
    stmt = (
        select(PointsLot.id, PointsLot.remaining, PointsLot.expires_at)
        .where(PointsLot.member_id == member_id, PointsLot.remaining > 0)
        .order_by(PointsLot.id)
    )
    if dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    return [LotView(r.id, r.remaining, r.expires_at) for r in session.execute(stmt)]


def consume(session: Session, member_id: int, posting_id: int, takes: list[domain.Take]) -> None:
    """Take points from lots for a posting (guarded updates, then its allocation rows)."""
    for take in takes:
        res = session.execute(
            update(PointsLot)
            .where(PointsLot.id == take.lot_id, PointsLot.remaining >= take.amount)
            .values(remaining=PointsLot.remaining - take.amount)
            .execution_options(synchronize_session=False)
        )
        if rowcount(res) != 1:  # pragma: no cover - the account lock makes this impossible
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
