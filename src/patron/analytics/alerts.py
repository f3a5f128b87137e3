"""Anomaly alerts on daily metrics (docs/analytics.md, "Anomaly alerts").

Each metric is counted per business day in a handful of grouped statements (a VALUES table of
the days' UTC bounds joined against indexed timestamps, as the dashboard does). A day is judged
against the same weekday of the previous ``alert_weeks`` weeks (the seasonal baseline): the
expected value is their median, the tolerance ``alert_sensitivity`` × the larger of the robust
spread (1.4826 × median absolute deviation) and the Poisson noise of the expected count (√);
a day outside expected ± tolerance is an alert when the larger of value and expected reaches
``alert_min_count`` (so 0 → 2 orders in a quiet store is not one). Operator thresholds (a
minimum and / or maximum per metric) alert whatever the history.

An alert is stored once per metric, scope (all stores, or a store for redemptions per store)
and day; a rerun of the check finds it stored and raises nothing again. Each new alert emits
the webhook event ``analytics.alert``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from patron.analytics import domain, rfm
from patron.analytics.models import AnalyticsAlert
from patron.analytics.service import _bucket_table, _per_bucket
from patron.coupons.models import Coupon
from patron.ledger.models import PointsPosting
from patron.members.models import Member
from patron.orders.models import Order, OrderReturn
from patron.webhooks import events as webhooks

METRICS: Final = rfm.ALERT_METRICS
#: A day needs this many earlier same weekdays (since the metric's first activity) to judge.
MIN_WEEKS: Final = 4
ALL: Final = ""


def daily_metrics(
    session: Session, first: date, last: date, tz: ZoneInfo
) -> dict[tuple[str, str], list[int]]:
    """(metric, scope) → value per business day of [first, last]."""
    days = (last - first).days + 1
    buckets = domain.Buckets("day", tuple(first + timedelta(days=i) for i in range(days)))
    table = _bucket_table(buckets, last, tz)
    out: dict[tuple[str, str], list[int]] = {}
    (out["registrations", ALL],) = _per_bucket(
        session, table, days, Member, Member.created_at, [func.count()]
    )
    delta = PointsPosting.available_delta + PointsPosting.pending_delta
    kind = PointsPosting.kind
    issued = func.coalesce(
        func.sum(case(((kind == "earn") | and_(kind == "adjust", delta > 0), delta), else_=0)),
        0,
    )
    redeemed = func.coalesce(func.sum(case((kind.in_(("redeem", "reversal")), -delta), else_=0)), 0)
    out["points_issued", ALL], out["points_redeemed", ALL] = _per_bucket(
        session, table, days, PointsPosting, PointsPosting.created_at, [issued, redeemed]
    )
    (out["returns", ALL],) = _per_bucket(
        session, table, days, OrderReturn, OrderReturn.returned_at, [func.count()]
    )
    orders = [0] * days
    for day, n in session.execute(
        select(Order.business_date, func.count())
        .where(Order.business_date >= first, Order.business_date <= last)
        .group_by(Order.business_date)
    ):
        orders[(day - first).days] = int(n)
    out["orders", ALL] = orders
    for store, day, n in session.execute(
        select(Order.store_code, Order.business_date, func.count())
        .join(Coupon, Coupon.order_id == Order.id)
        .where(
            Coupon.status == "redeemed",
            Order.business_date >= first,
            Order.business_date <= last,
            Order.store_code.is_not(None),
        )
        .group_by(Order.store_code, Order.business_date)
    ):
        out.setdefault(("store_redemptions", str(store)), [0] * days)[(day - first).days] = int(n)
    return out


@dataclass(frozen=True)
class Finding:
    metric: str
    scope: str
    day: date
    value: int
    expected: float | None
    low: float | None
    high: float | None
    reason: str  # threshold | seasonal


def judge(
    values: list[int], day_index: int, settings: rfm.ModelSettings, metric: str
) -> tuple[str, float | None, float | None, float | None] | None:
    """(reason, expected, low, high) when the value at ``day_index`` is an anomaly."""
    value = values[day_index]
    limit = settings.alert_thresholds.get(metric)
    if limit is not None and (
        (limit.max is not None and value > limit.max)
        or (limit.min is not None and value < limit.min)
    ):
        return "threshold", None, limit.min, limit.max
    series = np.asarray(values, dtype=np.float64)
    active = np.flatnonzero(series[:day_index] != 0)
    if active.size == 0:
        return None
    lags = [day_index - 7 * w for w in range(1, settings.alert_weeks + 1)]
    history = series[[i for i in lags if i >= active[0]]]
    if history.size < MIN_WEEKS:
        return None
    expected = float(np.median(history))
    spread = 1.4826 * float(np.median(np.abs(history - expected)))
    tolerance = settings.alert_sensitivity * max(spread, float(np.sqrt(max(expected, 1.0))))
    low, high = expected - tolerance, expected + tolerance
    if low <= value <= high or max(value, expected) < settings.alert_min_count:
        return None
    return "seasonal", expected, max(low, 0.0), high


def check(session: Session, *, now: datetime, tz: ZoneInfo, days: int = 3) -> list[AnalyticsAlert]:
    """Judge the last ``days`` complete business days; store and announce the new alerts."""
    settings = program_settings(session)
    today = now.astimezone(tz).date()
    last = today - timedelta(days=1)
    first = last - timedelta(days=7 * settings.alert_weeks + days - 1)
    series = daily_metrics(session, first, last, tz)
    span = (last - first).days + 1
    findings: list[Finding] = []
    for (metric, scope), values in sorted(series.items()):
        for i in range(span - days, span):
            verdict = judge(values, i, settings, metric)
            if verdict is not None:
                reason, expected, low, high = verdict
                day = first + timedelta(days=i)
                findings.append(Finding(metric, scope, day, values[i], expected, low, high, reason))
    if not findings:
        return []
    known = set(
        session.execute(
            select(AnalyticsAlert.metric, AnalyticsAlert.scope, AnalyticsAlert.day).where(
                AnalyticsAlert.day >= min(f.day for f in findings)
            )
        ).all()
    )
    new = [
        AnalyticsAlert(**vars(f), created_at=now)
        for f in findings
        if (f.metric, f.scope, f.day) not in known
    ]
    new = [a for a in new if (a.metric, a.scope, a.day) not in known]
    if new:
        session.add_all(new)
        session.flush()
        webhooks.emit_many(
            session,
            [webhooks.NewEvent("analytics.alert", payload(a)) for a in new],
            now,
        )
    return new


def payload(a: AnalyticsAlert) -> dict[str, Any]:
    return {
        "metric": a.metric,
        "store_code": a.scope or None,
        "business_date": a.day.isoformat(),
        "value": a.value,
        "expected": a.expected,
        "low": a.low,
        "high": a.high,
        "reason": a.reason,
    }


def program_settings(session: Session) -> rfm.ModelSettings:
    from patron.program import service as program

    return program.get_section(session, rfm.SECTION, rfm.ModelSettings)


def recent(session: Session, *, limit: int = 100) -> list[AnalyticsAlert]:
    """The latest alerts, newest day first (for the console)."""
    return list(
        session.scalars(
            select(AnalyticsAlert)
            .order_by(AnalyticsAlert.day.desc(), AnalyticsAlert.metric, AnalyticsAlert.scope)
            .limit(limit)
        )
    )
