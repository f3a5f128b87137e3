"""Browser: an operator previews a campaign's reach and cost, saves it and starts it."""

from __future__ import annotations

import pytest

from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_operator_previews_saves_and_starts_a_campaign(page, live):
    sign_in(page, live.staff("operator"))
    page.goto("/console/campaigns")
    page.fill("input[name=code]", "memberday")
    page.fill("input[name=name]", "Thursday member day")
    page.select_option("select[name=kind]", "weekly")
    page.fill("input[name=days]", "4")
    page.fill("input[name=multiplier]", "2")
    page.fill("input[name=budget_points]", "10000")
    page.click("button[value=preview]")
    preview = page.locator("[data-preview]")
    preview.wait_for()
    assert "9,500" in preview.inner_text() or "95.00" in preview.inner_text()
    page.click("button[value=create]")
    page.wait_for_url("**/console/campaigns")
    page.click("a[href='/console/campaigns/memberday']")
    page.click("button[value=active]")
    page.wait_for_selector("[data-results]")
    assert page.locator("[data-status]").first.inner_text() in ("Active", "进行中", "启用")
