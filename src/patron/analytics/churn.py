"""Churn warning: a logistic regression (scikit-learn) on a time split, always beside a
recency-only baseline. Pure numerical code on arrays of purchase days (no I/O).

Features of a member at a cut day ``c`` use purchases on or before ``c`` only; the label is
"no purchase in the ``window`` days after ``c``". The model is trained at
``c₁ = today − 2·window`` (labels from (c₁, c₁ + window]) and judged at ``c₂ = today − window``
(labels up to today), so the holdout is strictly later than anything the model saw. The
baseline ranks members by days since their last purchase. The model is used only if its
holdout AUC beats the baseline's.

The loyalty score is 100 × (1 − churn probability), rounded; its explanation per member is the
contribution of each standardised feature (coefficient × value), so "why" is a sum of named
terms (docs/analytics.md, "Churn warning and loyalty score").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

Array = NDArray[np.float64]

FEATURES = ("recency_days", "purchase_days", "log_spend", "tenure_days", "recent_purchase_days")
#: Below this many members or either class in the training or holdout set, no model is fitted.
MIN_MEMBERS = 50


@dataclass(frozen=True)
class Features:
    member: NDArray[np.int64]
    values: Array  # members × FEATURES


def features(member: Any, day: Any, amount: Any, *, cut: int, window: int) -> Features:
    """Features at ``cut`` from purchase days (member, day number, net amount) — one row per
    member whose first purchase is on or before ``cut``."""
    member = np.asarray(member, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    amount = np.asarray(amount, dtype=np.float64)
    seen = day <= cut
    ids, who = np.unique(member[seen], return_inverse=True)
    d, a = day[seen], amount[seen]
    n = ids.size
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, who, d)
    np.maximum.at(last, who, d)
    count = np.bincount(who, minlength=n).astype(np.float64)
    spend = np.bincount(who, weights=a, minlength=n)
    recent = np.bincount(who[d > cut - window], minlength=n).astype(np.float64)
    values = np.column_stack(
        [
            (cut - last).astype(np.float64),
            count,
            np.log1p(np.maximum(spend, 0.0)),
            (cut - first).astype(np.float64),
            recent,
        ]
    )
    return Features(ids, values)


def labels(f: Features, member: Any, day: Any, *, cut: int, window: int) -> NDArray[np.bool_]:
    """True where the member made no purchase in (cut, cut + window]."""
    member = np.asarray(member, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    later = member[(day > cut) & (day <= cut + window)]
    return ~np.isin(f.member, later)


@dataclass(frozen=True)
class LiftRow:
    decile: int  # 1 = the tenth with the highest predicted risk
    members: int
    churn_rate: float
    lift: float


@dataclass(frozen=True)
class ChurnReport:
    trained_on: int
    judged_on: int
    base_rate: float
    auc: float | None
    baseline_auc: float | None
    lift: tuple[LiftRow, ...]
    baseline_lift: tuple[LiftRow, ...]
    weights: dict[str, float]
    missing: tuple[str, ...] = ()
    #: 95 % confidence interval of AUC(model) − AUC(baseline) on the holdout (DeLong)
    margin_ci: tuple[float, float] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "trained_on": self.trained_on,
            "judged_on": self.judged_on,
            "base_rate": self.base_rate,
            "auc": self.auc,
            "baseline_auc": self.baseline_auc,
            "beats_baseline": self.beats_baseline,
            "margin": self.margin,
            "margin_ci": None if self.margin_ci is None else list(self.margin_ci),
            "lift": [vars(r) for r in self.lift],
            "baseline_lift": [vars(r) for r in self.baseline_lift],
            "weights": self.weights,
            "missing": list(self.missing),
        }

    @property
    def beats_baseline(self) -> bool:
        """Higher holdout AUC, and not by chance: the confidence interval of the difference
        lies above zero."""
        return (
            self.auc is not None
            and self.baseline_auc is not None
            and self.auc > self.baseline_auc
            and (self.margin_ci is None or self.margin_ci[0] > 0)
        )

    @property
    def margin(self) -> float | None:
        """AUC points gained over the baseline (negative when it loses)."""
        if self.auc is None or self.baseline_auc is None:
            return None
        return self.auc - self.baseline_auc


def loyalty_score(churn_risk: float | None) -> int | None:
    """100 × (1 − churn risk), rounded to a whole number; None without a churn risk. The one
    definition behind the member page and the member-scores export."""
    if churn_risk is None:
        return None
    return round(100 * (1 - churn_risk))


def auc_difference(
    y: NDArray[np.bool_], a: Array, b: Array, *, z: float = 1.959964
) -> tuple[float, float, float]:
    """AUC(a) − AUC(b) on the same members and its confidence interval (normal, ``z``; 95 %
    by default) by DeLong's method for correlated ROC curves (DeLong, DeLong & Clarke-Pearson
    1988), computed with midranks in O(n log n) (Sun & Xu 2014)."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(y, dtype=bool), ~np.asarray(y, dtype=bool)
    m, n = int(pos.sum()), int(neg.sum())
    v01 = np.empty((2, m))
    v10 = np.empty((2, n))
    aucs = np.empty(2)
    for k, score in enumerate((np.asarray(a, dtype=float), np.asarray(b, dtype=float))):
        tz = rankdata(score)
        tx = rankdata(score[pos])
        ty = rankdata(score[neg])
        aucs[k] = (tz[pos].sum() - m * (m + 1) / 2) / (m * n)
        v01[k] = (tz[pos] - tx) / n
        v10[k] = 1.0 - (tz[neg] - ty) / m
    cov = np.cov(v01) / m + np.cov(v10) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    half = z * float(np.sqrt(max(var, 0.0)))
    return diff, diff - half, diff + half


def lift_table(score: Array, y: NDArray[np.bool_], bins: int = 10) -> tuple[LiftRow, ...]:
    """Churn rate per tenth of members ranked by ``score`` (highest first) ÷ the overall rate."""
    order = np.argsort(-score, kind="stable")
    parts = np.array_split(order, bins)
    base = float(y.mean()) if y.size else 0.0
    return tuple(
        LiftRow(i + 1, int(p.size), float(y[p].mean()), float(y[p].mean()) / base if base else 0.0)
        for i, p in enumerate(parts)
        if p.size
    )


@dataclass(frozen=True)
class Model:
    scaler: StandardScaler
    regression: LogisticRegression

    def risk(self, values: Array) -> Array:
        out: Array = self.regression.predict_proba(self.scaler.transform(values))[:, 1]
        return out

    def contributions(self, values: Array) -> Array:
        """Per member and feature: coefficient × standardised value (log-odds of churning)."""
        out: Array = self.scaler.transform(values) * self.regression.coef_[0]
        return out

    def explain(self) -> dict[str, Any]:
        """What a member's explanation needs: per feature its weight, mean and scale."""
        return {
            name: {"weight": float(w), "mean": float(m), "scale": float(sd)}
            for name, w, m, sd in zip(
                FEATURES,
                self.regression.coef_[0],
                self.scaler.mean_,
                self.scaler.scale_,
                strict=True,
            )
        }

    def weights(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(FEATURES, self.regression.coef_[0], strict=True)}


def explain_member(explanation: dict[str, Any], values: Any) -> list[tuple[str, float, float]]:
    """One member's (feature, value, contribution) from a stored ``Model.explain()`` and their
    feature row: the same coefficient × standardised value as ``Model.contributions``, largest
    effect first. A feature the stored model lacks is left out."""
    out = []
    for name, value in zip(FEATURES, np.asarray(values, dtype=np.float64).tolist(), strict=True):
        term = explanation.get(name)
        if not term or not term.get("scale"):
            continue
        out.append((name, value, term["weight"] * (value - term["mean"]) / term["scale"]))
    return sorted(out, key=lambda t: -abs(t[2]))


def fit(values: Array, y: NDArray[np.bool_]) -> Model:
    scaler = StandardScaler().fit(values)
    regression = LogisticRegression(max_iter=1000).fit(scaler.transform(values), y)
    return Model(scaler, regression)


def _enough(y: NDArray[np.bool_], what: str) -> str | None:
    if y.size < MIN_MEMBERS:
        return f"the {what} has {y.size} members; at least {MIN_MEMBERS} are needed"
    if y.all() or not y.any():
        state = "churned" if y.all() else "bought again"
        return f"every member of the {what} {state}: there is nothing to tell apart"
    return None


def train_and_judge(
    member: Any, day: Any, amount: Any, *, today: int, window: int
) -> tuple[ChurnReport, Model | None]:
    """Train at today − 2·window, judge at today − window against the recency baseline."""
    c1, c2 = today - 2 * window, today - window
    train = features(member, day, amount, cut=c1, window=window)
    y1 = labels(train, member, day, cut=c1, window=window)
    test = features(member, day, amount, cut=c2, window=window)
    y2 = labels(test, member, day, cut=c2, window=window)
    problems = [p for p in (_enough(y1, "training set"), _enough(y2, "holdout")) if p]
    if problems:
        return (
            ChurnReport(
                int(y1.size),
                int(y2.size),
                float(y2.mean()) if y2.size else 0.0,
                None,
                None,
                (),
                (),
                {},
                tuple(problems),
            ),
            None,
        )
    model = fit(train.values, y1)
    risk = model.risk(test.values)
    recency = test.values[:, 0]
    _, low, high = auc_difference(y2, risk, recency)
    report = ChurnReport(
        trained_on=int(y1.size),
        judged_on=int(y2.size),
        base_rate=float(y2.mean()),
        auc=float(roc_auc_score(y2, risk)),
        baseline_auc=float(roc_auc_score(y2, recency)),
        lift=lift_table(risk, y2),
        baseline_lift=lift_table(recency, y2),
        weights=model.weights(),
        margin_ci=(low, high),
    )
    return report, model
