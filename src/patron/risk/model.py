"""The anomaly model: an IsolationForest over members' recent redemption behaviour, refreshed
in each process at most every ``model_refresh_minutes`` from the last 30 days (a bounded
sample, a fixed seed: the same data gives the same scores). Without enough history it gives no
score and the rules decide alone."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

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

    def vector(self) -> list[float]:
        return [
            float(self.redemptions),
            float(np.log1p(self.points)),
            min(self.age_days, 365.0),
            float(self.returns),
            float(np.log1p(max(self.adjusted, 0))),
        ]


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
    rows = session.execute(
        select(red_q.c.n, red_q.c.pts, Member.created_at, returns, adjusted).join(
            Member, Member.id == red_q.c.mid
        )
    )
    return [
        Behaviour(
            redemptions=int(n),
            points=int(pts or 0),
            age_days=max((now - created).total_seconds() / 86400, 0.0),
            returns=int(r or 0),
            adjusted=int(a or 0),
        )
        for n, pts, created, r, a in rows
    ]


def fit(rows: list[Behaviour]) -> IsolationForest:
    model = IsolationForest(n_estimators=100, contamination="auto", random_state=7)
    model.fit(np.array([b.vector() for b in rows]))
    return model


def anomaly(model: IsolationForest, b: Behaviour) -> float:
    """0 (ordinary) … 1 (far outside what members usually do). IsolationForest's score is
    below 0.5 for ordinary points and grows for isolated ones: 0.5 → 0, 0.65 and up → 1."""
    raw = -float(model.score_samples(np.array([b.vector()]))[0])
    return max(0.0, min(1.0, (raw - 0.5) / 0.15))


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
