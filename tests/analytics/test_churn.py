"""Churn warning on arrays: features use only the past, the holdout is later than training,
AUC and lift beside the recency baseline, and what is missing in words."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from patron.analytics import churn
from tests.analytics.history import simulate, simulate_fading, simulate_recency_only

TODAY = date(2026, 3, 1)


def _arrays(n=600, seed=3, history=simulate):
    rows = history(list(range(1, n + 1)), until=TODAY, seed=seed)
    who = np.array([m for m, _, _ in rows])
    day = np.array([d.toordinal() for _, d, _ in rows])
    fen = np.array([f for _, _, f in rows], dtype=float)
    return who, day, fen


def test_features_see_only_the_past():
    who = np.array([1, 1, 1, 2])
    day = np.array([10, 20, 40, 35])
    fen = np.array([100.0, 200.0, 300.0, 50.0])
    f = churn.features(who, day, fen, cut=30, window=15)
    assert f.member.tolist() == [1]  # member 2 first bought after the cut
    recency, count, log_spend, tenure, recent = f.values[0]
    assert (recency, count, tenure, recent) == (10, 2, 20, 1)
    assert log_spend == pytest.approx(np.log1p(300))
    # Member 1 bought on day 40, inside (30, 45]: not churned.
    assert churn.labels(f, who, day, cut=30, window=15).tolist() == [False]
    assert churn.labels(f, who, day, cut=30, window=5).tolist() == [True]


def test_model_beside_the_recency_baseline():
    who, day, fen = _arrays()
    report, model = churn.train_and_judge(who, day, fen, today=TODAY.toordinal(), window=90)
    assert report.missing == ()
    assert model is not None
    assert 0.5 < report.baseline_auc < 1
    assert 0.5 < report.auc < 1
    assert report.beats_baseline == (report.auc > report.baseline_auc)
    assert report.margin == pytest.approx(report.auc - report.baseline_auc)
    assert len(report.lift) == len(report.baseline_lift) == 10
    assert sum(r.members for r in report.lift) == report.judged_on
    # The riskiest tenth churns more than average, the safest less.
    assert report.lift[0].lift > 1 > report.lift[-1].lift
    assert set(report.weights) == set(churn.FEATURES)
    # A member's explanation: the contributions add up to the model's log-odds.
    f = churn.features(who, day, fen, cut=TODAY.toordinal(), window=90)
    contrib = model.contributions(f.values[:3])
    logit = np.log(model.risk(f.values[:3]) / (1 - model.risk(f.values[:3])))
    assert contrib.sum(axis=1) + model.regression.intercept_[0] == pytest.approx(logit)
    assert set(model.explain()) == set(churn.FEATURES)
    assert report.as_json()["beats_baseline"] == report.beats_baseline


def test_too_little_history_is_said():
    who, day, fen = _arrays(n=20)
    report, model = churn.train_and_judge(who, day, fen, today=TODAY.toordinal(), window=90)
    assert model is None
    assert report.auc is None
    assert not report.beats_baseline
    assert report.missing[0].startswith("the training set has")


def test_everyone_churned_is_said():
    who = np.arange(100)
    day = np.full(100, 1000)
    report, _ = churn.train_and_judge(who, day, np.ones(100), today=1500, window=90)
    assert "every member of the training set churned" in report.missing[0]


def test_auc_difference_and_its_confidence_interval():
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from patron.analytics.churn import ChurnReport, auc_difference

    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.3
    a = y * 1.0 + rng.normal(size=y.size)
    b = y * 0.8 + rng.normal(size=y.size) + 0.5 * a
    diff, low, high = auc_difference(y, a, b)
    assert diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    # The interval's half-width agrees with a bootstrap of the difference (1.96 × its SD).
    boot = []
    for _ in range(200):
        i = rng.integers(0, y.size, y.size)
        boot.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert (high - low) / 2 == pytest.approx(1.96 * np.std(boot), rel=0.2)
    # A thin win whose interval straddles zero is not claimed.
    thin = ChurnReport(100, 100, 0.5, 0.801, 0.800, (), (), {}, margin_ci=(-0.004, 0.006))
    clear = ChurnReport(100, 100, 0.5, 0.85, 0.80, (), (), {}, margin_ci=(0.03, 0.07))
    assert not thin.beats_baseline and clear.beats_baseline


def test_the_model_beats_recency_when_leaving_shows_early():
    """Members who fade (longer intervals, less spend) before they stop, low spenders more
    often: the model's other inputs see it coming, days since the last purchase alone does
    not. The gain is claimed because its confidence interval lies above zero."""
    who, day, fen = _arrays(n=400, seed=7, history=simulate_fading)
    report, model = churn.train_and_judge(who, day, fen, today=TODAY.toordinal(), window=90)
    assert report.missing == () and model is not None
    assert report.auc > report.baseline_auc + 0.05
    assert report.margin_ci is not None and report.margin_ci[0] > 0.02
    assert report.beats_baseline
    assert report.as_json()["beats_baseline"] is True

    # Recency's safest fifth holds fading members who bought lately but are leaving; the
    # model's does not.
    def safest(rows):
        return sum(r.churn_rate * r.members for r in rows[-2:]) / sum(r.members for r in rows[-2:])

    assert safest(report.lift) < safest(report.baseline_lift) / 2
    # Spending more and buying in the last window keep a member.
    assert report.weights["log_spend"] < 0
    assert report.weights["recent_purchase_days"] < 0


def test_on_recency_only_histories_the_model_is_not_used():
    """One purchase rate and a memoryless lifetime for everyone: recency is all there is,
    the model cannot beat it but by chance, and the gain is not claimed."""
    who, day, fen = _arrays(n=400, seed=5, history=simulate_recency_only)
    report, model = churn.train_and_judge(who, day, fen, today=TODAY.toordinal(), window=90)
    assert report.missing == () and model is not None
    assert report.baseline_auc > 0.9
    assert report.margin_ci is not None and report.margin_ci[0] < 0
    assert abs(report.margin) < 0.01
    assert not report.beats_baseline
