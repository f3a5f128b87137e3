"""Console sign-in in Chromium: roles limit the menu and the pages; language per user."""

from __future__ import annotations

import pytest

from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def test_sign_in_role_limits_and_sign_out(page, live):
    page.goto("/console/")
    assert "/console/login" in page.url  # not signed in: to sign-in, remembering where to go
    page.fill("#f-username", live.staff("clerk"))
    page.fill("#f-password", "wrong-password-1")
    page.click("button[type=submit]")
    assert page.locator("[data-error-for=form]").inner_text() == "Wrong username or password."

    clerk = live.staff("clerk")
    sign_in(page, clerk)
    nav = page.locator(".mainnav")
    assert nav.locator("[data-nav=desk]").count() == 1
    assert nav.locator("[data-nav=staff]").count() == 0  # not for clerks
    response = page.goto("/console/admin/staff")
    assert response.status == 403
    assert page.locator("[data-error-code=forbidden]").count() == 1

    page.click("text=Sign out")
    page.wait_for_url("**/console/login")
    page.goto("/console/")
    assert "/console/login" in page.url


def test_language_is_chosen_per_user_and_kept(page, live, new_page):
    admin = live.staff("admin")
    sign_in(page, admin)
    assert page.locator("[data-nav=dashboard]").inner_text() == "Dashboard"
    with page.expect_navigation():
        page.select_option("#lang-select", "zh_CN")  # submits the form on change
    assert page.locator("[data-nav=dashboard]").inner_text() == "概览"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    # Another browser (an English one) signing in as the same user gets the user's language.
    other = new_page()
    sign_in(other, admin)
    assert other.locator("[data-nav=dashboard]").inner_text() == "概览"
