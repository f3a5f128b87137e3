"""Risk review's pure rules: which rules fire, the score, the decision, the model."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
