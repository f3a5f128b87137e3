"""``patron check``: reconcile every ledger invariant over the whole database.

Each query returns the offending rows only, so a clean ledger costs a few aggregate scans. The
queries are built once per mode (whole database, one member) with the member and the clock as
bound parameters: building SQLAlchemy expressions cost more than running them on small ledgers
(tests check one member after every step).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
    PointsRefund,
)

LIMIT = 100  # violations reported per check

# A check: its query (offending rows), how one row reads, and whether it needs the clock.
Check = tuple[Any, Callable[[Any], str], bool]


def run_check(
    session: Session, *, now: datetime | None = None, member_id: int | None = None
) -> list[str]:
    """All violations (empty = clean). ``member_id`` limits the checks to one member (tests)."""
    params = {"mid": member_id, "now": now}
    out: list[str] = []
    for stmt, describe, needs_now in _checks(member_id is not None):
        if needs_now and now is None:
            continue
        out.extend(describe(row) for row in session.execute(stmt, params))
    return out


@cache
def _checks(one_member: bool) -> tuple[Check, ...]:
    def only(col: Any) -> Any:
        return col == bindparam("mid") if one_member else literal(True)

    now = bindparam("now", type_=PointsLot.expires_at.type)
    a = PointsAccount
    z = func.coalesce
    checks: list[Check] = []

    # 2. cached balances = sums of postings, per bucket; lifetime counters = their sources
    p = (
        select(
            PointsPosting.member_id.label("mid"),
            func.sum(PointsPosting.available_delta).label("av"),
            func.sum(PointsPosting.pending_delta).label("pe"),
            func.sum(PointsPosting.debt_delta).label("de"),
            func.sum(
                case((PointsPosting.kind == "expire", -PointsPosting.available_delta), else_=0)
            ).label("ex"),
            func.sum(
                case(
                    (
                        PointsPosting.kind.in_(("redeem", "reversal")),
                        -PointsPosting.available_delta,
                    ),
                    else_=0,
                )
            ).label("rd"),
        )
        .where(only(PointsPosting.member_id))
        .group_by(PointsPosting.member_id)
        .subquery()
    )
    checks.append(
        (
            select(
                a.member_id,
                a.available,
                a.pending,
                a.debt,
                a.lifetime_expired,
                a.lifetime_redeemed,
                p.c.av,
                p.c.pe,
                p.c.de,
                p.c.ex,
                p.c.rd,
            )
            .outerjoin(p, p.c.mid == a.member_id)
            .where(
                only(a.member_id),
                or_(
                    a.available != z(p.c.av, 0),
                    a.pending != z(p.c.pe, 0),
                    a.debt != z(p.c.de, 0),
                    a.lifetime_expired != z(p.c.ex, 0),
                    a.lifetime_redeemed != z(p.c.rd, 0),
                ),
            )
            .limit(LIMIT),
            lambda row: (
                f"member {row.member_id}: cached balance (available={row.available}, "
                f"pending={row.pending}, debt={row.debt}, expired={row.lifetime_expired}, "
                f"redeemed={row.lifetime_redeemed}) != sum of postings (available={row.av}, "
                f"pending={row.pe}, debt={row.de}, expired={row.ex}, redeemed={row.rd})"
            ),
            False,
        )
    )
    checks.append(
        (
            select(PointsPosting.member_id)
            .where(only(PointsPosting.member_id))
            .where(~select(a.member_id).where(a.member_id == PointsPosting.member_id).exists())
            .distinct()
            .limit(LIMIT),
            lambda row: f"member {row[0]}: has postings but no cached balance",
            False,
        )
    )

    # 3. no negative balance (also CHECK constraints); no lot over-spent
    checks.append(
        (
            select(a.member_id, a.available, a.pending, a.debt)
            .where(only(a.member_id), or_(a.available < 0, a.pending < 0, a.debt < 0))
            .limit(LIMIT),
            lambda row: f"member {row.member_id}: negative bucket {tuple(row)[1:]}",
            False,
        )
    )
    checks.append(
        (
            select(PointsLot.id, PointsLot.member_id, PointsLot.amount, PointsLot.remaining)
            .where(only(PointsLot.member_id))
            .where(or_(PointsLot.remaining < 0, PointsLot.remaining > PointsLot.amount))
            .limit(LIMIT),
            lambda row: (
                f"lot {row.id} (member {row.member_id}): remaining {row.remaining} "
                f"outside 0..{row.amount}"
            ),
            False,
        )
    )

    # 4. lots: available = sum of lot remainders; remaining = amount - allocations
    lots = (
        select(
            PointsLot.member_id.label("mid"),
            func.sum(PointsLot.remaining).label("rem"),
            func.sum(PointsLot.amount).label("amt"),
        )
        .where(only(PointsLot.member_id))
        .group_by(PointsLot.member_id)
        .subquery()
    )
    checks.append(
        (
            select(a.member_id, a.available, a.lifetime_earned, lots.c.rem, lots.c.amt)
            .outerjoin(lots, lots.c.mid == a.member_id)
            .where(
                only(a.member_id),
                or_(a.available != z(lots.c.rem, 0), a.lifetime_earned != z(lots.c.amt, 0)),
            )
            .limit(LIMIT),
            lambda row: (
                f"member {row.member_id}: available {row.available} != sum of lot remainders "
                f"{row.rem or 0} or lifetime earned {row.lifetime_earned} != lots {row.amt or 0}"
            ),
            False,
        )
    )
    used = (
        select(PointsAllocation.lot_id.label("lot"), func.sum(PointsAllocation.amount).label("n"))
        .where(only(PointsAllocation.member_id))
        .group_by(PointsAllocation.lot_id)
        .subquery()
    )
    checks.append(
        (
            select(PointsLot.id, PointsLot.amount, PointsLot.remaining, used.c.n)
            .outerjoin(used, used.c.lot == PointsLot.id)
            .where(only(PointsLot.member_id))
            .where(PointsLot.remaining != PointsLot.amount - z(used.c.n, 0))
            .limit(LIMIT),
            lambda row: (
                f"lot {row.id}: remaining {row.remaining} != amount {row.amount} - "
                f"allocated {row.n or 0}"
            ),
            False,
        )
    )

    # 4. every posting's available delta = lots it created - lots it consumed (+ restored)
    created = (
        select(PointsLot.posting_id.label("pid"), func.sum(PointsLot.amount).label("n"))
        .where(only(PointsLot.member_id))
        .group_by(PointsLot.posting_id)
        .subquery()
    )
    taken = (
        select(
            PointsAllocation.posting_id.label("pid"), func.sum(PointsAllocation.amount).label("n")
        )
        .where(only(PointsAllocation.member_id))
        .group_by(PointsAllocation.posting_id)
        .subquery()
    )
    checks.append(
        (
            select(
                PointsPosting.id,
                PointsPosting.kind,
                PointsPosting.available_delta,
                created.c.n.label("made"),
                taken.c.n.label("took"),
            )
            .outerjoin(created, created.c.pid == PointsPosting.id)
            .outerjoin(taken, taken.c.pid == PointsPosting.id)
            .where(only(PointsPosting.member_id))
            .where(PointsPosting.available_delta != z(created.c.n, 0) - z(taken.c.n, 0))
            .limit(LIMIT),
            lambda row: (
                f"posting {row.id} ({row.kind}): available delta {row.available_delta} != "
                f"lots created {row.made or 0} - allocated {row.took or 0}"
            ),
            False,
        )
    )

    # 4/5. nothing but expiry consumed a lot at or after its expiry
    checks.append(
        (
            select(
                PointsAllocation.id, PointsAllocation.lot_id, PointsPosting.id, PointsPosting.kind
            )
            .join(PointsPosting, PointsPosting.id == PointsAllocation.posting_id)
            .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
            .where(only(PointsAllocation.member_id))
            .where(
                PointsAllocation.amount > 0,
                PointsPosting.kind != "expire",
                PointsLot.expires_at.is_not(None),
                PointsPosting.created_at >= PointsLot.expires_at,
            )
            .limit(LIMIT),
            lambda row: f"posting {row[2]} ({row[3]}) used lot {row[1]} after it expired",
            False,
        )
    )

    # 5. a lot written already past its expiry (imported history) expired in the same write
    earned_by = aliased(PointsPosting)
    checks.append(
        (
            select(PointsLot.id, PointsLot.member_id, PointsLot.remaining)
            .join(earned_by, earned_by.id == PointsLot.posting_id)
            .where(only(PointsLot.member_id))
            .where(
                PointsLot.remaining > 0,
                PointsLot.expires_at.is_not(None),
                earned_by.created_at >= PointsLot.expires_at,
            )
            .limit(LIMIT),
            lambda row: (
                f"lot {row.id} of member {row.member_id} was written already expired and still "
                f"holds {row.remaining} points"
            ),
            False,
        )
    )

    # 1/4. a posting is given back at most once in full: its cancellation (reverses_id) and
    # every partial return (restores_id, an order's points payment) together never exceed it
    back = union_all(
        select(
            PointsPosting.reverses_id.label("target"),
            (PointsPosting.available_delta + PointsPosting.pending_delta).label("n"),
        ).where(only(PointsPosting.member_id), PointsPosting.reverses_id.is_not(None)),
        select(
            PointsPosting.restores_id.label("target"),
            (PointsPosting.available_delta + PointsPosting.pending_delta).label("n"),
        ).where(only(PointsPosting.member_id), PointsPosting.restores_id.is_not(None)),
    ).subquery()
    given = select(back.c.target, func.sum(back.c.n).label("n")).group_by(back.c.target).subquery()
    target = aliased(PointsPosting)
    checks.append(
        (
            select(target.id, target.kind, target.member_id, target.available_delta, given.c.n)
            .join(given, given.c.target == target.id)
            .where(given.c.n > -target.available_delta)
            .limit(LIMIT),
            lambda row: (
                f"posting {row.id} ({row.kind}, member {row.member_id}) of "
                f"{-row.available_delta} points was given back {row.n} points "
                "(cancellation and returns together)"
            ),
            False,
        )
    )

    # 6. pending = open holds; a hold resolves once (released holds have one release posting)
    holds = (
        select(PointsHold.member_id.label("mid"), func.sum(PointsHold.amount).label("n"))
        .where(only(PointsHold.member_id), PointsHold.status == "pending")
        .group_by(PointsHold.member_id)
        .subquery()
    )
    checks.append(
        (
            select(a.member_id, a.pending, holds.c.n)
            .outerjoin(holds, holds.c.mid == a.member_id)
            .where(only(a.member_id), a.pending != z(holds.c.n, 0))
            .limit(LIMIT),
            lambda row: f"member {row.member_id}: pending {row.pending} != open holds {row.n or 0}",
            False,
        )
    )
    checks.append(
        (
            select(PointsPosting.idempotency_key, func.count())
            .where(only(PointsPosting.member_id), PointsPosting.kind == "release")
            .group_by(PointsPosting.idempotency_key)
            .having(func.count() > 1)
            .limit(LIMIT),
            lambda row: f"{row[0]} released more than once",
            False,
        )
    )

    # 7. debt only while nothing is spendable; refunds never claw back more than was earned
    checks.append(
        (
            select(a.member_id, a.debt, func.sum(PointsLot.remaining))
            .join(PointsLot, PointsLot.member_id == a.member_id)
            .where(
                only(a.member_id),
                a.debt > 0,
                PointsLot.remaining > 0,
                or_(PointsLot.expires_at.is_(None), PointsLot.expires_at > now),
            )
            .group_by(a.member_id, a.debt)
            .limit(LIMIT),
            lambda row: f"member {row[0]}: debt {row[1]} while {row[2]} points are spendable",
            True,
        )
    )
    earned = (
        select(
            PointsPosting.member_id.label("mid"),
            PointsPosting.source_type.label("st"),
            PointsPosting.source_id.label("sid"),
            func.sum(PointsPosting.available_delta + PointsPosting.pending_delta).label("n"),
        )
        .where(only(PointsPosting.member_id), PointsPosting.kind == "earn")
        .group_by(PointsPosting.member_id, PointsPosting.source_type, PointsPosting.source_id)
        .subquery()
    )
    checks.append(
        (
            select(
                PointsRefund.member_id,
                PointsRefund.source_type,
                PointsRefund.source_id,
                func.sum(PointsRefund.points_clawed),
                func.max(earned.c.n),
            )
            .outerjoin(
                earned,
                and_(
                    earned.c.mid == PointsRefund.member_id,
                    earned.c.st == PointsRefund.source_type,
                    earned.c.sid == PointsRefund.source_id,
                ),
            )
            .where(only(PointsRefund.member_id))
            .group_by(PointsRefund.member_id, PointsRefund.source_type, PointsRefund.source_id)
            .having(func.sum(PointsRefund.points_clawed) > func.coalesce(func.max(earned.c.n), 0))
            .limit(LIMIT),
            lambda row: (
                f"member {row[0]}: refunds of {row[1]}:{row[2]} clawed {row[3]} > "
                f"earned {row[4] or 0}"
            ),
            False,
        )
    )

    # 8. growth = sum of growth postings, never negative
    g = (
        select(
            GrowthPosting.member_id.label("mid"),
            func.sum(GrowthPosting.amount).label("n"),
            func.sum(case((GrowthPosting.kind == "earn", GrowthPosting.amount), else_=0)).label(
                "earned"
            ),
        )
        .where(only(GrowthPosting.member_id))
        .group_by(GrowthPosting.member_id)
        .subquery()
    )
    ga = GrowthAccount
    checks.append(
        (
            select(ga.member_id, ga.balance, ga.lifetime_earned, g.c.n, g.c.earned)
            .outerjoin(g, g.c.mid == ga.member_id)
            .where(
                only(ga.member_id),
                or_(
                    ga.balance != z(g.c.n, 0),
                    ga.balance < 0,
                    ga.lifetime_earned != z(g.c.earned, 0),
                ),
            )
            .limit(LIMIT),
            lambda row: (
                f"member {row.member_id}: growth {row.balance} (lifetime "
                f"{row.lifetime_earned}) != postings {row.n or 0} ({row.earned or 0}) "
                "or negative"
            ),
            False,
        )
    )
    return tuple(checks)
