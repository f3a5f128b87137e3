"""Next purchase: days until a member's next purchase, and per-category replenishment cycles.
Pure numerical code on arrays of purchase days (no I/O); docs/analytics.md, "Next purchase".

**Model.** Under BG/NBD a member who is still active buys at a Poisson rate λ whose posterior,
after x repeat purchases over T days of history, is Gamma(r + x, α + T). The wait W until the
next purchase then has P(W > w) = ((α + T) ÷ (α + T + w))^(r + x), so its median is
(α + T) × (2^(1/(r + x)) − 1) days: the member's own pace, shrunk towards the population's for
short histories. **Baseline**: the member's median interval between purchase days (the
population's median interval for a member with one purchase day), counted from the last
purchase; a member already past it is predicted to buy today.

**Replenishment.** A category's cycle is the median number of days between consecutive
purchase days of that category by the same member, over all members (at least
``MIN_INTERVALS`` such intervals, else the category has no cycle). A member is due to buy the
category again on last purchase of it + the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
Ints = NDArray[np.int64]

#: A category needs this many observed repeat intervals for a cycle.
MIN_INTERVALS = 20


def model_days(r: float, alpha: float, x: Any, T: Any) -> Array:
    """Median days from the end of the history to the next purchase of an active member."""
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    out: Array = (alpha + T) * np.expm1(np.log(2.0) / (r + x))
    return out


def _sorted_pairs(member: Any, day: Any) -> tuple[Ints, Ints]:
    """Distinct (member, day) pairs sorted by member then day."""
    pairs = np.unique(
        np.stack([np.asarray(member, dtype=np.int64), np.asarray(day, dtype=np.int64)], axis=1),
        axis=0,
    )
    return pairs[:, 0], pairs[:, 1]


def group_median(group: Ints, value: Array) -> tuple[Ints, Array]:
    """Median of ``value`` per distinct ``group`` (sorted group ids, medians)."""
    order = np.lexsort((value, group))
    g, v = group[order], value[order]
    ids, start, count = np.unique(g, return_index=True, return_counts=True)
    lo = v[start + (count - 1) // 2]
    hi = v[start + count // 2]
    return ids, (lo + hi) / 2.0


def intervals(member: Any, day: Any) -> tuple[Ints, Ints, Array]:
    """Distinct purchase days sorted by member and day, and the gap from each one to the next
    (−1 where the next belongs to another member)."""
    m, d = _sorted_pairs(member, day)
    same = m[1:] == m[:-1]
    return m, d, np.where(same, np.diff(d), -1).astype(np.float64)


def baseline_days(member: Any, day: Any, *, at: int) -> tuple[Ints, Array]:
    """Per member with a purchase on or before ``at`` (sorted ids): days from ``at`` to the
    next purchase by the median-interval rule."""
    member = np.asarray(member, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    seen = day <= at
    m, d, gaps = intervals(member[seen], day[seen])
    ids, last_idx = np.unique(m[::-1], return_index=True)
    last = d[::-1][last_idx]
    ok = gaps >= 0
    population = float(np.median(gaps[ok])) if ok.any() else np.nan
    gap_ids, med = group_median(m[1:][ok], gaps[ok])
    own = np.full(ids.size, population)
    own[np.searchsorted(ids, gap_ids)] = med
    return ids, np.maximum(last + own - at, 0.0)


@dataclass(frozen=True)
class NextPurchaseCheck:
    """How well the days to the next purchase were predicted, over the members who did buy
    again within the holdout (absolute error in days; predictions capped at the holdout)."""

    members: int  # members with a purchase by the cut
    returned: int  # of whom bought again within the holdout
    model_mae: float | None
    baseline_mae: float | None
    model_median_error: float | None
    baseline_median_error: float | None

    @property
    def beats_baseline(self) -> bool:
        return (
            self.model_mae is not None
            and self.baseline_mae is not None
            and self.model_mae < self.baseline_mae
        )

    def as_json(self) -> dict[str, Any]:
        return {**vars(self), "beats_baseline": self.beats_baseline}


def check(
    member: Any,
    day: Any,
    *,
    cut: int,
    holdout_end: int,
    params: tuple[float, float] | None,
    x: Any,
    T: Any,
    ids: Any,
) -> NextPurchaseCheck:
    """Compare model and baseline on the holdout (cut, holdout_end]. ``ids``, ``x`` and ``T``
    are the calibration summaries (sorted member ids) the model was fitted on; ``params`` its
    (r, α), or None when the fit was not usable (only the baseline is judged)."""
    member = np.asarray(member, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    base_ids, base = baseline_days(member, day, at=cut)
    later = (day > cut) & (day <= holdout_end)
    # First purchase day after the cut, per member.
    lm, ld = _sorted_pairs(member[later], day[later])
    first_ids, first_idx = np.unique(lm, return_index=True)
    actual_days = (ld[first_idx] - cut).astype(np.float64)
    keep = np.isin(first_ids, base_ids)
    first_ids, actual_days = first_ids[keep], actual_days[keep]
    span = float(holdout_end - cut)
    if first_ids.size == 0:
        return NextPurchaseCheck(int(base_ids.size), 0, None, None, None, None)
    b = np.minimum(base[np.searchsorted(base_ids, first_ids)], span)
    b_err = np.abs(b - actual_days)
    m_mae = m_med = None
    if params is not None:
        pred = model_days(params[0], params[1], x, T)
        mp = np.minimum(pred[np.searchsorted(np.asarray(ids), first_ids)], span)
        m_err = np.abs(mp - actual_days)
        m_mae, m_med = float(m_err.mean()), float(np.median(m_err))
    return NextPurchaseCheck(
        int(base_ids.size),
        int(first_ids.size),
        m_mae,
        float(b_err.mean()),
        m_med,
        float(np.median(b_err)),
    )


@dataclass(frozen=True)
class Replenishment:
    member: Ints
    category: Ints  # index into the category names
    last_day: Ints
    cycle_days: Ints


def replenishment(member: Any, category: Any, day: Any) -> tuple[dict[int, int], Replenishment]:
    """Category cycles (category index → days) and, per (member, category) of a category with
    a cycle, the last purchase day. ``category`` holds small integer codes."""
    member = np.asarray(member, dtype=np.int64)
    category = np.asarray(category, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    empty = Replenishment(*(np.zeros(0, dtype=np.int64),) * 4)
    if member.size == 0:
        return {}, empty
    # One key per (member, category): a dense code keeps the sort one-dimensional.
    width = int(category.max()) + 1
    key = member * width + category
    k, d = _sorted_pairs(key, day)
    same = k[1:] == k[:-1]
    gaps = np.diff(d)[same].astype(np.float64)
    gap_cat = (k[1:][same] % width).astype(np.int64)
    cycles: dict[int, int] = {}
    if gaps.size:
        cats, counts = np.unique(gap_cat, return_counts=True)
        _, med = group_median(gap_cat, gaps)
        for c, n, v in zip(cats, counts, med, strict=True):
            if n >= MIN_INTERVALS and v >= 1:
                cycles[int(c)] = round(float(v))
    keys, last_idx = np.unique(k[::-1], return_index=True)
    last = d[::-1][last_idx]
    cat = keys % width
    cycle_of = np.zeros(width, dtype=np.int64)
    for c, v in cycles.items():
        cycle_of[c] = v
    has = cycle_of[cat] > 0
    return cycles, Replenishment((keys // width)[has], cat[has], last[has], cycle_of[cat[has]])
