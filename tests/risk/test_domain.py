"""Risk review's pure rules: which rules fire, the score, the decision, the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.ensemble import IsolationForest

from patron.risk import domain, model
from patron.risk.domain import Facts, RiskSettings

QUIET = Facts(
    points=300,
    member_last_hour=0,
    store_last_hour=0,
    member_age_hours=24 * 90,
    prefix_new_members=0,
    refunds_after_redemption=0,
    staff_adjust_points=0,
)


def test_each_rule_fires_on_its_own_fact() -> None:
    s = RiskSettings()
    assert domain.fired(s, QUIET) == []
    cases = {
        "member_velocity": {"member_last_hour": 3},
        "store_velocity": {"store_last_hour": 30},
        "new_member_redeems": {"member_age_hours": 2.0, "points": 2_000},
        "shared_phone_prefix": {"prefix_new_members": 5},
        "refunds_after_redemption": {"refunds_after_redemption": 2},
        "unusual_adjustments": {"staff_adjust_points": 20_000},
        "device_velocity": {"device_last_hour": 3},
    }
    for rule, change in cases.items():
        facts = _with(QUIET, **change)
        assert domain.fired(s, facts) == [rule], rule
    assert domain.fired(s, _with(QUIET, member_age_hours=2.0, points=1_999)) == []
    # the device's redemptions count only up to the limit (a request without one counts 0)
    assert domain.fired(s, _with(QUIET, device_last_hour=2)) == []


def _with(f: Facts, **change: object) -> Facts:
    values = {k: getattr(f, k) for k in Facts.__dataclass_fields__}
    values.update(change)
    return Facts(**values)  # type: ignore[arg-type]


def test_score_and_decision() -> None:
    s = RiskSettings()
    assert domain.score(s, [], None) == 0
    assert domain.decide(s, 40) == "allow"
    one = domain.score(s, ["member_velocity"], 0.5)  # 40 + 15
    assert one == 55 and domain.decide(s, one) == "step_up"
    two = domain.score(s, ["member_velocity", "new_member_redeems"], None)
    assert two == 75 and domain.decide(s, two) == "step_up"
    assert (
        domain.decide(
            s,
            domain.score(
                s, ["member_velocity", "shared_phone_prefix", "refunds_after_redemption"], 0
            ),
        )
        == "review"
    )
    assert domain.score(s, list(domain.WEIGHTS), 1.0) == 100
    with pytest.raises(ValidationError):
        RiskSettings(step_up_threshold=90, review_threshold=80)


def test_precision() -> None:
    assert domain.precision(set(), {1}) is None
    assert domain.precision({1, 2, 3, 4}, {1, 2, 3}) == 0.75


def test_the_model_scores_an_outlier_above_ordinary_behaviour() -> None:
    ordinary = [
        model.Behaviour(
            redemptions=1 + i % 2, points=300 + 10 * i, age_days=100 + i, returns=0, adjusted=0
        )
        for i in range(200)
    ]
    trained = model.fit(ordinary)
    usual = model.anomaly(trained, model.Behaviour(1, 1300, 200, 0, 0))
    odd = model.anomaly(trained, model.Behaviour(12, 40_000, 0.1, 3, 30_000))
    assert odd > 0.5 and usual < 0.2, (odd, usual)


def _population(seed: int) -> tuple[list[model.Behaviour], set[int]]:
    """1,000 ordinary members (most on a device of their own, some naming none, a few sharing
    a family tablet) and 24 accounts farmed from four phones, each redeeming like an ordinary
    member over the month: only the device gives them away."""
    rng = np.random.default_rng(seed)
    rows: list[model.Behaviour] = []
    for _ in range(1_000):
        n = int(rng.integers(1, 4))
        device = rng.random()
        members = 0 if device < 0.3 else (2 if device > 0.97 else 1)
        rows.append(
            model.Behaviour(
                redemptions=n,
                points=int(rng.integers(200, 3_000)) * n,
                age_days=float(rng.uniform(30, 700)),
                returns=int(rng.random() < 0.05),
                adjusted=int(rng.choice([0, 0, 0, 500])),
                device_members=members,
                device_redemptions=0 if members == 0 else n * members,
            )
        )
    fraud: set[int] = set()
    for _farm in range(4):
        for _ in range(6):
            n = int(rng.integers(1, 3))
            fraud.add(len(rows))
            rows.append(
                model.Behaviour(
                    redemptions=n,
                    points=int(rng.integers(200, 3_000)) * n,
                    age_days=float(rng.uniform(30, 90)),
                    returns=0,
                    adjusted=0,
                    device_members=6,
                    device_redemptions=int(rng.integers(8, 13)),
                )
            )
    return rows, fraud


def _flagged(scores: Any, threshold: float) -> set[int]:
    return {i for i, v in enumerate(scores) if v >= threshold}


def test_the_model_sees_members_redeeming_from_one_device() -> None:
    """Seeded evaluation (figures in docs/risk.md): an anomaly score of 0.5 or more (15 of the
    default 30 points) counts as flagged. Without the device columns the farmed accounts look
    ordinary; with them the model finds them."""
    rows, fraud = _population(seed=2026)
    trained = model.fit(rows)
    after = model.anomalies(trained, rows)
    # the same forest over the member's own columns only: the model before devices were added
    x = np.array([b.vector()[:5] for b in rows])
    forest = IsolationForest(n_estimators=100, contamination="auto", random_state=7).fit(x)
    before = np.clip((-forest.score_samples(x) - 0.5) / 0.15, 0.0, 1.0)
    found_before, found_after = _flagged(before, 0.5), _flagged(after, 0.5)
    recall_before = len(found_before & fraud) / len(fraud)
    recall_after = len(found_after & fraud) / len(fraud)
    precision_before = domain.precision(found_before, fraud) or 0.0
    precision_after = domain.precision(found_after, fraud) or 0.0
    report = (recall_before, precision_before, recall_after, precision_after)
    assert recall_before <= 0.1, report
    assert recall_after >= 0.9, report
    assert precision_after > precision_before, report
    # and the member who names no device is not pushed up by the new columns
    quiet = model.Behaviour(1, 800, 200, 0, 0)
    assert model.anomaly(trained, quiet) < 0.2
