"""The KPI dashboard, aggregated in the database (a few set-based queries, no per-member loops).

Definitions are in docs/analytics.md. Ranges are business days in the business timezone; order
figures use an order's ``business_date``; member and points figures turn the range into UTC
instants. Snapshot figures (tier distribution, outstanding points) are as of now.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, column, func, select, values
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from patron.analytics import domain
from patron.analytics.domain import Ratio
from patron.analytics.schemas import (
    Dashboard,
    MemberKpis,
    PeriodFigures,
    PointsKpis,
    SalesKpis,
    TierRow,
    Trend,
)
from patron.analytics.scope import EVERYTHING, Scope
from patron.db import UTCDateTime
from patron.ledger.models import PointsAccount, PointsLot, PointsPosting
from patron.members.models import Member
from patron.orders import service as orders_service
from patron.orders.models import Order
from patron.tiers import service as tiers_service
from patron.tiers.domain import TierLadder
from patron.tiers.models import MemberTier

#: Members whose personal data was erased are no longer counted as members.
ERASED = "erased"
#: A fully returned order is not a purchase; a partly returned one counts at its net amount.
RETURNED = "returned"


def _sum(expr: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(expr), 0)


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[Any]:
    return _sum(case((cond, 1), else_=0))


def _bucket_table(buckets: domain.Buckets, end: date, tz: ZoneInfo) -> Any:
    """The trend buckets as a VALUES table (index, UTC start, UTC end): a range join on an
    indexed timestamp groups rows by business day exactly, in any timezone, on any database,
    without a date function evaluated per row."""
    bounds = [*buckets.starts, end + timedelta(days=1)]
    rows = [
        (i, domain.day_start_utc(lo, tz), domain.day_start_utc(hi, tz))
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]
    table = values(
        column("i", Integer), column("lo", UTCDateTime()), column("hi", UTCDateTime()), name="b"
    ).data(rows)
    return table.cte("b")


def _per_bucket(
    session: Session,
    buckets: Any,
    size: int,
    entity: Any,
    stamp: Any,
    sums: list[ColumnElement[Any]],
    where: ColumnElement[bool] | None = None,
) -> list[list[int]]:
    """For each expression of ``sums``: its total per bucket, over rows of ``entity`` whose
    ``stamp`` falls in the bucket."""
    on = and_(stamp >= buckets.c.lo, stamp < buckets.c.hi)
    if where is not None:
        on = and_(on, where)
    rows = session.execute(
        select(buckets.c.i, *sums).select_from(buckets).join(entity, on).group_by(buckets.c.i)
    ).all()
    out = [[0] * size for _ in sums]
    for row in rows:
        for k in range(len(sums)):
            out[k][int(row[0])] = int(row[k + 1] or 0)
    return out


def _members(
    session: Session,
    start: date,
    end: date,
    tz: ZoneInfo,
    bucket_table: Any,
    size: int,
    active: int,
    scope: Scope,
) -> tuple[MemberKpis, list[int]]:
    _, end_utc = domain.utc_bounds(start, end, tz)
    windows = domain.new_member_windows(end)
    created = Member.created_at

    def new_since(day: date) -> ColumnElement[Any]:
        return _count_if(and_(created >= domain.day_start_utc(day, tz), created < end_utc))

    totals = session.execute(
        select(
            _count_if(created < end_utc).label("total"),
            new_since(windows.day[0]).label("day"),
            new_since(windows.week[0]).label("week"),
            new_since(windows.month[0]).label("month"),
        ).where(Member.status != ERASED, *scope.members())
    ).one()
    (new_per_bucket,) = _per_bucket(
        session,
        bucket_table,
        size,
        Member,
        created,
        [func.count()],
        and_(Member.status != ERASED, *scope.members()),
    )
    kpis = MemberKpis(
        total=int(totals.total),
        new_day=int(totals.day),
        new_week=int(totals.week),
        new_month=int(totals.month),
        new_in_range=sum(new_per_bucket),
        active=active,
        active_rate=Ratio(active, int(totals.total)),
    )
    return kpis, new_per_bucket


@dataclass(frozen=True)
class _Sales:
    kpis: SalesKpis
    #: members with an order (not fully returned) in the active window
    active: int
    net_by_tier: dict[str, int]
    #: business day → (orders, net sales, points earned, points paid)
    daily: dict[date, tuple[int, int, int, int]]


def _sales(
    session: Session, start: date, end: date, active_from: date, base_code: str, scope: Scope
) -> _Sales:
    # One pass over the orders of the range and of the active window (both end on ``end``):
    # per member, then per the member's current tier.
    kept = and_(Order.business_date <= end, Order.status != RETURNED, *scope.orders())
    net = Order.paid_fen - Order.refunded_fen
    in_range = Order.business_date >= start
    per_member = (
        select(
            Order.member_id.label("member_id"),
            _count_if(in_range).label("n"),
            _sum(case((in_range, net), else_=0)).label("net"),
            func.max(case((Order.business_date >= active_from, 1), else_=0)).label("active"),
        )
        .where(kept, Order.business_date >= min(start, active_from))
        .group_by(Order.member_id)
        .subquery()
    )
    tier = func.coalesce(MemberTier.tier_code, base_code)
    by_tier = session.execute(
        select(
            tier.label("tier"),
            _count_if(per_member.c.n >= 1).label("buyers"),
            _count_if(per_member.c.n >= 2).label("repeat"),
            _sum(per_member.c.n).label("orders"),
            _sum(per_member.c.net).label("net"),
            _sum(per_member.c.active).label("active"),
        )
        .select_from(per_member)
        .outerjoin(MemberTier, MemberTier.member_id == per_member.c.member_id)
        .group_by(tier)
    ).all()
    buyers = sum(int(r.buyers) for r in by_tier)
    repeat = sum(int(r.repeat) for r in by_tier)
    orders = sum(int(r.orders) for r in by_tier)
    net_sales = sum(int(r.net) for r in by_tier)
    kpis = SalesKpis(
        orders=orders,
        net_sales_fen=net_sales,
        purchasing_members=buyers,
        repeat_members=repeat,
        repurchase_rate=Ratio(repeat, buyers),
        average_order_fen=domain.div_round(net_sales, orders),
        frequency=Ratio(orders, buyers),
    )
    daily = {
        domain.as_date(day): (int(n), int(amount), int(earned), int(used))
        for day, n, amount, earned, used in session.execute(
            select(
                Order.business_date,
                func.count(),
                _sum(net),
                _sum(Order.points_earned),
                _sum(Order.points_used),
            )
            .where(kept, in_range)
            .group_by(Order.business_date)
        )
    }
    return _Sales(
        kpis=kpis,
        active=sum(int(r.active) for r in by_tier),
        net_by_tier={str(r.tier): int(r.net) for r in by_tier if int(r.net) or int(r.orders)},
        daily=daily,
    )


def _tiers(
    session: Session,
    ladder: TierLadder,
    end_utc: datetime,
    total_members: int,
    sales_by_tier: dict[str, int],
    net_sales: int,
    scope: Scope,
) -> list[TierRow]:
    # Only members above the base tier have a row; the base tier holds everyone else.
    dist: dict[str, int] = {
        str(code): int(n)
        for code, n in session.execute(
            select(MemberTier.tier_code, func.count())
            # EXISTS keeps the scan on the (small) tier table; a join let SQLite walk members.
            .where(
                select(Member.id)
                .where(
                    Member.id == MemberTier.member_id,
                    Member.status != ERASED,
                    Member.created_at < end_utc,
                    *scope.members(),
                )
                .exists()
            )
            .group_by(MemberTier.tier_code)
        )
    }
    base = ladder.base.code
    dist[base] = total_members - sum(n for code, n in dist.items() if code != base)
    known = [t.code for t in ladder.tiers]
    # Tiers since removed from the ladder keep their rows, after the ladder's own.
    extra = sorted((set(dist) | set(sales_by_tier)) - set(known))
    rows: list[TierRow] = []
    for code in known + extra:
        tier = ladder.get(code) if code in known else None
        count = dist.get(code, 0)
        sales = sales_by_tier.get(code, 0)
        rows.append(
            TierRow(
                code=code,
                name=tier.name if tier else code,
                name_zh=(tier.name_zh or tier.name) if tier else code,
                members=count,
                member_share=Ratio(count, total_members),
                net_sales_fen=sales,
                sales_share=Ratio(sales, net_sales),
            )
        )
    return rows


def _points(
    session: Session, now: datetime, bucket_table: Any, size: int
) -> tuple[PointsKpis, list[list[int]]]:
    delta = PointsPosting.available_delta + PointsPosting.pending_delta
    kind = PointsPosting.kind
    issued = _sum(case((_issues(kind, delta), delta), else_=0))
    # Redemptions (net of cancelled ones) and expiries are negative deltas: shown as amounts.
    redeemed = _sum(case((kind.in_(("redeem", "reversal")), -delta), else_=0))
    expired = _sum(case((kind == "expire", -delta), else_=0))
    series = _per_bucket(
        session, bucket_table, size, PointsPosting, PointsPosting.created_at,
        [issued, redeemed, expired],
    )  # fmt: skip
    acc = session.execute(
        select(
            _sum(PointsAccount.available).label("available"),
            _sum(PointsAccount.pending).label("pending"),
            _sum(PointsAccount.debt).label("debt"),
        )
    ).one()
    # Lots past expiry that the expiry job has not processed yet are no longer a liability.
    stale = int(
        session.scalar(
            select(_sum(PointsLot.remaining)).where(
                PointsLot.remaining > 0, PointsLot.expires_at <= now
            )
        )
        or 0
    )
    available = max(int(acc.available) - stale, 0)
    outstanding = available + int(acc.pending)
    pricing = orders_service.pricing_settings(session)
    kpis = PointsKpis(
        issued=sum(series[0]),
        redeemed=sum(series[1]),
        expired=sum(series[2]),
        outstanding=outstanding,
        available=available,
        pending=int(acc.pending),
        debt=int(acc.debt),
        liability_fen=domain.points_value_fen(
            outstanding, pricing.points_per_unit, pricing.unit_fen
        ),
        points_per_unit=pricing.points_per_unit,
        unit_fen=pricing.unit_fen,
    )
    return kpis, series


def _issues(kind: Any, delta: Any) -> ColumnElement[bool]:
    """Postings that issue points: earnings (incl. points of a returned points payment) and
    positive manual adjustments."""
    issues: ColumnElement[bool] = (kind == "earn") | and_(kind == "adjust", delta > 0)
    return issues


def _scoped_points(session: Session, daily: dict[date, tuple[int, int, int, int]]) -> PointsKpis:
    """Points of a store, region or channel view: earned on and paid with its orders. Expiries,
    balances and the liability belong to members, not to a store, so they are not shown."""
    pricing = orders_service.pricing_settings(session)
    return PointsKpis(
        issued=sum(v[2] for v in daily.values()),
        redeemed=sum(v[3] for v in daily.values()),
        expired=0,
        outstanding=0,
        available=0,
        pending=0,
        debt=0,
        liability_fen=0,
        points_per_unit=pricing.points_per_unit,
        unit_fen=pricing.unit_fen,
        program_wide=False,
    )


def dashboard(
    session: Session,
    *,
    start: date,
    end: date,
    now: datetime,
    tz: ZoneInfo,
    scope: Scope = EVERYTHING,
) -> Dashboard:
    """Every KPI of the dashboard for business days [start, end] (both included), within
    ``scope`` (see ``analytics.scope.resolve``: a clerk's scope is their store)."""
    if domain.range_errors(start, end):
        raise ValueError(f"invalid dashboard range {start}..{end}")
    _, end_utc = domain.utc_bounds(start, end, tz)
    buckets = domain.buckets(start, end)
    size = len(buckets.starts)
    table = _bucket_table(buckets, end, tz)
    ladder = tiers_service.get_ladder(session)

    active_from, _ = domain.active_window(end)
    sold = _sales(session, start, end, active_from, ladder.base.code, scope)
    members, new_members = _members(session, start, end, tz, table, size, sold.active, scope)
    sales, daily = sold.kpis, sold.daily
    tiers = _tiers(
        session, ladder, end_utc, members.total, sold.net_by_tier, sales.net_sales_fen, scope
    )
    if scope.everything:
        points, (issued, redeemed, expired) = _points(session, now, table, size)
    else:
        points = _scoped_points(session, daily)
        issued = buckets.fold({d: v[2] for d, v in daily.items()})
        redeemed = buckets.fold({d: v[3] for d, v in daily.items()})
        expired = [0] * size
    trend = Trend(
        granularity=buckets.granularity,
        labels=buckets.labels(),
        new_members=new_members,
        orders=buckets.fold({d: v[0] for d, v in daily.items()}),
        net_sales_fen=buckets.fold({d: v[1] for d, v in daily.items()}),
        points_issued=issued,
        points_redeemed=redeemed,
        points_expired=expired,
    )
    previous = domain.previous_period(start, end)
    last_year = domain.same_period_last_year(start, end)
    current = PeriodFigures(
        start=start,
        end=end,
        new_members=members.new_in_range,
        orders=sales.orders,
        net_sales_fen=sales.net_sales_fen,
        buyers=sales.purchasing_members,
        points_issued=points.issued,
        points_redeemed=points.redeemed,
    )
    return Dashboard(
        start=start,
        end=end,
        active_from=active_from,
        members=members,
        sales=sales,
        tiers=tiers,
        points=points,
        trend=trend,
        current=current,
        previous=period_figures(session, *previous, tz=tz, scope=scope),
        last_year=period_figures(session, *last_year, tz=tz, scope=scope),
        scope=scope,
    )


def period_figures(
    session: Session, start: date, end: date, *, tz: ZoneInfo, scope: Scope = EVERYTHING
) -> PeriodFigures:
    """The headline figures of another period, to compare with (three queries, same
    definitions as the dashboard's)."""
    lo, hi = domain.utc_bounds(start, end, tz)
    new_members = session.scalar(
        select(func.count()).where(
            Member.status != ERASED, Member.created_at >= lo, Member.created_at < hi,
            *scope.members(),
        )
    )  # fmt: skip
    per_member = (
        select(
            Order.member_id,
            func.count().label("n"),
            _sum(Order.paid_fen - Order.refunded_fen).label("net"),
            _sum(Order.points_earned).label("earned"),
            _sum(Order.points_used).label("used"),
        )
        .where(
            Order.business_date >= start,
            Order.business_date <= end,
            Order.status != RETURNED,
            *scope.orders(),
        )
        .group_by(Order.member_id)
        .subquery()
    )
    sold = session.execute(
        select(
            func.count().label("buyers"),
            _sum(per_member.c.n).label("orders"),
            _sum(per_member.c.net).label("net"),
            _sum(per_member.c.earned).label("earned"),
            _sum(per_member.c.used).label("used"),
        ).select_from(per_member)
    ).one()
    if scope.everything:
        delta = PointsPosting.available_delta + PointsPosting.pending_delta
        kind = PointsPosting.kind
        issued, redeemed = session.execute(
            select(
                _sum(case((_issues(kind, delta), delta), else_=0)),
                _sum(case((kind.in_(("redeem", "reversal")), -delta), else_=0)),
            ).where(PointsPosting.created_at >= lo, PointsPosting.created_at < hi)
        ).one()
    else:
        issued, redeemed = sold.earned, sold.used
    return PeriodFigures(
        start=start,
        end=end,
        new_members=int(new_members or 0),
        orders=int(sold.orders),
        net_sales_fen=int(sold.net),
        buyers=int(sold.buyers),
        points_issued=int(issued or 0),
        points_redeemed=int(redeemed or 0),
    )
