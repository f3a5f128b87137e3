"""Browser, in Chinese: an operator writes a message template and previews it, then builds a
welcome journey by picking each step's kind and values (no typed keywords), is told which step
is incomplete, saves, reads the journey as sentences and pauses it."""

from __future__ import annotations

import pytest

from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser

#: classes htmx puts on what it is requesting, swapping or settling: once none is left, the
#: new steps are wired (a change made before that sends nothing)
BUSY = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"


def _settled(page) -> None:
    page.wait_for_function(f"() => !document.querySelector({BUSY!r})")


def test_an_operator_builds_a_welcome_journey_in_chinese(new_page, live):
    page = new_page()
    sign_in(page, live.staff("operator"))
    page.goto("/console/messages/templates")
    with page.expect_navigation():
        page.select_option("#lang-select", "zh_CN")
    page.fill("input[name=code]", "welcome")
    page.fill("input[name=name]", "欢迎")
    page.fill("textarea[name=zh_body]", "{{name}}，欢迎加入！您有 {{points}} 积分。")
    page.fill("textarea[name=en_body]", "Welcome {{name}}: {{points}} points.")
    page.click("form[action='/console/messages/templates'] button[type=submit]")
    preview = page.locator("[data-testid=template-preview]")
    preview.wait_for()
    assert "王小明，欢迎加入！您有 2,350 积分。" in preview.inner_text()

    page.goto("/console/journeys")
    page.fill("input[name=code]", "welcome")
    page.fill("input[name=name]", "新会员欢迎")
    page.select_option("select[name=trigger]", "registration")
    editor = page.locator("#steps-editor")
    assert "第 1 步" in editor.inner_text()
    page.select_option("select[name='s0.template']", "welcome")
    page.click("[data-add-step]")
    page.locator("select[name='s1.kind']").wait_for()
    _settled(page)
    page.select_option("select[name='s1.kind']", "wait")  # the row shows the wait's inputs
    page.locator("input[name='s1.amount']").fill("3")
    page.click("[data-add-step]")
    page.locator("select[name='s2.kind']").wait_for()
    _settled(page)
    page.click("form[action='/console/journeys'] button.button:not(.secondary)")
    error = page.locator("[data-testid=steps-error]")
    error.wait_for()
    assert error.inner_text() == "第 3 步：请选择此步骤要做什么，或将其删除。"
    assert page.locator("li.step-row.invalid").get_attribute("data-step") == "3"

    page.select_option("select[name='s2.kind']", "points")
    page.locator("input[name='s2.points']").fill("200")
    page.click("form[action='/console/journeys'] button.button:not(.secondary)")
    page.wait_for_url("**/console/journeys/welcome")
    steps = page.locator(".journey-steps").inner_text()
    assert "等待 3 天。" in steps and "赠送 200 积分。" in steps
    page.click("form[action='/console/journeys/welcome/pause'] button")
    page.wait_for_selector("form[action='/console/journeys/welcome/resume']")
    assert page.locator("[data-testid=journey-status]").inner_text() == "已暂停"
