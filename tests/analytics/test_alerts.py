"""Anomaly alerts on daily metrics (SQLite and PostgreSQL): a spike raises exactly one alert,
a rerun raises none, a busy weekend that is usual raises none, thresholds alert by themselves."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from patron.analytics import alerts, rfm
from patron.analytics.models import AnalyticsAlert
from patron.auth.principal import Principal
from patron.program import service as program
from patron.webhooks.models import WebhookEvent
from tests.analytics.history import add_members, add_orders
from tests.conftest import START

SH = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 3, 1)  # a Sunday; yesterday is Saturday


def _history(s, *, spike: int | None = None):
    """Ten weeks of orders: about 30 a weekday, 60 on weekends; ``spike`` orders yesterday."""
    (m,) = add_members(s, 1, at=START - timedelta(days=400))
    orders = []
    for back in range(1, 71):
        day = TODAY - timedelta(days=back)
        n = (60 if day.weekday() >= 5 else 30) + back % 3
        if back == 1 and spike is not None:
            n = spike
        orders += [(m, day, 1000)] * n
    add_orders(s, orders)


def _alerts(s):
    return s.scalars(select(AnalyticsAlert)).all()


def test_a_spike_raises_exactly_one_alert_and_a_rerun_none(database):
    with database.unit_of_work() as s:
        _history(s, spike=240)
        new = alerts.check(s, now=START, tz=SH)
        assert [(a.metric, a.scope, a.day, a.value, a.reason) for a in new] == [
            ("orders", "", TODAY - timedelta(days=1), 240, "seasonal")
        ]
        (a,) = new
        # Saturdays before: 60, 61, 62 … → expected about 61.
        assert 59 <= a.expected <= 63 and a.high < 240
        events = s.scalars(select(WebhookEvent).where(WebhookEvent.event_type == "analytics.alert"))
        (event,) = events.all()
        assert event.payload["metric"] == "orders" and event.payload["value"] == 240
        assert alerts.check(s, now=START, tz=SH) == []
        assert alerts.check(s, now=START + timedelta(hours=1), tz=SH) == []
        assert len(_alerts(s)) == 1
        assert len(s.scalars(select(WebhookEvent)).all()) == 1


def test_a_usual_weekend_is_no_anomaly(database):
    with database.unit_of_work() as s:
        _history(s)  # Saturday 60 against weekdays of 30: usual for a Saturday
        assert alerts.check(s, now=START, tz=SH) == []


def test_a_drop_alerts_and_small_counts_do_not(database):
    with database.unit_of_work() as s:
        _history(s, spike=0)
        (a,) = alerts.check(s, now=START, tz=SH)
        assert (a.metric, a.value, a.low > 0) == ("orders", 0, True)
    with database.unit_of_work() as s:
        program.put_section(
            s,
            Principal.system("tests"),
            rfm.SECTION,
            rfm.ModelSettings(alert_min_count=1000),
            now=START,
        )
        assert alerts.check(s, now=START + timedelta(days=1), tz=SH) == []


def test_thresholds_alert_without_history(database):
    with database.unit_of_work() as s:
        (m,) = add_members(s, 1, at=START - timedelta(days=400))
        add_orders(s, [(m, TODAY - timedelta(days=1), 1000)] * 3)
        assert alerts.check(s, now=START, tz=SH) == []
        settings = rfm.ModelSettings(alert_thresholds={"orders": {"max": 2}})
        program.put_section(s, Principal.system("tests"), rfm.SECTION, settings, now=START)
        (a,) = alerts.check(s, now=START, tz=SH)
        assert (a.metric, a.reason, a.value, a.high) == ("orders", "threshold", 3, 2)


def test_thresholds_name_known_metrics():
    with pytest.raises(ValidationError, match="no such daily metric: sales"):
        rfm.ModelSettings(alert_thresholds={"sales": {"max": 1}})
