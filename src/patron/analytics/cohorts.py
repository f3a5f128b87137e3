"""Monthly registration cohorts and the purchase funnel (D4), in two grouped queries.

A cohort is the members registered in one business month. Retention in month k is the share
of the cohort with a purchase (an order not fully returned) in the k-th month after the
registration month (k = 0: the registration month). The funnel counts members registered,
with a first and with a second purchase. Erased members are left out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, and_, column, func, select, values
from sqlalchemy.orm import Session

from patron.analytics import domain
from patron.analytics.domain import Ratio
from patron.db import UTCDateTime
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


@dataclass(frozen=True)
class Funnel:
    registered: int
    first_purchase: Ratio
    second_purchase: Ratio


@dataclass(frozen=True)
class Cohorts:
    cohorts: list[Cohort]
    funnel: Funnel


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
    active = {
        (int(c), int(j)): int(n)
        for c, j, n in session.execute(
            select(reg.c.i, buy.c.i, func.count(func.distinct(Member.id)))
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
                Ratio(active.get((c, j), 0), sizes.get(c, 0)) for j in range(c, COHORT_MONTHS)
            ],
        )
        for c, start in enumerate(starts)
    ]

    per_member = (
        select(Order.member_id, func.count().label("n"))
        .where(Order.status != RETURNED)
        .group_by(Order.member_id)
        .subquery()
    )
    f = session.execute(
        select(
            func.count(),
            func.count(per_member.c.n),
            func.coalesce(func.sum(func.cast(per_member.c.n >= 2, Integer)), 0),
        )
        .select_from(Member)
        .outerjoin(per_member, per_member.c.member_id == Member.id)
        .where(kept)
    ).one()
    registered, first_n, second_n = int(f[0]), int(f[1]), int(f[2])
    funnel = Funnel(
        registered=registered,
        first_purchase=Ratio(first_n, registered),
        second_purchase=Ratio(second_n, first_n),
    )
    return Cohorts(cohorts=out, funnel=funnel)
