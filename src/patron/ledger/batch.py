"""Credit points to many members at once in a fixed number of statements.

``earn_many`` leaves the ledger exactly as ``flows.earn`` called once per credit would (same
postings, lots, allocations, balances, events and audit records; only the random part of an
expiry or repayment posting's key differs), for immediate credits with no growth — what jobs
give: recall packs, journey points. Per chunk of credits it reads the replay keys, creates and
locks the accounts (in member order, as every ledger write does), reads the due holds and the
lots it may touch, plans in pure code (``domain.plan_batch_earn``) and writes each table with
one multi-row statement, whatever the number of members.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.ledger import domain, service, store
from patron.ledger.domain import BatchCredit, BatchMember, DueHold, LotView, PriorPosting
from patron.ledger.models import (
    PointsAccount,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.ledger.service import Ctx, PostingResult
from patron.members.models import Member
from patron.webhooks import events

#: credits per round of statements (keeps every IN list and multi-row VALUES within limits)
CHUNK = 1_000

__all__ = ["BatchCredit", "earn_many"]


def earn_many(session: Session, ctx: Ctx, credits: Sequence[BatchCredit]) -> list[PostingResult]:
    """Credit each of ``credits`` (available at once, no growth); one result per credit, in
    order. Idempotent by source per credit, exactly as ``flows.earn``."""
    for c in credits:
        domain.validate_points(c.points)
    out: list[PostingResult] = []
    for start in range(0, len(credits), CHUNK):
        out.extend(_earn_chunk(session, ctx, credits[start : start + CHUNK]))
    return out


def _earn_chunk(session: Session, ctx: Ctx, credits: Sequence[BatchCredit]) -> list[PostingResult]:
    members = sorted({c.member_id for c in credits})
    accounts = _lock(session, ctx, members)
    prior = {
        row.idempotency_key: PriorPosting(
            int(row.id), int(row.member_id), row.kind, int(row.available_delta)
        )
        for row in session.execute(
            select(
                PointsPosting.id,
                PointsPosting.member_id,
                PointsPosting.kind,
                PointsPosting.available_delta,
                PointsPosting.idempotency_key,
            ).where(PointsPosting.idempotency_key.in_(sorted({c.key for c in credits})))
        )
    }
    states = {
        m: BatchMember(available, debt, settled=service.is_begun(session, m, ctx.now))
        for m, (available, debt, _) in accounts.items()
    }
    _load(session, ctx, states)
    plan = domain.plan_batch_earn(
        credits,
        states,
        prior,
        now=ctx.now,
        policy=ctx.settings.expiry,
        tz=ctx.tz,
        new_key=lambda kind, mid: f"{kind}:{mid}:{uuid.uuid4().hex}",
    )
    posting_ids = _write(session, ctx, plan, {m: no for m, (_, _, no) in accounts.items()})
    service.mark_begun(session, members, ctx.now)
    return [
        PostingResult(posting_ids[ref - domain.NEW_LOT] if ref >= domain.NEW_LOT else ref, replayed)
        for ref, replayed in plan.results
    ]


def _lock(session: Session, ctx: Ctx, members: list[int]) -> dict[int, tuple[int, int, str]]:
    """Create the missing accounts and take the members' ledger locks in member order, as
    ``store.lock_account`` does one by one; (available, debt, member number) per member."""
    on_pg = store.dialect(session) == "postgresql"
    ins = (postgresql.insert if on_pg else sqlite.insert)(PointsAccount)
    session.execute(
        ins.values([store.new_account(m, ctx.now) for m in members]).on_conflict_do_nothing()
    )
    target: Any = PointsAccount.member_id.in_(members)
    if on_pg:  # the row locks in member order (the order every ledger writer takes them in)
        locked = (
            select(PointsAccount.member_id)
            .where(PointsAccount.member_id.in_(members))
            .order_by(PointsAccount.member_id)
            .with_for_update()
            .scalar_subquery()
        )
        target = PointsAccount.member_id.in_(locked)
    member_no = select(Member.member_no).where(Member.id == PointsAccount.member_id)
    rows = session.execute(
        update(PointsAccount)
        .where(target)
        .values(version=PointsAccount.version + 1, updated_at=ctx.now)
        .returning(
            PointsAccount.member_id,
            PointsAccount.available,
            PointsAccount.debt,
            member_no.scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    ).all()
    return {int(m): (int(a), int(d), str(no)) for m, a, d, no in rows}


def _load(session: Session, ctx: Ctx, states: dict[int, BatchMember]) -> None:
    """The due holds of the members to settle, and the open lots the plan may use: the due
    ones, and all of a member who owes debt (locked on PostgreSQL, as the one-by-one path)."""
    settle = sorted(m for m, s in states.items() if not s.settled)
    if settle:
        for h in session.execute(
            select(
                PointsHold.id,
                PointsHold.member_id,
                PointsHold.amount,
                PointsHold.earned_at,
                PointsHold.source_type,
                PointsHold.source_id,
            )
            .where(
                PointsHold.member_id.in_(settle),
                PointsHold.status == "pending",
                PointsHold.release_at <= ctx.now,
            )
            .order_by(PointsHold.id)
        ):
            states[h.member_id].holds.append(
                DueHold(h.id, h.member_id, h.amount, h.earned_at, h.source_type, h.source_id)
            )
    owing = sorted(m for m, s in states.items() if s.debt)
    stmt = (
        select(PointsLot.id, PointsLot.member_id, PointsLot.remaining, PointsLot.expires_at)
        .where(
            PointsLot.member_id.in_(sorted(states)),
            PointsLot.remaining > 0,
            or_(PointsLot.expires_at <= ctx.now, PointsLot.member_id.in_(owing)),
        )
        .order_by(PointsLot.id)
    )
    if store.dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    for lot in session.execute(stmt):
        states[lot.member_id].lots.append(LotView(lot.id, lot.remaining, lot.expires_at))


def _write(
    session: Session, ctx: Ctx, plan: domain.BatchPlan, numbers: dict[int, str]
) -> list[int]:
    """Write the plan; the ids of its postings, in plan order."""
    if not plan.postings:
        return []
    actor = ctx.actor.label[:120]
    rows = [
        {
            "member_id": p.member_id,
            "kind": p.kind,
            "available_delta": p.available,
            "pending_delta": p.pending,
            "debt_delta": p.debt,
            "reason": p.reason[:200],
            "source_type": p.source_type,
            "source_id": p.source_id,
            "idempotency_key": p.key,
            "reverses_id": None,
            "restores_id": None,
            "actor": actor,
            "created_at": ctx.now,
        }
        for p in plan.postings
    ]
    # matched back by their unique keys: the rows may return in any order (which keeps the
    # multi-row VALUES form on SQLite)
    by_key = {
        str(k): int(i)
        for k, i in session.execute(
            insert(PointsPosting)
            .returning(PointsPosting.idempotency_key, PointsPosting.id)
            .execution_options(render_nulls=True),  # one statement, NULLs or not
            rows,
        )
    }
    posting_ids = [by_key[p.key] for p in plan.postings]
    lot_ids: list[int] = []
    if plan.lots:
        by_posting = {
            int(p): int(i)
            for p, i in session.execute(
                insert(PointsLot)
                .returning(PointsLot.posting_id, PointsLot.id)
                .execution_options(render_nulls=True),
                [
                    {
                        "member_id": lot.member_id,
                        "posting_id": posting_ids[lot.posting],
                        "amount": lot.amount,
                        "remaining": lot.remaining,
                        "earned_at": lot.earned_at,
                        "expires_at": lot.expires_at,
                        "source_type": lot.source_type,
                        "source_id": lot.source_id,
                    }
                    for lot in plan.lots
                ],
            )
        }
        lot_ids = [by_posting[posting_ids[lot.posting]] for lot in plan.lots]
    if plan.allocations:
        session.execute(
            insert(PointsAllocation),
            [
                {
                    "posting_id": posting_ids[a.posting],
                    "lot_id": lot_ids[a.lot_id - domain.NEW_LOT]
                    if a.lot_id >= domain.NEW_LOT
                    else a.lot_id,
                    "member_id": a.member_id,
                    "amount": a.amount,
                }
                for a in plan.allocations
            ],
        )
    if plan.taken:
        _take_lots(session, plan.taken)
    if plan.released:
        _release_holds(session, ctx, plan.released)
    _bump_accounts(session, plan.deltas)
    events.emit_many(
        session,
        [
            events.NewEvent(
                events.POINTS_EVENTS[p.kind],
                events.posting_payload(
                    posting_id=pid,
                    kind=p.kind,
                    available_delta=p.available,
                    pending_delta=p.pending,
                    debt_delta=p.debt,
                    source_type=p.source_type,
                    source_id=p.source_id,
                    occurred_at=ctx.now,
                ),
                member_id=p.member_id,
                member_no=numbers[p.member_id],
            )
            for p, pid in zip(plan.postings, posting_ids, strict=True)
        ],
        ctx.now,
    )
    audit.record_many(
        session,
        ctx.actor,
        [
            (
                "points.earn",
                "member",
                str(plan.postings[posting].member_id),
                {
                    "posting_id": posting_ids[posting],
                    "points": plan.postings[posting].available,
                    "growth": 0,
                    "source": f"{plan.postings[posting].source_type}:"
                    f"{plan.postings[posting].source_id}",
                    "pending_days": 0,
                },
                ctx.now,
            )
            for _, posting in plan.earned
        ],
    )
    return posting_ids


def _take_lots(session: Session, taken: dict[int, int]) -> None:
    """Lower the lots the plan consumed: one executemany (the account locks make the guard
    hold, as on the one-by-one path)."""
    lots = cast(Table, PointsLot.__table__)
    session.execute(
        update(lots)
        .where(lots.c.id == bindparam("b_lot"), lots.c.remaining >= bindparam("b_take"))
        .values(remaining=lots.c.remaining - bindparam("b_take")),
        [{"b_lot": lot_id, "b_take": amount} for lot_id, amount in sorted(taken.items())],
    )


def _release_holds(session: Session, ctx: Ctx, hold_ids: list[int]) -> None:
    session.execute(
        update(PointsHold)
        .where(PointsHold.id.in_(hold_ids), PointsHold.status == "pending")
        .values(status="released", resolved_at=ctx.now)
        .execution_options(synchronize_session=False)
    )


_COLUMNS = ("available", "pending", "debt", "lifetime_earned", "lifetime_expired")


def _bump_accounts(session: Session, deltas: dict[int, dict[str, int]]) -> None:
    """Every member's balance deltas in one executemany."""
    rows = [
        {"b_member": m, **{f"b_{c}": d.get(c, 0) for c in _COLUMNS}}
        for m, d in sorted(deltas.items())
        if any(d.values())
    ]
    if not rows:
        return
    accounts = cast(Table, PointsAccount.__table__)
    session.execute(
        update(accounts)
        .where(accounts.c.member_id == bindparam("b_member"))
        .values({c: accounts.c[c] + bindparam(f"b_{c}") for c in _COLUMNS}),
        rows,
    )
