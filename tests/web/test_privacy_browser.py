"""The erasure workflow in Chromium, in English and in Chinese: a member asks for erasure in
the portal (phone size); a privacy officer finds the request in the console, is stopped until
the irreversible step is confirmed, then erases the data; the member's page no longer names
them."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.conftest import sign_in
from tests.web.test_portal_browser import PHONE_SIZE, _member
from tests.web.test_service_browser import _portal_sign_in

pytestmark = pytest.mark.browser
WORDS = {
    "en-US": {"confirm": "Tick the box to confirm", "erased": "Erased"},
    "zh-CN": {"confirm": "请勾选", "erased": "已注销"},
}


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_a_member_asks_for_erasure_and_an_officer_erases(live, new_page, lang):
    m = _member(live, "13911113333", name="Qian Wei")
    cookie = {"name": "patron_lang", "value": lang.replace("-", "_"), "url": live.url}
    phone = new_page(**PHONE_SIZE)
    phone.context.add_cookies([cookie])
    _portal_sign_in(phone, live, "13911113333")
    phone.goto("/portal/data")
    phone.fill("#f-reason", "moving abroad")
    phone.check("#f-confirm")
    phone.click("form[action='/portal/data/erasure'] button[type=submit]")
    expect(phone.locator("[data-erasure=open]")).to_be_visible()

    console = new_page(viewport={"width": 1366, "height": 900})
    console.context.add_cookies([cookie])
    sign_in(console, live.staff("admin"))
    console.goto("/console/privacy/erasure")
    row = console.locator("[data-erasure-request]", has_text=m.member_no)
    expect(row).to_contain_text("moving abroad")
    row.locator("button.danger").click()  # not confirmed: nothing is erased
    expect(console.locator("[role=alert]")).to_contain_text(WORDS[lang]["confirm"])
    row = console.locator("[data-erasure-request]", has_text=m.member_no)
    row.locator("input[name=confirm]").check()
    row.locator("button.danger").click()
    console.wait_for_url("**/console/privacy/erasure")
    expect(console.locator("[data-erasure-request]", has_text=m.member_no)).to_have_count(0)
    console.goto(f"/console/members/{m.member_no}")
    expect(console.locator("main")).not_to_contain_text("Qian Wei")
    expect(console.locator("main")).to_contain_text(WORDS[lang]["erased"])
