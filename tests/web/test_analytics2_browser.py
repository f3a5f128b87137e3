"""Anomaly alerts and report downloads in Chromium: an analyst follows the link from the member
scores page to the alerts, reads the spike in a sentence, and downloads the alerts as CSV."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from patron.analytics import alerts
from tests.analytics.test_alerts import _history
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def test_analyst_reads_an_alert_and_downloads_it(live, new_page):
    with live.db.unit_of_work() as s:
        _history(s, spike=240)
        alerts.check(s, now=live.clock.now(), tz=ZoneInfo("Asia/Shanghai"))
    page = new_page(extra_http_headers={"Accept-Language": "en-US"})
    sign_in(page, live.staff("analyst"))
    page.goto("/console/analytics")
    page.get_by_role("link", name="Anomaly alerts").first.click()
    page.wait_for_url("**/console/analytics/alerts")
    item = page.locator('[data-alert="orders"]')
    assert "240 where about 61 was expected" in item.inner_text()
    with page.expect_download() as download:
        page.locator('a[data-export="csv"]').click()
    with open(download.value.path(), encoding="utf-8-sig") as f:
        text = f.read()
    assert text.splitlines()[0].startswith("Day,Metric,Store,Value")
    assert ",Orders,,240," in text
