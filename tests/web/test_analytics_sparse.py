"""Every analytics page and report on thin data (SQLite and PostgreSQL): an empty database, one
member, and members who all bought once. Each answers 200 and says what is missing."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from patron.analytics import alerts
from patron.analytics import scores as svc
from patron.web.console.analytics_reports import REPORTS
from tests.analytics.history import add_members, add_orders
from tests.web.test_analytics2_pages import _console

SH = ZoneInfo("Asia/Shanghai")
PAGES = ("/console/analytics", "/console/analytics/liability", "/console/analytics/alerts")


def _fill(database, clock, state: str) -> None:
    today = clock.now().astimezone(SH).date()
    with database.unit_of_work() as s:
        if state == "one-member":
            (m,) = add_members(s, 1, at=clock.now() - timedelta(days=30))
            add_orders(s, [(m, today - timedelta(days=3), 5000)])
        elif state == "one-purchase-each":
            ids = add_members(s, 60, at=clock.now() - timedelta(days=400))
            add_orders(s, [(m, today - timedelta(days=m * 5), 1000 + m) for m in ids])
        svc.run_scores(s, now=clock.now(), tz=SH)
        svc.evaluate(s, now=clock.now(), tz=SH)
        alerts.check(s, now=clock.now(), tz=SH)


@pytest.mark.parametrize("state", ["empty", "one-member", "one-purchase-each"])
def test_pages_and_reports_say_what_is_missing(client, database, clock, state):
    _fill(database, clock, state)
    c = _console(client, database, clock, role="admin")
    for page in PAGES:
        r = c.get(page)
        assert r.status_code == 200, page
    scores_page = c.get("/console/analytics").text
    if state == "empty":
        assert 'data-state="no-purchases"' in scores_page
    else:
        # Nobody bought twice: the models are not fitted, and the page says why.
        assert 'data-state="missing"' in scores_page
        assert "bought more than once" in scores_page
    assert 'data-state="no-alerts"' in c.get("/console/analytics/alerts").text
    for report in REPORTS:
        for fmt in ("csv", "xlsx"):
            r = c.get(f"/console/analytics/export/{report}", params={"format": fmt})
            assert r.status_code == 200, (report, fmt)
