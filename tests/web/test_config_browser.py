"""Configuration in a real browser: an operator changes the beauty coefficient, watches the
preview move before saving (htmx swaps only the preview box), saves, reloads and sees the saved
value; the points preview follows the share as it changes; a clerk is refused the configuration
pages."""

from __future__ import annotations

import pytest

from patron.auth.principal import Principal
from patron.orders import service as orders
from patron.program import service as program
from patron.rules.definitions import EarningRules
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def _saved_rules(live) -> EarningRules:
    with live.db.unit_of_work() as session:
        return orders.earning_rules(session)


#: the row of the beauty category (chosen from a list when there are categories)
BEAUTY = "input[value='beauty'], option[value='beauty']:checked"


def test_an_operator_previews_then_saves_a_category_coefficient(live, page):
    start = EarningRules.model_validate(
        {
            "category_coefficients": {"beauty": 12000},
            "windows": [{"kind": "monthly", "id": "member_day", "name": "Member day", "days": [5]}],
        }
    )
    with live.db.unit_of_work() as session:
        program.put_section(
            session, Principal.system("tests"), orders.EARNING_SECTION, start, now=live.clock.now()
        )
    sign_in(page, live.staff("operator"))
    page.goto("/console/config")
    page.click("a[href='/console/config/earning']")

    # Defaults: Gold, ¥300 on beauty, on the next member day (the 5th): 300 × 1.2 × 2 = 720
    # (the member day's ×2 beats Gold's ×1.4).
    box = page.locator("#earning-preview")
    assert page.input_value("#f-preview_at") == "2026-03-05T12:00"
    assert box.get_attribute("data-points") == "720"
    assert "720" in box.inner_text()

    page.evaluate("window.__samePage = true")
    row = page.locator("[data-row^='cat-']").filter(has=page.locator(BEAUTY))
    factor = row.locator("input[id$='-factor']")
    assert factor.input_value() == "1.2"
    factor.fill("1.5")
    page.click("#preview-button")
    page.locator("#earning-preview[data-points='900']").wait_for()
    assert "900" in box.inner_text()
    assert page.evaluate("window.__samePage") is True  # swapped in place, not a page load
    # Changing a field refreshes the preview by itself: ¥600 → 600 × 1.5 × 2.
    page.fill("#f-preview_amount", "600.00")
    page.press("#f-preview_amount", "Tab")
    page.locator("#earning-preview[data-points='1800']").wait_for()
    assert page.evaluate("window.__samePage") is True
    assert _saved_rules(live).category_coefficients == {"beauty": 12000}  # nothing saved yet

    page.click("#save")
    page.locator(".flash").wait_for()
    assert "Settings saved." in page.locator(".flash").inner_text()
    assert _saved_rules(live).category_coefficients == {"beauty": 15000}

    page.reload()
    row = page.locator("[data-row^='cat-']").filter(has=page.locator(BEAUTY))
    assert row.locator("input[id$='-factor']").input_value() == "1.5"
    assert page.locator("#earning-preview").get_attribute("data-points") == "900"


def test_the_points_preview_follows_the_share_as_it_is_typed(live, page):
    sign_in(page, live.staff("operator"))
    page.goto("/console/config/points")
    order = page.locator("#points-preview [data-fact='order']")
    assert order.get_attribute("data-fen") == "15000"  # 50 % of ¥300.00
    page.evaluate("window.__samePage = true")
    page.fill("#f-share", "30")
    page.press("#f-share", "Tab")
    page.locator("#points-preview [data-fact='order'][data-fen='9000']").wait_for()
    assert "¥90.00" in page.locator("#points-preview [data-fact='order']").inner_text()
    assert page.evaluate("window.__samePage") is True  # swapped in place, not a page load
    with live.db.unit_of_work() as session:
        assert orders.pricing_settings(session).max_points_share_bp == 5000  # nothing saved


def test_a_bad_value_is_shown_next_to_its_field_and_not_saved(live, page):
    sign_in(page, live.staff("operator"))
    page.goto("/console/config/earning")
    page.fill("#f-base_per", "1.005")
    page.click("#save")
    error = page.locator("[data-error-for='base_per']")
    error.wait_for()
    assert "at most 2 decimals" in error.inner_text()
    assert page.input_value("#f-base_per") == "1.005"
    assert _saved_rules(live) == EarningRules()


def test_a_clerk_cannot_open_the_configuration(live, page):
    sign_in(page, live.staff("clerk"))
    assert page.locator("nav.mainnav a[data-nav='config']").count() == 0
    response = page.goto("/console/config")
    assert response is not None
    assert response.status == 403
    assert page.locator("[data-error-code='forbidden']").count() == 1
