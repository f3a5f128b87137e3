"""One member's stored scores and, when the churn model scored them, why: each input's
contribution to the churn log-odds (docs/analytics.md, "Churn warning and loyalty score").

The nightly job keeps the fitted model's weights, means and scales in its run report; the
member's inputs are recomputed from their purchase days up to the scores' day, so the page
needs no refit and agrees with the stored risk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, cast, select
from sqlalchemy.orm import Session

from patron.analytics import churn as churn_model
from patron.analytics.models import MemberScore, ModelRun
from patron.analytics.scores import day_number, purchase_days_cte


@dataclass(frozen=True)
class Contribution:
    feature: str  # one of churn.FEATURES
    value: float  # the member's input
    log_odds: float  # > 0 raises the churn risk


@dataclass(frozen=True)
class MemberScores:
    score: MemberScore
    #: 100 × (1 − churn risk), rounded; None without a churn risk
    loyalty: int | None
    #: "model" (explained below) or "p_alive" (the purchase model's chance of being active)
    churn_source: str
    window_days: int | None
    contributions: tuple[Contribution, ...]


def member_scores(session: Session, member_id: int) -> MemberScores | None:
    """The member's scores from the last nightly run, or None when they have not been scored."""
    score = session.get(MemberScore, member_id)
    if score is None:
        return None
    run = session.scalars(
        select(ModelRun).where(ModelRun.kind == "scores").order_by(ModelRun.id.desc()).limit(1)
    ).first()
    report: dict[str, Any] = {} if run is None else run.report
    source = str(report.get("churn_source") or "p_alive")
    explanation = report.get("churn_explain")
    window = (report.get("settings") or {}).get("churn_window_days")
    loyalty = churn_model.loyalty_score(score.churn_risk)
    terms: tuple[Contribution, ...] = ()
    if source == "model" and explanation and window:
        values = _features(session, member_id, score, int(window))
        if values is not None:
            terms = tuple(
                Contribution(name, value, round(part, 4))
                for name, value, part in churn_model.explain_member(explanation, values)
            )
    return MemberScores(score, loyalty, source, window, terms)


def _features(
    session: Session, member_id: int, score: MemberScore, window: int
) -> np.ndarray[Any, Any] | None:
    """The member's churn inputs on the scores' day (the job's own purchase-day rule)."""
    daily = purchase_days_cte(score.as_of)
    rows = session.execute(
        select(daily.c.member_id, day_number(daily.c.day), cast(daily.c.amount, BigInteger)).where(
            daily.c.member_id == member_id
        )
    ).all()
    if not rows:
        return None
    who, day, amount = zip(*rows, strict=True)
    cut = int(np.datetime64(score.as_of, "D").astype(np.int64))
    f = churn_model.features(who, day, amount, cut=cut, window=window)
    return f.values[0] if f.member.size else None
