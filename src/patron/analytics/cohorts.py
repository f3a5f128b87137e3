"""Monthly registration cohorts, funnels and attribution (D4), in five grouped queries.

A cohort is the members registered in one business month. Retention in month k is the share
of the cohort with a purchase (an order not fully returned) in the k-th month after the
registration month (k = 0: the registration month); the spend curve is the cohort's net spend
(paid − refunded) from the registration month to month k, per member of the cohort. The
purchase funnel counts members registered, with a first and with a second purchase; the points
funnel, members who earned points and, of those, who redeemed some (a redemption not undone).
Attribution counts the registrations, and the members' first purchases, of the cohort window
per channel and per store. Erased members are left out everywhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, and_, column, exists, func, select, values
from sqlalchemy.orm import Session, aliased

from patron.analytics import domain
from patron.analytics.domain import Ratio
from patron.db import UTCDateTime
from patron.ledger.models import PointsPosting
from patron.members.models import Member
from patron.orders.models import Order

#: Registration months shown, the current one included.
COHORT_MONTHS = 6
ERASED = "erased"
RETURNED = "returned"


@dataclass(frozen=True)
class Cohort:
    month: str  # YYYY-MM
    members: int
    #: retention[k]: members with a purchase in month k after registration (to the current month)
    retention: list[Ratio]
    #: spend_fen[k]: the cohort's net spend (fen) in month k after registration
    spend_fen: list[int]

    @property
    def spend_per_member(self) -> list[int | None]:
        """Cumulative net spend per member of the cohort up to month k (None: empty cohort)."""
        return domain.cumulative_per_member(self.spend_fen, self.members)


@dataclass(frozen=True)
class Funnel:
    registered: int
    first_purchase: Ratio
    second_purchase: Ratio
    #: of the registered members, those with points earned
    earned: Ratio
    #: of those who earned, those who redeemed points (a redemption not undone)
    redeemed: Ratio


@dataclass(frozen=True)
class Attribution:
    """Counts and shares per channel and per store ("" = no store) since ``since`` (YYYY-MM)."""

    since: str
    registrations_by_channel: list[tuple[str, Ratio]]
    registrations_by_store: list[tuple[str, Ratio]]
    first_orders_by_channel: list[tuple[str, Ratio]]
    first_orders_by_store: list[tuple[str, Ratio]]


@dataclass(frozen=True)
class Cohorts:
    cohorts: list[Cohort]
    funnel: Funnel
    attribution: Attribution


def cohorts(session: Session, *, now: datetime, tz: ZoneInfo) -> Cohorts:
    today = now.astimezone(tz).date()
    first = today.replace(day=1)
    starts = [domain.months_back(first, k) for k in range(COHORT_MONTHS - 1, -1, -1)]
    bounds = [*starts, domain.months_back(first, -1)]
    rows = [
        (i, domain.day_start_utc(lo, tz), domain.day_start_utc(hi, tz), lo, hi)
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]
    cols = (
        column("i", Integer),
        column("lo", UTCDateTime()),
        column("hi", UTCDateTime()),
        column("dlo", Date()),
        column("dhi", Date()),
    )
    reg = values(*cols, name="reg").data(rows).cte("reg")
    buy = values(*cols, name="buy").data(rows).cte("buy")
    kept = Member.status != ERASED
    sizes = {
        int(i): int(n)
        for i, n in session.execute(
            select(reg.c.i, func.count())
            .select_from(reg)
            .join(Member, and_(Member.created_at >= reg.c.lo, Member.created_at < reg.c.hi))
            .where(kept)
            .group_by(reg.c.i)
        )
    }
    # Buyers and net spend per (cohort, month): fully returned orders count for neither.
    got = {
        (int(c), int(j)): (int(n), int(fen or 0))
        for c, j, n, fen in session.execute(
            select(
                reg.c.i,
                buy.c.i,
                func.count(func.distinct(Member.id)),
                func.sum(Order.paid_fen - Order.refunded_fen),
            )
            .select_from(reg)
            .join(Member, and_(Member.created_at >= reg.c.lo, Member.created_at < reg.c.hi))
            .join(Order, and_(Order.member_id == Member.id, Order.status != RETURNED))
            .join(
                buy,
                and_(
                    Order.business_date >= buy.c.dlo,
                    Order.business_date < buy.c.dhi,
                    buy.c.i >= reg.c.i,
                ),
            )
            .where(kept)
            .group_by(reg.c.i, buy.c.i)
        )
    }
    out = [
        Cohort(
            month=start.strftime("%Y-%m"),
            members=sizes.get(c, 0),
            retention=[
                Ratio(got.get((c, j), (0, 0))[0], sizes.get(c, 0)) for j in range(c, COHORT_MONTHS)
            ],
            spend_fen=[got.get((c, j), (0, 0))[1] for j in range(c, COHORT_MONTHS)],
        )
        for c, start in enumerate(starts)
    ]

    funnel = _funnel(session)
    window = (domain.day_start_utc(bounds[0], tz), domain.day_start_utc(bounds[-1], tz))
    attribution = _attribution(session, window, (bounds[0], bounds[-1]))
    return Cohorts(cohorts=out, funnel=funnel, attribution=attribution)


def _funnel(session: Session) -> Funnel:
    """Both funnels in one statement: per member, purchases, points earned, points redeemed."""
    per_member = (
        select(Order.member_id, func.count().label("n"))
        .where(Order.status != RETURNED)
        .group_by(Order.member_id)
        .subquery()
    )
    earners = (
        select(PointsPosting.member_id).where(PointsPosting.kind == "earn").distinct().subquery()
    )
    undo = aliased(PointsPosting)
    redeemers = (
        select(PointsPosting.member_id)
        .where(
            PointsPosting.kind == "redeem",
            ~exists().where(undo.reverses_id == PointsPosting.id),
        )
        .distinct()
        .subquery()
    )
    f = session.execute(
        select(
            func.count(),
            func.count(per_member.c.n),
            func.coalesce(func.sum(func.cast(per_member.c.n >= 2, Integer)), 0),
            func.count(earners.c.member_id),
            func.coalesce(
                func.sum(
                    func.cast(
                        and_(earners.c.member_id.is_not(None), redeemers.c.member_id.is_not(None)),
                        Integer,
                    )
                ),
                0,
            ),
        )
        .select_from(Member)
        .outerjoin(per_member, per_member.c.member_id == Member.id)
        .outerjoin(earners, earners.c.member_id == Member.id)
        .outerjoin(redeemers, redeemers.c.member_id == Member.id)
        .where(Member.status != ERASED)
    ).one()
    registered, first_n, second_n, earned_n, redeemed_n = (int(x) for x in f)
    return Funnel(
        registered=registered,
        first_purchase=Ratio(first_n, registered),
        second_purchase=Ratio(second_n, first_n),
        earned=Ratio(earned_n, registered),
        redeemed=Ratio(redeemed_n, earned_n),
    )


def _attribution(
    session: Session, window: tuple[datetime, datetime], days: tuple[date, date]
) -> Attribution:
    """Registrations in the window, and first purchases whose business day is in it, grouped
    by (channel, store) in the database; the few groups are then summed per channel and store.
    A first purchase is the member's earliest order not fully returned (ties: the lower id)."""
    kept = Member.status != ERASED
    store = func.coalesce(Member.registration_store_code, "")
    regs = session.execute(
        select(Member.registration_channel, store, func.count())
        .where(kept, Member.created_at >= window[0], Member.created_at < window[1])
        .group_by(Member.registration_channel, store)
    ).all()
    rank = (
        func.row_number()
        .over(partition_by=Order.member_id, order_by=(Order.ordered_at, Order.id))
        .label("rank")
    )
    ranked = (
        select(
            Order.channel.label("channel"),
            func.coalesce(Order.store_code, "").label("store"),
            Order.business_date.label("day"),
            rank,
        )
        .join(Member, Member.id == Order.member_id)
        .where(Order.status != RETURNED, kept)
        .subquery()
    )
    firsts = session.execute(
        select(ranked.c.channel, ranked.c.store, func.count())
        .where(ranked.c.rank == 1, ranked.c.day >= days[0], ranked.c.day < days[1])
        .group_by(ranked.c.channel, ranked.c.store)
    ).all()

    def by(rows: Sequence[Any], part: int) -> list[tuple[str, Ratio]]:
        counts: dict[str, int] = {}
        for row in rows:
            key = str(row[part])
            counts[key] = counts.get(key, 0) + int(row[2])
        return domain.shares(counts)

    return Attribution(
        since=days[0].strftime("%Y-%m"),
        registrations_by_channel=by(regs, 0),
        registrations_by_store=by(regs, 1),
        first_orders_by_channel=by(firsts, 0),
        first_orders_by_store=by(firsts, 1),
    )
