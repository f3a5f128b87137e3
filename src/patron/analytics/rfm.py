"""RFM scoring rules and the models' settings (pure: no I/O).

Scores are 1–5 per dimension, 5 the best: recent, frequent, high-spending. By default they are
quintiles by rank (``summarise``, on NumPy arrays of purchase days); an operator can set cut
points instead.
Segments follow the classic R × F grid (R 1–5 across, F 1–5 up)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field, field_validator

SECTION = "analytics"

#: Segment key → (English, zh-CN). The keys are stored in ``member_scores.segment``.
SEGMENTS: dict[str, tuple[str, str]] = {
    "champions": ("Champions", "重要价值会员"),
    "loyal": ("Loyal", "忠诚会员"),
    "potential_loyalists": ("Potential loyalists", "潜力会员"),
    "new": ("New customers", "新客"),
    "promising": ("Promising", "有潜力的新客"),
    "need_attention": ("Need attention", "需要关注"),
    "about_to_sleep": ("About to sleep", "即将沉睡"),
    "at_risk": ("At risk", "流失风险"),
    "cant_lose": ("Can't lose them", "不能失去的会员"),
    "hibernating": ("Hibernating", "沉睡会员"),
}


def segment(r: int, f: int) -> str:
    """The segment of an (R, F) cell of the grid."""
    if not (1 <= r <= 5 and 1 <= f <= 5):
        raise ValueError("scores are 1–5")
    if r <= 2:
        return "hibernating" if f <= 2 else ("at_risk" if f <= 4 else "cant_lose")
    if r == 3:
        return "about_to_sleep" if f <= 2 else ("need_attention" if f == 3 else "loyal")
    if f == 1:
        return "promising" if r == 4 else "new"
    if f <= 3:
        return "potential_loyalists"
    return "champions" if r == 5 else "loyal"


def grid() -> list[tuple[int, int, str]]:
    """Every (R, F, segment) cell, for SQL CASE expressions and the chart."""
    return [(r, f, segment(r, f)) for r in range(1, 6) for f in range(1, 6)]


class CutPoints(BaseModel):
    """Four ascending thresholds per dimension: a value below the first scores 1, at or above
    the fourth 5. Recency counts days since the last purchase, so *fewer* days score higher."""

    recency_days: list[int] = Field(min_length=4, max_length=4)
    purchase_days: list[int] = Field(min_length=4, max_length=4)
    monetary_fen: list[int] = Field(min_length=4, max_length=4)

    @field_validator("recency_days", "purchase_days", "monetary_fen")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if any(b <= a for a, b in itertools.pairwise(v)) or v[0] < 0:
            raise ValueError("cut points must be four ascending non-negative numbers")
        return v


class Threshold(BaseModel):
    """An operator's bounds on a daily metric: below ``min`` or above ``max`` is an alert."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


ALERT_METRICS = (
    "registrations",
    "orders",
    "points_issued",
    "points_redeemed",
    "returns",
    "store_redemptions",
)


class ModelSettings(BaseModel):
    """Settings section ``analytics`` (defaults apply until an operator saves one)."""

    cut_points: CutPoints | None = None
    #: CLV: months ahead, annual discount rate, share of net spend that is margin.
    clv_horizon_months: int = Field(default=12, ge=1, le=120)
    discount_rate_annual: float = Field(default=0.10, ge=0.0, le=1.0)
    margin: float = Field(default=1.0, gt=0.0, le=1.0)
    #: Expected purchases and churn risk look this many days ahead.
    horizon_days: int = Field(default=90, ge=7, le=730)
    #: The evaluation holds out the last days of history.
    holdout_days: int = Field(default=180, ge=14, le=730)
    min_repeat_buyers: int = Field(default=30, ge=10, le=100_000)
    #: Churn warning: a member has churned after this many days without a purchase.
    churn_window_days: int = Field(default=90, ge=14, le=365)
    #: Recommendations are judged on the items first bought in this many last days.
    recommend_holdout_days: int = Field(default=90, ge=14, le=365)
    #: Anomaly alerts: weeks of same-weekday history, tolerance in spreads, smallest count
    #: worth an alert, and operator bounds per metric.
    alert_weeks: int = Field(default=8, ge=4, le=52)
    alert_sensitivity: float = Field(default=4.0, ge=1.0, le=20.0)
    alert_min_count: int = Field(default=20, ge=0)
    alert_thresholds: dict[str, Threshold] = Field(default_factory=dict)

    @field_validator("alert_thresholds")
    @classmethod
    def _known_metrics(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        unknown = sorted(set(v) - set(ALERT_METRICS))
        if unknown:
            raise ValueError(
                f"no such daily metric: {', '.join(unknown)} (one of {', '.join(ALERT_METRICS)})"
            )
        return v

    @property
    def monthly_discount(self) -> float:
        return float((1.0 + self.discount_rate_annual) ** (1.0 / 12.0) - 1.0)


#: Days in an average month, the CLV's period.
MONTH_DAYS = 365.25 / 12


@dataclass(frozen=True)
class Summary:
    """Per member with a purchase (sorted by id), from purchase days: first and last purchase
    day (day numbers), purchase days, net spend, the first day's spend, R, F, M and segment."""

    member: NDArray[np.int64]
    first: NDArray[np.int64]
    last: NDArray[np.int64]
    days: NDArray[np.int64]
    total: NDArray[np.float64]
    first_amount: NDArray[np.float64]
    r: NDArray[np.int64]
    f: NDArray[np.int64]
    m: NDArray[np.int64]
    segment: NDArray[np.object_]


def quintiles(value: Any) -> NDArray[np.int64]:
    """1–5 by rank: 1 + ⌊5 × (members with a smaller value) ÷ members⌋, so ties share the
    lower score (unlike NTILE, which splits them arbitrarily)."""
    v = np.asarray(value)
    smaller = np.searchsorted(np.sort(v), v, side="left")
    out: NDArray[np.int64] = 1 + (5 * smaller) // max(v.size, 1)
    return out


def _cut(value: Any, cuts: list[int]) -> NDArray[np.int64]:
    v = np.asarray(value)
    out: NDArray[np.int64] = np.select([v < c for c in cuts], [1, 2, 3, 4], 5).astype(np.int64)
    return out


def summarise(
    member: Any, day: Any, amount: Any, *, today: int, cut_points: CutPoints | None
) -> Summary:
    """Summaries and RFM scores from purchase days (member, day number, net amount; one row
    per member and day), all in NumPy: one sort, then per-member reductions."""
    member = np.asarray(member, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    amount = np.asarray(amount, dtype=np.float64)
    order = np.lexsort((day, member))
    w, d, a = member[order], day[order], amount[order]
    ids, start, count = np.unique(w, return_index=True, return_counts=True)
    first, last = d[start], d[start + count - 1]
    total = np.add.reduceat(a, start) if a.size else np.zeros(0)
    if cut_points is None:
        r, f, m = quintiles(last), quintiles(count), quintiles(total)
    else:
        # Fewer days since the last purchase scores higher.
        r = np.select([last > today - c for c in cut_points.recency_days], [5, 4, 3, 2], 1).astype(
            np.int64
        )
        f = _cut(count, cut_points.purchase_days)
        m = _cut(total, cut_points.monetary_fen)
    table = np.empty((5, 5), dtype=object)
    for rr, ff, seg in grid():
        table[rr - 1, ff - 1] = seg
    return Summary(
        ids, first, last, count.astype(np.int64), total, a[start], r, f, m, table[r - 1, f - 1]
    )
