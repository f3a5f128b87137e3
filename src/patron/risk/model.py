"""The anomaly model: an IsolationForest over members' recent redemption behaviour, refreshed
in each process at most every ``model_refresh_minutes`` from the last 30 days (a bounded
sample, a fixed seed: the same data gives the same scores). Without enough history it gives no
score and the rules decide alone.

Besides the member's own redemptions, returns and hand credits, it looks at the devices the
member redeemed from (``X-Device-Id``): how many members redeemed on the busiest of them and
how many redemptions it made. One phone redeeming for several accounts is the pattern the
per-hour ``device_velocity`` rule misses when it is spread over days."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
from sklearn.ensemble import IsolationForest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.ledger.models import PointsAdjustment
from patron.mall.models import Redemption
from patron.members.models import Member
from patron.orders.models import OrderReturn

WINDOW: Final = timedelta(days=30)
SAMPLE: Final = 20_000
_lock = threading.Lock()
_cache: dict[str, tuple[datetime, IsolationForest | None]] = {}


@dataclass(frozen=True, slots=True)
class Behaviour:
    redemptions: int
    points: int
    age_days: float
    returns: int
    adjusted: int
    #: the most members (this one included) that redeemed on one of this member's devices in
    #: the window; 0 when the member's requests named no device
    device_members: int = 0
    #: the most redemptions (anyone's) on one of this member's devices in the window
    device_redemptions: int = 0

    def vector(self) -> list[float]:
        return [
            float(self.redemptions),
            float(np.log1p(self.points)),
            min(self.age_days, 365.0),
            float(self.returns),
            float(np.log1p(max(self.adjusted, 0))),
            # sharing is what matters: one member on one device and no device at all look alike
            float(max(self.device_members - 1, 0)),
            float(np.log1p(self.device_redemptions)),
        ]


def per_device(since: datetime) -> Any:
    """Members and redemptions per device since ``since`` (live redemptions naming a device)."""
    return (
        select(
            Redemption.device_id.label("device"),
            func.count(func.distinct(Redemption.member_id)).label("members"),
            func.count().label("n"),
        )
        .where(
            Redemption.created_at >= since,
            Redemption.status != "cancelled",
            Redemption.device_id.is_not(None),
        )
        .group_by(Redemption.device_id)
        .subquery()
    )


def _rows(session: Session, now: datetime) -> list[Behaviour]:
    since = now - WINDOW
    red = (
        select(
            Redemption.member_id.label("mid"),
            func.count().label("n"),
            func.sum(Redemption.points).label("pts"),
        )
        .where(Redemption.created_at >= since, Redemption.status != "cancelled")
        .group_by(Redemption.member_id)
    )
    red_q = red.limit(SAMPLE).subquery()
    returns = (
        select(func.count())
        .where(OrderReturn.member_id == red_q.c.mid, OrderReturn.returned_at >= since)
        .scalar_subquery()
    )
    adjusted = (
        select(func.coalesce(func.sum(PointsAdjustment.amount), 0))
        .where(
            PointsAdjustment.member_id == red_q.c.mid,
            PointsAdjustment.ledger == "points",
            PointsAdjustment.status == "applied",
            PointsAdjustment.created_at >= since,
        )
        .scalar_subquery()
    )
    dev = per_device(since)
    shared = (  # each member's busiest device, grouped once rather than per member
        select(
            Redemption.member_id.label("mid"),
            func.max(dev.c.members).label("members"),
            func.max(dev.c.n).label("n"),
        )
        .join(dev, dev.c.device == Redemption.device_id)
        .where(Redemption.created_at >= since, Redemption.status != "cancelled")
        .group_by(Redemption.member_id)
        .subquery()
    )
    rows = session.execute(
        select(
            red_q.c.n, red_q.c.pts, Member.created_at, returns, adjusted, shared.c.members,
            shared.c.n,
        )
        .join(Member, Member.id == red_q.c.mid)
        .outerjoin(shared, shared.c.mid == red_q.c.mid)
    )  # fmt: skip
    return [
        Behaviour(
            redemptions=int(n),
            points=int(pts or 0),
            age_days=max((now - created).total_seconds() / 86400, 0.0),
            returns=int(r or 0),
            adjusted=int(a or 0),
            device_members=int(dm or 0),
            device_redemptions=int(dn or 0),
        )
        for n, pts, created, r, a, dm, dn in rows
    ]


def fit(rows: list[Behaviour]) -> IsolationForest:
    model = IsolationForest(n_estimators=100, contamination="auto", random_state=7)
    model.fit(np.array([b.vector() for b in rows]))
    return model


def anomaly(model: IsolationForest, b: Behaviour) -> float:
    """0 (ordinary) … 1 (far outside what members usually do). IsolationForest's score is
    below 0.5 for ordinary points and grows for isolated ones: 0.5 → 0, 0.65 and up → 1."""
    return anomalies(model, [b])[0]


def anomalies(model: IsolationForest, rows: list[Behaviour]) -> list[float]:
    """``anomaly`` of many members at once (one pass of the forest)."""
    raw = -model.score_samples(np.array([b.vector() for b in rows]))
    return [float(v) for v in np.clip((raw - 0.5) / 0.15, 0.0, 1.0)]


def current(
    session: Session, now: datetime, refresh: timedelta, min_samples: int
) -> IsolationForest | None:
    """This process's model, trained again when older than ``refresh`` (one statement)."""
    bind = session.get_bind()
    key = str(bind.engine.url)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] <= now < hit[0] + refresh:
            return hit[1]
    rows = _rows(session, now)
    trained = fit(rows) if len(rows) >= min_samples else None
    with _lock:
        _cache[key] = (now, trained)
    return trained


def forget() -> None:
    """Drop every process-local model (tests, and after a restore)."""
    with _lock:
        _cache.clear()
