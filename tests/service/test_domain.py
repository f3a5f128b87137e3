"""The service desk's pure rules: SLA targets (most specific wins, within 5 min – 2 h), the
dedicated queue of high tiers, breach, NPS and the knowledge base's search terms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from patron.service import domain
from patron.service.domain import ServiceSettings, SlaTarget


def test_the_most_specific_target_wins() -> None:
    s = ServiceSettings()
    assert domain.response_minutes(s, "other", "regular") == 120  # the default
    assert domain.response_minutes(s, "missing_points", "regular") == 60  # category
    assert domain.response_minutes(s, "missing_points", "gold") == 30  # tier beats category
    assert domain.response_minutes(s, "complaint", "diamond") == 5  # both
    assert domain.response_minutes(s, "other", "diamond") == 15


def test_urgent_halves_the_target_but_never_below_five_minutes() -> None:
    s = ServiceSettings()
    assert domain.response_minutes(s, "other", "regular", "urgent") == 60
    assert domain.response_minutes(s, "complaint", "diamond", "urgent") == 5


def test_targets_stay_between_five_minutes_and_two_hours() -> None:
    with pytest.raises(ValidationError):
        SlaTarget(minutes=4)
    with pytest.raises(ValidationError):
        SlaTarget(minutes=121)
    with pytest.raises(ValidationError):
        ServiceSettings(targets=[SlaTarget(tier="gold", minutes=10)] * 2)


def test_high_tiers_go_to_the_vip_queue() -> None:
    s = ServiceSettings(vip_tiers=["gold", "diamond"])
    assert domain.queue_of(s, "gold") == "vip"
    assert domain.queue_of(s, "silver") == "standard"


def test_breach_is_past_due_without_an_answer() -> None:
    due = datetime(2026, 12, 1, 10, tzinfo=UTC)
    later = due + timedelta(seconds=1)
    assert domain.breached(due, None, "open", later)
    assert not domain.breached(due, None, "open", due)
    assert not domain.breached(due, due, "in_progress", later)
    assert not domain.breached(due, None, "resolved", later)


def test_nps() -> None:
    assert domain.nps([]) is None
    assert domain.nps([10, 9, 8, 7, 6, 0]) == 0
    assert domain.nps([10, 10, 10, 3]) == 50
    assert domain.nps_band(9) == "promoter" and domain.nps_band(7) == "passive"
    assert domain.nps_band(6) == "detractor"


def test_search_terms_of_chinese_and_english() -> None:
    assert domain.terms("积分没到账") == ["积分", "分没", "没到", "到账"]
    assert domain.terms("Missing points, order 123!") == ["missing", "points", "order", "123"]
    score = domain.relevance(domain.terms("积分没到账"), "积分未到账怎么办", "", "")
    assert score == 6  # 积分 and 到账 in the title
    assert domain.relevance(domain.terms("refund"), "Points", "no match", "") == 0
