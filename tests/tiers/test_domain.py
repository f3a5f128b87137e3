"""Pure tier rules: ladder validation, defaults, qualification, evaluation, windows, progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from patron.tiers.domain import (
    BP,
    TierLadder,
    apply_multiplier,
    default_ladder,
    evaluate,
    next_evaluation,
    progress,
    qualifying_tier,
    refund_demotion_target,
    upgrade_target,
    window_start,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def ladder_dict(**overrides: Any) -> dict[str, Any]:
    data = default_ladder().model_dump()
    data.update(overrides)
    return data


def test_default_ladder_is_the_seed_ladder() -> None:
    ladder = default_ladder()
    assert [t.code for t in ladder.tiers] == ["regular", "silver", "gold", "diamond"]
    assert [t.name_zh for t in ladder.tiers] == ["普通会员", "银卡会员", "金卡会员", "钻石会员"]
    assert [t.threshold for t in ladder.tiers] == [0, 1_000, 5_000, 20_000]
    assert [t.benefits.discount_bp for t in ladder.tiers] == [10_000, 9_500, 9_000, 8_500]
    assert ladder.get("diamond").benefits.points_multiplier_bp == 20_000
    assert ladder.get("diamond").benefits.free_orders_per_year == 1
    assert ladder.get("diamond").benefits.dedicated_service
    assert ladder.qualification_window == "rolling_12_months"
    # round-trips through JSON (it is stored as a program setting)
    assert TierLadder.model_validate_json(ladder.model_dump_json()) == ladder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["tiers"][2].update(threshold=1_000), "strictly increase"),
        (lambda d: d["tiers"][2].update(threshold=900), "strictly increase"),
        (lambda d: d["tiers"][0].update(threshold=10), "threshold 0"),
        (lambda d: d["tiers"][1].update(code="regular"), "unique"),
        (lambda d: d.update(tiers=d["tiers"][:2]), "at least 3"),
        (lambda d: d.update(tiers=d["tiers"] + d["tiers"][:2]), "at most 5"),
        (lambda d: d["tiers"][1].update(retention_threshold=2_000), "retention"),
        (lambda d: d["tiers"][1].update(threshold=-5), "greater than or equal"),
        (lambda d: d["tiers"][1]["benefits"].update(discount_bp=0), "greater than or equal"),
        (lambda d: d["tiers"][1]["benefits"].update(discount_bp=1.5), "integer"),
        (lambda d: d["tiers"][1].update(code="Silver Card"), "pattern"),
        (lambda d: d.update(qualification_window="weekly"), "rolling_12_months"),
        (lambda d: d.update(extra=1), "Extra inputs"),
    ],
)
def test_bad_ladders_are_rejected(change: Any, message: str) -> None:
    data = ladder_dict()
    change(data)
    with pytest.raises(ValidationError, match=message):
        TierLadder.model_validate(data)


def test_five_tier_ladder_accepted() -> None:
    data = ladder_dict()
    data["tiers"].append(
        {"code": "platinum", "name": "Platinum", "threshold": 50_000, "benefits": {}}
    )
    assert len(TierLadder.model_validate(data).tiers) == 5


@pytest.mark.parametrize(
    ("growth", "code"),
    [
        (0, "regular"),
        (999, "regular"),
        (1_000, "silver"),
        (4_999, "silver"),
        (5_000, "gold"),
        (20_000, "diamond"),
        (10**9, "diamond"),
    ],
)
def test_qualifying_tier(growth: int, code: str) -> None:
    assert qualifying_tier(default_ladder(), growth).code == code


def test_upgrade_is_immediate_and_never_a_downgrade() -> None:
    ladder = default_ladder()
    target = upgrade_target(ladder, "regular", 5_200)
    assert target is not None
    assert target.code == "gold"
    assert upgrade_target(ladder, "gold", 5_200) is None
    assert upgrade_target(ladder, "diamond", 10) is None
    # an unknown (removed) tier counts as the base tier
    target = upgrade_target(ladder, "vanished", 1_500)
    assert target is not None
    assert target.code == "silver"


def test_refund_demotion_only_when_enabled() -> None:
    ladder = default_ladder()
    assert refund_demotion_target(ladder, "gold", 100) is None
    ladder = ladder.model_copy(update={"demote_on_refund": True})
    target = refund_demotion_target(ladder, "gold", 1_200)
    assert target is not None
    assert target.code == "silver"
    assert refund_demotion_target(ladder, "gold", 5_000) is None


def test_evaluation_keeps_above_retention() -> None:
    ladder = default_ladder()
    # Gold keeps at 4,000 even though it needs 5,000 to qualify
    assert evaluate(ladder, "gold", 4_000, now=NOW, grace_until=None).action == "keep"


def test_evaluation_grace_then_downgrade() -> None:
    ladder = default_ladder()  # 30 grace days
    first = evaluate(ladder, "gold", 900, now=NOW, grace_until=None)
    assert first.action == "grace"
    assert first.tier == "gold"
    assert first.grace_until == NOW + timedelta(days=30)
    during = evaluate(
        ladder, "gold", 900, now=NOW + timedelta(days=29), grace_until=first.grace_until
    )
    assert (during.action, during.grace_until) == ("grace", first.grace_until)
    after = evaluate(
        ladder, "gold", 900, now=NOW + timedelta(days=30), grace_until=first.grace_until
    )
    # 900 keeps Silver (retention 800) — the highest lower tier whose retention is met
    assert (after.action, after.tier) == ("downgrade", "silver")
    # recovering during grace clears it
    ok = evaluate(ladder, "gold", 4_500, now=NOW + timedelta(days=5), grace_until=first.grace_until)
    assert (ok.action, ok.grace_until) == ("keep", None)


def test_evaluation_without_grace_downgrades_at_once() -> None:
    ladder = default_ladder().model_copy(update={"grace_days": 0})
    ev = evaluate(ladder, "diamond", 100, now=NOW, grace_until=None)
    assert (ev.action, ev.tier) == ("downgrade", "regular")


def test_evaluation_upgrades_too() -> None:
    ev = evaluate(default_ladder(), "silver", 25_000, now=NOW, grace_until=None)
    assert (ev.action, ev.tier) == ("upgrade", "diamond")


@given(
    current=st.sampled_from(["regular", "silver", "gold", "diamond"]), growth=st.integers(0, 10**6)
)
def test_evaluation_properties(current: str, growth: int) -> None:
    ladder = default_ladder().model_copy(update={"grace_days": 0})
    ev = evaluate(ladder, current, growth, now=NOW, grace_until=None)
    cur, new = ladder.index(current), ladder.index(ev.tier)
    if ev.action == "upgrade":
        assert new > cur
        assert growth >= ladder.get(ev.tier).threshold
    elif ev.action == "downgrade":
        assert new < cur
        assert growth >= ladder.get(ev.tier).keep_at
        assert growth < ladder.get(current).keep_at
    else:
        assert ev.action == "keep"
        assert new == cur


def test_window_start_rolling_and_calendar() -> None:
    # NOW is 2026-03-01 10:00 in Shanghai → rolling window starts 2025-03-02 local
    assert window_start("rolling_12_months", NOW, SH) == datetime(2025, 3, 1, 16, 0, tzinfo=UTC)
    assert window_start("calendar_year", NOW, SH) == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    leap = datetime(2028, 2, 29, 4, 0, tzinfo=UTC)
    assert window_start("rolling_12_months", leap, SH) == datetime(2027, 2, 28, 16, 0, tzinfo=UTC)


def test_next_evaluation() -> None:
    assert next_evaluation("calendar_year", NOW, SH) == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert next_evaluation("rolling_12_months", NOW, SH) == datetime(2027, 2, 28, 16, 0, tzinfo=UTC)
    leap = datetime(2028, 2, 29, 4, 0, tzinfo=UTC)
    assert next_evaluation("rolling_12_months", leap, SH) == datetime(
        2029, 2, 28, 16, 0, tzinfo=UTC
    )


def test_progress() -> None:
    ladder = default_ladder()
    p = progress(ladder, "silver", 3_000)
    assert (p.next, p.next_threshold, p.needed, p.progress_bp) == ("gold", 5_000, 2_000, 5_000)
    top = progress(ladder, "diamond", 30_000)
    assert (top.next, top.needed, top.progress_bp) == (None, 0, BP)
    # a member held in a tier by grace/override below its threshold shows 0 progress, not negative
    low = progress(ladder, "gold", 100)
    assert (low.needed, low.progress_bp) == (19_900, 0)


@given(growth=st.integers(0, 10**7), current=st.sampled_from(["regular", "silver", "gold"]))
def test_progress_bounds(growth: int, current: str) -> None:
    p = progress(default_ladder(), current, growth)
    assert 0 <= p.progress_bp <= BP
    assert p.needed >= 0


def test_apply_multiplier_rounds_down() -> None:
    assert apply_multiplier(99, 12_000) == 118
    assert apply_multiplier(100, 20_000) == 200
    assert isinstance(apply_multiplier(7, 15_000), int)
