"""Scheduled ledger work: expiry, release of pending points, expiry reminders.

Each job is idempotent and commits per batch (one unit of work per batch), so it can run while
members spend and can be interrupted and re-run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from patron import context
from patron.auth.principal import Principal
from patron.db import Database, UTCDateTime
from patron.ledger import domain, service, store
from patron.ledger.models import (
    ExpiryNotice,
    PointsAccount,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.members.models import Member
from patron.webhooks import events

Progress = Callable[[int], None]


@dataclass
class ExpireReport:
    members: int = 0
    lots: int = 0
    points: int = 0
    batches: int = 0


def _due(now: datetime, lo: int, hi: int) -> Any:
    return and_(
        PointsLot.remaining > 0,
        PointsLot.expires_at <= now,
        PointsLot.member_id >= lo,
        PointsLot.member_id <= hi,
    )


def expire_batch(
    session: Session, now: datetime, after: int, limit: int, upto: int | None = None
) -> tuple[int, int, int, int] | None:
    """Expire the due lots of the next ``limit`` members (by id) after ``after`` (and up to
    ``upto``), set-based.

    Returns (last member id, members, lots, points) or None when nothing is due.
    """
    bound = [] if upto is None else [PointsLot.member_id <= upto]
    members = list(
        session.execute(
            select(PointsLot.member_id)
            .where(
                PointsLot.remaining > 0,
                PointsLot.expires_at <= now,
                PointsLot.member_id > after,
                *bound,
            )
            .group_by(PointsLot.member_id)
            .order_by(PointsLot.member_id)
            .limit(limit)
        ).scalars()
    )
    if not members:
        return None
    lo, hi = members[0], members[-1]
    # Take the ledger locks first, in member order (the same order everyone uses).
    lock = (
        select(PointsAccount.member_id)
        .where(PointsAccount.member_id.in_(members))
        .order_by(PointsAccount.member_id)
    )
    if store.dialect(session) == "postgresql":
        session.execute(lock.with_for_update()).all()
    else:  # SQLite: any write takes the database write lock before we read lots below
        session.execute(
            update(PointsAccount)
            .where(PointsAccount.member_id.in_(members))
            .values(version=PointsAccount.version + 1)
            .execution_options(synchronize_session=False)
        )
    run = uuid.uuid4().hex[:12]
    prefix = f"expire:{run}:"
    if store.dialect(session) == "postgresql":
        lots, points = _expire_locked_pg(session, now, lo, hi, prefix)
        return hi, len(members), lots, points
    key_of = literal(prefix) + cast(PointsLot.member_id, String)
    due = _due(now, lo, hi)
    # 1. one expire posting per member
    session.execute(
        insert(PointsPosting).from_select(
            [
                "member_id",
                "kind",
                "available_delta",
                "pending_delta",
                "debt_delta",
                "reason",
                "idempotency_key",
                "actor",
                "created_at",
            ],
            select(
                PointsLot.member_id,
                literal("expire"),
                -func.sum(PointsLot.remaining),
                literal(0),
                literal(0),
                literal("points expired"),
                key_of,
                literal("job:expire"),
                literal(now, UTCDateTime()),
            )
            .where(due)
            .group_by(PointsLot.member_id),
        )
    )
    # 2. the allocation rows: exactly the remaining part of each due lot
    posting = PointsPosting.__table__.alias("p")
    session.execute(
        insert(PointsAllocation).from_select(
            ["posting_id", "lot_id", "member_id", "amount"],
            select(posting.c.id, PointsLot.id, PointsLot.member_id, PointsLot.remaining)
            .join(
                posting,
                and_(
                    posting.c.member_id == PointsLot.member_id, posting.c.idempotency_key == key_of
                ),
            )
            .where(due),
        )
    )
    # 3. cached balances
    sums = (
        select(PointsLot.member_id.label("mid"), func.sum(PointsLot.remaining).label("total"))
        .where(due)
        .group_by(PointsLot.member_id)
        .subquery()
    )
    session.execute(
        update(PointsAccount)
        .where(PointsAccount.member_id == sums.c.mid)
        .values(
            available=PointsAccount.available - sums.c.total,
            lifetime_expired=PointsAccount.lifetime_expired + sums.c.total,
        )
        .execution_options(synchronize_session=False)
    )
    stats = session.execute(
        select(func.count(), func.coalesce(func.sum(PointsLot.remaining), 0)).where(due)
    ).one()
    # 4. the lots themselves
    session.execute(
        update(PointsLot)
        .where(due)
        .values(remaining=0)
        .execution_options(synchronize_session=False)
    )
    _announce(session, now, prefix, members)
    return hi, len(members), int(stats[0]), int(stats[1])


def _announce(session: Session, now: datetime, prefix: str, members: list[int]) -> None:
    """One ``points.expired`` event per expiry posting of the batch: one read of the batch's
    postings (by their keys) and one multi-row insert, not a statement per member."""
    posted = session.execute(
        select(
            PointsPosting.id,
            PointsPosting.member_id,
            PointsPosting.available_delta,
            Member.member_no,
        )
        .join(Member, Member.id == PointsPosting.member_id)
        .where(PointsPosting.idempotency_key.in_([f"{prefix}{m}" for m in members]))
        .order_by(PointsPosting.id)
    ).all()
    events.expiries_posted(session, [(r[0], r[1], r[2], r[3]) for r in posted], now)


# One statement does the whole batch on PostgreSQL: every part reads the same snapshot of the due
# lots (taken after the account locks above), and the rows move between the parts without
# round trips or a join on the postings' keys. The due lots of the batch's member range come
# from ``ix_points_lots_member_open`` (member, expiry); the ``points.expired`` events and their
# deliveries are written by the same statement, with the payload ``events.posting_payload``
# gives. Same effect as the portable path above.
_EXPIRE_PG = text(
    """
    WITH due AS (
        SELECT id, member_id, remaining FROM points_lots
        WHERE member_id BETWEEN :lo AND :hi AND remaining > 0 AND expires_at <= :now
    ), sums AS (
        SELECT member_id, sum(remaining) AS total FROM due GROUP BY member_id
    ), posted AS (
        INSERT INTO points_postings (member_id, kind, available_delta, pending_delta, debt_delta,
                                     reason, idempotency_key, actor, created_at)
        SELECT member_id, 'expire', -total, 0, 0, 'points expired',
               :prefix || member_id::text, 'job:expire', :now
        FROM sums
        RETURNING id, member_id, available_delta
    ), allocated AS (
        INSERT INTO points_allocations (posting_id, lot_id, member_id, amount)
        SELECT posted.id, due.id, due.member_id, due.remaining
        FROM due JOIN posted ON posted.member_id = due.member_id
    ), accounts AS (
        UPDATE points_accounts
        SET available = points_accounts.available - sums.total,
            lifetime_expired = points_accounts.lifetime_expired + sums.total
        FROM sums WHERE points_accounts.member_id = sums.member_id
    ), spent AS (
        UPDATE points_lots SET remaining = 0 FROM due WHERE points_lots.id = due.id
    ), announced AS (
        INSERT INTO webhook_events (event_type, member_no, payload, created_at)
        SELECT 'points.expired', members.member_no,
               jsonb_build_object(
                   'posting_id', posted.id, 'kind', 'expire',
                   'points', posted.available_delta,
                   'available_delta', posted.available_delta,
                   'pending_delta', 0, 'debt_delta', 0,
                   'source_type', NULL, 'source_id', NULL, 'reverses_id', NULL,
                   'occurred_at', CAST(:occurred AS text)),
               :now
        FROM posted JOIN members ON members.id = posted.member_id
        ORDER BY posted.id
        RETURNING id
    ), delivered AS (
        INSERT INTO webhook_deliveries (endpoint_id, event_id, status, attempts, next_attempt_at)
        SELECT endpoint, announced.id, 'pending', 0, :now
        FROM announced CROSS JOIN unnest(CAST(:endpoints AS bigint[])) AS endpoint
    )
    SELECT count(*), coalesce(sum(remaining), 0) FROM due
    """
)


def _expire_locked_pg(
    session: Session, now: datetime, lo: int, hi: int, prefix: str
) -> tuple[int, int]:
    row = session.execute(
        _EXPIRE_PG,
        {
            "now": now,
            "lo": lo,
            "hi": hi,
            "prefix": prefix,
            "occurred": now.isoformat(),
            "endpoints": events.subscribed(session, events.POINTS_EVENTS["expire"]),
        },
    ).one()
    return int(row[0]), int(row[1])


def run_expire(
    db: Database,
    now: datetime,
    *,
    batch_members: int = 5_000,
    workers: int = 1,
    progress: Progress | None = None,
) -> ExpireReport:
    """Expire every due lot. With ``workers`` > 1 the members' id range is split into that many
    contiguous parts run on their own connections: batches never share a member, so they take
    disjoint locks and the work spreads over the database's cores."""
    if workers <= 1:
        return _expire_range(db, now, 0, None, batch_members, progress)
    with db.unit_of_work() as session:
        lo, hi = session.execute(
            select(func.min(PointsLot.member_id), func.max(PointsLot.member_id)).where(
                PointsLot.remaining > 0, PointsLot.expires_at <= now
            )
        ).one()
    if lo is None:
        return ExpireReport()
    span = hi - lo + 1
    bounds = [lo - 1 + span * i // workers for i in range(workers + 1)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(
            pool.map(
                lambda i: _expire_range(db, now, bounds[i], bounds[i + 1], batch_members, progress),
                range(workers),
            )
        )
    report = ExpireReport()
    for part in parts:
        report.members += part.members
        report.lots += part.lots
        report.points += part.points
        report.batches += part.batches
    return report


def _expire_range(
    db: Database,
    now: datetime,
    after: int,
    upto: int | None,
    batch_members: int,
    progress: Progress | None,
) -> ExpireReport:
    report = ExpireReport()
    while True:
        with db.unit_of_work() as session:
            result = expire_batch(session, now, after, batch_members, upto)
        if result is None:
            return report
        after, members, lots, points = result
        report.members += members
        report.lots += lots
        report.points += points
        report.batches += 1
        if progress:
            progress(lots)


def run_release(
    db: Database,
    now: datetime,
    tz: ZoneInfo,
    *,
    batch_members: int = 500,
    progress: Progress | None = None,
) -> int:
    """Release pending points whose return window has passed (each hold exactly once)."""
    released = 0
    after = 0
    actor = Principal.system("job:release")
    while True:
        with db.unit_of_work() as session:
            members = list(
                session.execute(
                    select(PointsHold.member_id)
                    .where(
                        PointsHold.status == "pending",
                        PointsHold.release_at <= now,
                        PointsHold.member_id > after,
                    )
                    .group_by(PointsHold.member_id)
                    .order_by(PointsHold.member_id)
                    .limit(batch_members)
                ).scalars()
            )
            if not members:
                return released
            ctx = context.build(session, actor, now, tz)
            for member_id in members:
                before = _pending_count(session, member_id, now)
                service.begin(session, ctx, member_id)  # settle releases the due holds
                released += before
            after = members[-1]
        if progress:
            progress(len(members))


def _pending_count(session: Session, member_id: int, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                PointsHold.member_id == member_id,
                PointsHold.status == "pending",
                PointsHold.release_at <= now,
            )
        )
        or 0
    )


# --------------------------------------------------------------------------- reminders


@dataclass(frozen=True, slots=True)
class Expiring:
    member_id: int
    member_no: str
    points: int
    first_expiry: datetime


def expiring(
    session: Session, now: datetime, days: int, *, limit: int | None = None
) -> list[Expiring]:
    """Members with points lapsing in ``(now, now + days]``, soonest first."""
    stmt = (
        select(
            PointsLot.member_id,
            Member.member_no,
            func.sum(PointsLot.remaining),
            func.min(PointsLot.expires_at),
        )
        .join(Member, Member.id == PointsLot.member_id)
        .where(
            PointsLot.remaining > 0,
            PointsLot.expires_at > now,
            PointsLot.expires_at <= now + timedelta(days=days),
        )
        .group_by(PointsLot.member_id, Member.member_no)
        .order_by(func.min(PointsLot.expires_at), PointsLot.member_id)
    )
    if limit:
        stmt = stmt.limit(limit)
    # expires_at > now in the filter: never-expiring lots (NULL) are not in these rows.
    return [Expiring(r[0], r[1], int(r[2]), r[3]) for r in session.execute(stmt) if r[3]]


def record_reminders(session: Session, now: datetime, days: int, tz: ZoneInfo) -> int:
    """Record one expiry-notice event per member and expiry day (idempotent); returns new ones."""
    rows = session.execute(
        select(PointsLot.member_id, PointsLot.expires_at, func.sum(PointsLot.remaining))
        .where(
            PointsLot.remaining > 0,
            PointsLot.expires_at > now,
            PointsLot.expires_at <= now + timedelta(days=days),
        )
        .group_by(PointsLot.member_id, PointsLot.expires_at)
    ).all()
    per_day: dict[tuple[int, Any], int] = {}
    for member_id, expires_at, amount in rows:
        if expires_at is None:  # pragma: no cover - excluded by the filter
            continue
        day = domain.last_valid_day(expires_at, tz)
        per_day[(member_id, day)] = per_day.get((member_id, day), 0) + int(amount)
    created = 0
    for (member_id, day), amount in sorted(per_day.items()):
        exists = session.scalar(
            select(ExpiryNotice.id).where(
                ExpiryNotice.member_id == member_id, ExpiryNotice.expires_on == day
            )
        )
        if exists is None:
            session.add(
                ExpiryNotice(member_id=member_id, expires_on=day, amount=amount, created_at=now)
            )
            created += 1
    session.flush()
    return created
