"""A/B tests with a held-out control group (SPEC A6): assignment and measured uplift.

Assignment is deterministic: a member is in the control group of an experiment when the
SHA-256 bucket of (experiment, member id) falls below the control share (``kit.buckets``).
The earning engine applies the same test (``rules.definitions.applies_to``), so nobody has to
store who is in which group, and a member never changes group. The bucket does not depend on
the tier, so every tier stratum holds the control share in expectation; the uplift is then
measured within each tier and combined with the treatment group's tier weights (a
post-stratified estimate), which removes the chance imbalance of tiers between the groups.

Intervals come from SciPy (Welch's t-test: ``scipy.stats.ttest_ind(equal_var=False)``), for the
difference in spend per member and for the difference in conversion (a 0/1 outcome, where
Welch's interval is the unpooled normal interval with n-1). Statistics are floats; money in the
report is rounded to whole fen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from patron.kit.buckets import in_share

Group = Literal["treatment", "control"]


def group_of(experiment: str, member_id: int, control_bp: int) -> Group:
    return "control" if control_bp and in_share(experiment, member_id, control_bp) else "treatment"


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Uplift:
    treatment_n: int
    control_n: int
    #: share of members who bought at least once, per group (0..1)
    treatment_conversion: float
    control_conversion: float
    #: spend per member in fen, per group
    treatment_spend: float
    control_spend: float
    #: treatment minus control, with a confidence interval (None when a group is too small)
    conversion: Interval | None
    spend_per_member: Interval | None
    confidence: float


def _diff(t: np.ndarray, c: np.ndarray, confidence: float) -> Interval | None:
    if len(t) < 2 or len(c) < 2:
        return None
    estimate = float(t.mean() - c.mean())
    if float(t.var()) == 0.0 and float(c.var()) == 0.0:
        return Interval(estimate, estimate, estimate)
    ci = stats.ttest_ind(t, c, equal_var=False).confidence_interval(confidence)
    low, high = float(ci.low), float(ci.high)
    if math.isnan(low) or math.isnan(high):
        return None
    return Interval(estimate, low, high)


def uplift(treatment: Sequence[int], control: Sequence[int], *, confidence: float = 0.95) -> Uplift:
    """Uplift from each member's spend (fen) in the campaign period; a member who spent
    anything converted."""
    t = np.asarray(treatment, dtype=np.float64)
    c = np.asarray(control, dtype=np.float64)
    tc, cc = (t > 0).astype(np.float64), (c > 0).astype(np.float64)
    return Uplift(
        treatment_n=len(t),
        control_n=len(c),
        treatment_conversion=float(tc.mean()) if len(t) else 0.0,
        control_conversion=float(cc.mean()) if len(c) else 0.0,
        treatment_spend=float(t.mean()) if len(t) else 0.0,
        control_spend=float(c.mean()) if len(c) else 0.0,
        conversion=_diff(tc, cc, confidence),
        spend_per_member=_diff(t, c, confidence),
        confidence=confidence,
    )


def stratified_spend_uplift(
    strata: Mapping[str, tuple[Sequence[int], Sequence[int]]], *, confidence: float = 0.95
) -> Interval | None:
    """Spend-per-member uplift combined over strata (tier → (treatment, control) spends),
    weighted by each stratum's share of the treatment group; the variance adds up per stratum
    and the interval uses the normal quantile from SciPy."""
    # a stratum without two members in each group says nothing about the difference
    usable = [
        (np.asarray(t, dtype=np.float64), np.asarray(c, dtype=np.float64))
        for t, c in strata.values()
        if len(t) >= 2 and len(c) >= 2
    ]
    total = sum(len(t) for t, _ in usable)
    if total == 0:
        return None
    estimate = 0.0
    variance = 0.0
    for t, c in usable:
        w = len(t) / total
        estimate += w * float(t.mean() - c.mean())
        variance += w * w * (float(t.var(ddof=1)) / len(t) + float(c.var(ddof=1)) / len(c))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    half = z * math.sqrt(variance)
    return Interval(estimate, estimate - half, estimate + half)
