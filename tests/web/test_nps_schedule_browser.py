"""The NPS survey schedule in Chromium, in English and in Chinese: an operator opens it from
the service desk's tabs, a value out of bounds is shown next to its field and saves nothing,
the corrected form saves and the page shows the saved values."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patron.service import tickets
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser
WORDS = {
    "en-US": {
        "tab": "Survey schedule",
        "error": "Must be at most 365.",
        "saved": "Survey schedule saved.",
    },
    "zh-CN": {"tab": "调查计划", "error": "不能大于 365。", "saved": "调查计划已保存。"},
}


def _schedule(live):
    with live.db.unit_of_work() as s:
        return tickets.settings(s).nps_schedule


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_an_operator_sets_the_nps_schedule(live, new_page, lang):
    page = new_page(viewport={"width": 1366, "height": 900})
    page.context.add_cookies(
        [{"name": "patron_lang", "value": lang.replace("-", "_"), "url": live.url}]
    )
    sign_in(page, live.staff("operator"))
    page.goto("/console/service/nps")
    page.get_by_role("link", name=WORDS[lang]["tab"]).click()
    page.wait_for_url("**/console/service/nps/schedule")
    expect(page.locator("h1")).to_have_text(WORDS[lang]["tab"])

    page.check("#f-enabled")
    page.fill("#f-interval_days", "400")
    page.fill("#f-sample", "50")
    page.click("#save")
    expect(page.locator("[data-error-for='interval_days']")).to_have_text(WORDS[lang]["error"])
    expect(page.locator("#f-interval_days")).to_have_value("400")  # what was typed stays
    assert _schedule(live).enabled is False

    page.fill("#f-interval_days", "7")
    page.click("#save")
    page.wait_for_url("**/console/service/nps/schedule")
    expect(page.locator("body")).to_contain_text(WORDS[lang]["saved"])
    expect(page.locator("#f-interval_days")).to_have_value("7")
    expect(page.locator("#f-enabled")).to_be_checked()
    saved = _schedule(live)
    assert (saved.enabled, saved.interval_days, saved.sample) == (True, 7, 50)
