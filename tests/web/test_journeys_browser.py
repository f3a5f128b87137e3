"""Browser: an operator writes a message template, previews it, builds a welcome journey one
step a line, sees a loop refused, then reads the saved journey as sentences and pauses it."""

from __future__ import annotations

import pytest

from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_operator_builds_a_welcome_journey(page, live):
    sign_in(page, live.staff("operator"))
    page.goto("/console/messages/templates")
    page.fill("input[name=code]", "welcome")
    page.fill("input[name=name]", "Welcome")
    page.fill("textarea[name=zh_body]", "{{name}}，欢迎加入！您有 {{points}} 积分。")
    page.fill("textarea[name=en_body]", "Welcome {{name}}: {{points}} points.")
    page.click("form[action='/console/messages/templates'] button[type=submit]")
    preview = page.locator("[data-testid=template-preview]")
    preview.wait_for()
    assert "王小明，欢迎加入！您有 2,350 积分。" in preview.inner_text()

    page.goto("/console/journeys")
    page.fill("input[name=code]", "welcome")
    page.fill("input[name=name]", "Welcome new members")
    page.select_option("select[name=trigger]", "registration")
    page.fill(
        "textarea[name=steps]", "send welcome\nwait 3 days\nif in segment x else go to step 1"
    )
    page.click("form[action='/console/journeys'] button[type=submit]")
    error = page.locator("[data-testid=steps-error]")
    error.wait_for()
    assert "loop" in error.inner_text()

    page.fill("textarea[name=steps]", "send welcome\nwait 3 days\npoints 200\ntag welcomed")
    page.click("form[action='/console/journeys'] button[type=submit]")
    page.wait_for_url("**/console/journeys/welcome")
    steps = page.locator(".journey-steps").inner_text()
    assert "Wait 3 days." in steps and "Give 200 points." in steps and "Add tag welcomed." in steps
    page.click("form[action='/console/journeys/welcome/pause'] button")
    page.wait_for_selector("form[action='/console/journeys/welcome/resume']")
    assert page.locator("[data-testid=journey-status]").inner_text() == "Paused"
