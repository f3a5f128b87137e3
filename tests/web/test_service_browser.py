"""The service desk in Chromium, in English and in Chinese: a member (phone size) sees a help
article while typing the subject, opens a missing-points dispute on one of their orders; an
operator finds it in the console's queue, answers and resolves it with a correction through
the adjustment flow; the member reads the answer and rates it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from patron.auth.principal import Principal
from patron.service import kb
from tests.web.conftest import sign_in
from tests.web.test_portal_browser import PHONE_SIZE, _member, _shop_order

pytestmark = pytest.mark.browser
ACTOR = Principal.system("tests")
WORDS = {
    "en-US": {"resolved": "Resolved", "applied": "Applied"},
    "zh-CN": {"resolved": "已解决", "applied": "已生效"},
}


def _portal_sign_in(page, live, phone: str) -> None:
    page.goto("/portal/")
    page.wait_for_url("**/portal/login")
    page.fill("#f-phone", phone)
    page.click("form[action='/portal/login/code'] button[type=submit]")
    page.wait_for_selector("#f-code")
    text = live.app.state.sms_channel.recent()[0].text
    page.fill("#f-code", re.search(r"\d{6}", text).group(0))  # type: ignore[union-attr]
    page.click("form[action='/portal/login/verify'] button[type=submit]")
    page.wait_for_url("**/portal/")


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_a_ticket_from_the_portal_resolved_in_the_console(live, new_page, lang):
    m = _member(live, "13911112222", name="Li Na")
    _shop_order(live, m.member_no, "R-900")
    with live.db.unit_of_work() as s:
        for locale, title in (("en", "Points not arrived yet"), ("zh_CN", "积分未到账怎么办")):
            kb.save(
                s,
                ACTOR,
                slug="points-late",
                locale=locale,
                title=title,
                body="…",
                keywords="points 积分 到账",
                now=live.clock.now(),
            )
    cookie = {"name": "patron_lang", "value": lang.replace("-", "_"), "url": live.url}
    phone = new_page(**PHONE_SIZE)
    phone.context.add_cookies([cookie])
    _portal_sign_in(phone, live, "13911112222")
    phone.goto("/portal/help")
    phone.fill("#f-subject", "积分没到账" if lang == "zh-CN" else "my points are missing")
    suggestion = phone.locator("[data-article='points-late']")
    expect(suggestion).to_be_visible()
    phone.select_option("#f-category", "missing_points")
    order = phone.locator("#f-order option", has_text="R-900").get_attribute("value")
    phone.select_option("#f-order", order)
    phone.fill("#f-body", "No points for this order")
    phone.click("form[action='/portal/help/tickets'] button[type=submit]")
    phone.wait_for_url(re.compile(r".*/portal/help/T\d{8}$"))
    ticket_no = phone.url.rsplit("/", 1)[1]

    console = new_page(viewport={"width": 1366, "height": 900})
    console.context.add_cookies([cookie])
    sign_in(console, live.staff("operator"))
    console.goto("/console/service")
    console.click(f"[data-ticket='{ticket_no}'] a[href='/console/service/{ticket_no}']")
    expect(console.locator("[data-dispute]")).to_contain_text("R-900")
    console.fill("#f-resolution", "100 points added" if lang == "en-US" else "已补发 100 积分")
    console.fill("#f-correction", "100")
    console.click(f"form[action='/console/service/{ticket_no}/resolve'] button[type=submit]")
    expect(console.locator("[data-correction='applied']")).to_contain_text(WORDS[lang]["applied"])
    expect(console.locator("[data-status]")).to_have_text(WORDS[lang]["resolved"])

    phone.reload()
    expect(phone.locator("[data-event='resolved']")).to_contain_text("100")
    phone.check("input[name=nps][value='10']")
    phone.check("input[name=satisfaction][value='5']")
    phone.click("[data-testid=survey] button[type=submit]")
    expect(phone.locator("[data-rated]")).to_be_visible()
    console.goto("/console/service/nps")
    expect(console.locator("[data-nps-overall]")).to_have_attribute("data-nps-overall", "100")
