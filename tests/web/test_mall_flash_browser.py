"""Browser: the flash sale's waiting page counts down on the server's clock and enables the
redeem button at the start (the page's clock is paused and moved by Playwright, so nothing
depends on real time passing); the redemption then leads to the code."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.mall import redemptions
from patron.mall import service as mall
from tests.web.test_mall_browser import _shop
from tests.web.test_portal_browser import ACTOR, PHONE_SIZE, SH, _member, _sign_in

pytestmark = pytest.mark.browser


def test_the_waiting_page_opens_the_button_at_the_start(live, new_page):
    member = _member(live, "13911119003")
    _shop(live, member.id)
    start = live.clock.now() + timedelta(minutes=2)
    with live.db.unit_of_work() as s:
        ctx = mall.make_ctx(s, ACTOR, live.clock.now(), SH)
        sale = redemptions.create_flash_sale(
            s,
            ctx,
            "MUG",
            points=100,
            quantity=3,
            per_member_limit=1,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
        )
        sale_id = sale.id
    phone = new_page(**PHONE_SIZE)
    _sign_in(phone, live, "13911119003")
    # this device's clock is a day off the server's (the page counts on the server's), and
    # stands still until the test moves it
    device = live.clock.now() - timedelta(days=1)
    phone.clock.install(time=device)
    phone.clock.pause_at(device + timedelta(seconds=1))
    phone.goto(f"/portal/mall/flash/{sale_id}")
    button = phone.locator("[data-flash-redeem]")
    assert button.is_disabled()
    assert phone.locator("[data-countdown]").inner_text() == "2:00"
    phone.clock.run_for(61_000)
    assert phone.locator("[data-countdown]").inner_text() == "0:59"
    assert button.is_disabled()
    phone.clock.run_for(59_000)  # the second it opens
    assert button.is_enabled()
    assert phone.locator("[data-flash-wait]").get_attribute("data-state") == "open"
    live.clock.set(start)
    button.click()
    phone.wait_for_url("**/portal/mall/codes/*")
    assert phone.locator("[data-status=reserved]").count() == 1
