"""Points liability and breakage (P9), aggregated in the database.

Outstanding points (live lots plus pending holds) are valued at the checkout rate of the pricing
settings. Breakage is learned from lots whose expiry date has passed: the share of their points
that expired instead of being spent. Definitions are in docs/analytics.md.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, and_, case, column, func, or_, select, values
from sqlalchemy.orm import Session

from patron.analytics import domain
from patron.analytics.domain import Ratio
from patron.db import UTCDateTime
from patron.ledger.models import PointsAllocation, PointsHold, PointsLot, PointsPosting
from patron.orders import service as orders_service
from patron.tiers import service as tiers_service
from patron.tiers.models import MemberTier

#: Months shown in the finance report, the current one included.
REPORT_MONTHS = 12
#: Age buckets of live lots by days since earned: (key, lower bound in days).
AGE_BUCKETS = (("0-90", 0), ("91-180", 91), ("181-365", 181), ("366+", 366))
#: Points earned but not yet spendable (open holds) have no lot and no age.
PENDING = "pending"

#: Why a part of the report is empty, in words (the console translates the same keys).
MISSING = {
    "no_points": "No points have been issued yet: there is no liability to report.",
    "no_matured": (
        "No points have reached their expiry date yet, so breakage cannot be estimated "
        "from history; the liability is shown without a breakage allowance."
    ),
}


@dataclass(frozen=True)
class Row:
    key: str
    points: int
    liability_fen: int
    #: a tier's names (tier rows only)
    name: str = ""
    name_zh: str = ""


@dataclass(frozen=True)
class Month:
    month: str  # YYYY-MM, business timezone
    earned: int
    redeemed: int
    expired: int
    #: the ledger balance (available + pending) at the end of the month
    outstanding: int
    liability_fen: int


@dataclass(frozen=True)
class Liability:
    as_of: datetime
    points_per_unit: int
    unit_fen: int
    outstanding: int
    pending: int
    liability_fen: int
    #: expired points / points of lots past their expiry date
    breakage: Ratio
    expected_breakage_fen: int
    net_liability_fen: int
    by_tier: list[Row]
    by_age: list[Row]
    months: list[Month]
    missing: list[str] = field(default_factory=list)


def _sum(expr: Any) -> Any:
    return func.coalesce(func.sum(expr), 0)


def _month_starts(today: date, n: int) -> list[date]:
    first = today.replace(day=1)
    return [domain.months_back(first, k) for k in range(n - 1, -1, -1)]


def _months(session: Session, now: datetime, tz: ZoneInfo, value: Any) -> list[Month]:
    today = now.astimezone(tz).date()
    starts = _month_starts(today, REPORT_MONTHS)
    bounds = [*starts, domain.months_back(starts[-1], -1)]
    rows = [
        (i, domain.day_start_utc(lo, tz), domain.day_start_utc(hi, tz))
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]
    table = values(
        column("i", Integer), column("lo", UTCDateTime()), column("hi", UTCDateTime()), name="m"
    ).data(rows)
    m = table.cte("m")
    delta = PointsPosting.available_delta + PointsPosting.pending_delta
    kind = PointsPosting.kind
    stamp = PointsPosting.created_at
    earned = (kind == "earn") | and_(kind == "adjust", delta > 0)
    per_month = session.execute(
        select(
            m.c.i,
            _sum(case((earned, delta), else_=0)),
            _sum(case((kind.in_(("redeem", "reversal")), -delta), else_=0)),
            _sum(case((kind == "expire", -delta), else_=0)),
            _sum(delta),
        )
        .select_from(m)
        .join(PointsPosting, and_(stamp >= m.c.lo, stamp < m.c.hi))
        .group_by(m.c.i)
    ).all()
    opening = int(session.scalar(select(_sum(delta)).where(stamp < rows[0][1])) or 0)
    got = {int(r[0]): [int(x or 0) for x in r[1:]] for r in per_month}
    out: list[Month] = []
    balance = opening
    for i, start in enumerate(starts):
        e, r, x, net = got.get(i, [0, 0, 0, 0])
        balance += net
        out.append(Month(start.strftime("%Y-%m"), e, r, x, balance, value(balance)))
    return out


def liability(session: Session, *, now: datetime, tz: ZoneInfo) -> Liability:
    """Liability as of ``now``: totals, by tier, by lot age, the breakage rate and the monthly
    finance report (earned, redeemed, expired, outstanding, liability)."""
    pricing = orders_service.pricing_settings(session)

    def value(points: int) -> int:
        return domain.points_value_fen(points, pricing.points_per_unit, pricing.unit_fen)

    live = and_(
        PointsLot.remaining > 0, or_(PointsLot.expires_at.is_(None), PointsLot.expires_at > now)
    )
    ladder = tiers_service.get_ladder(session)
    base = ladder.base.code
    tier = func.coalesce(MemberTier.tier_code, base)
    holds_pending = PointsHold.status == "pending"

    # Live lots and open holds per member's current tier (two grouped scans, tiers merged).
    by_tier: dict[str, int] = {}
    for entity, amount, where in (
        (PointsLot, PointsLot.remaining, live),
        (PointsHold, PointsHold.amount, holds_pending),
    ):
        for code, n in session.execute(
            select(tier, _sum(amount))
            .select_from(entity)
            .outerjoin(MemberTier, MemberTier.member_id == entity.member_id)
            .where(where)
            .group_by(tier)
        ):
            by_tier[str(code)] = by_tier.get(str(code), 0) + int(n)

    age = case(
        *(
            (PointsLot.earned_at <= now - timedelta(days=lower), key)
            for key, lower in reversed(AGE_BUCKETS[1:])
        ),
        else_=AGE_BUCKETS[0][0],
    ).cast(String)
    aged = {
        str(k): int(n)
        for k, n in session.execute(
            select(age, _sum(PointsLot.remaining)).where(live).group_by(age)
        )
    }
    pending = int(session.scalar(select(_sum(PointsHold.amount)).where(holds_pending)) or 0)
    outstanding = sum(aged.values()) + pending

    # Breakage: of the points in lots whose expiry date has passed, the share that expired
    # (by the expiry job, or still in the lot waiting for it) rather than being spent.
    matured = and_(PointsLot.expires_at.is_not(None), PointsLot.expires_at <= now)
    lots = session.execute(
        select(_sum(PointsLot.amount), _sum(PointsLot.remaining)).where(matured)
    ).one()
    expired_alloc = int(
        session.scalar(
            select(_sum(PointsAllocation.amount))
            .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
            .join(PointsPosting, PointsPosting.id == PointsAllocation.posting_id)
            .where(matured, PointsPosting.kind == "expire")
        )
        or 0
    )
    breakage = Ratio(expired_alloc + int(lots[1]), int(lots[0]))
    total_fen = value(outstanding)
    expected = (
        domain.div_round(total_fen * breakage.numerator, breakage.denominator)
        if breakage.denominator
        else 0
    )

    months = _months(session, now, tz, value)
    missing: list[str] = []
    if session.scalar(select(PointsPosting.id).limit(1)) is None:
        missing.append("no_points")
    if breakage.denominator == 0:
        missing.append("no_matured")

    known = [t.code for t in ladder.tiers]
    tier_rows = []
    for code in known + sorted(set(by_tier) - set(known)):
        t = ladder.get(code) if code in known else None
        n = by_tier.get(code, 0)
        name = t.name if t else code
        tier_rows.append(Row(code, n, value(n), name, (t.name_zh or name) if t else code))
    age_rows = [Row(k, aged.get(k, 0), value(aged.get(k, 0))) for k, _ in AGE_BUCKETS]
    age_rows.append(Row(PENDING, pending, value(pending)))
    return Liability(
        as_of=now,
        points_per_unit=pricing.points_per_unit,
        unit_fen=pricing.unit_fen,
        outstanding=outstanding,
        pending=pending,
        liability_fen=total_fen,
        breakage=breakage,
        expected_breakage_fen=expected,
        net_liability_fen=total_fen - expected,
        by_tier=tier_rows,
        by_age=age_rows,
        months=months,
        missing=missing,
    )
