"""Browser: a member redeems a gift in the portal (list → gift → confirm), shows the code, and a
clerk verifies it at the desk; the second scan is refused. A member draws the lottery."""

from __future__ import annotations

import pytest

from patron.catalog import service as catalog
from patron.catalog.schemas import StoreIn
from patron.ledger import flows
from patron.mall import lottery, stock
from patron.mall import service as mall
from patron.mall.schemas import GiftIn, PoolIn, PrizeIn
from tests.web.conftest import sign_in
from tests.web.test_portal_browser import ACTOR, PHONE_SIZE, SH, _member, _sign_in

pytestmark = pytest.mark.browser


def _shop(live, member_id: int) -> None:
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        catalog.upsert_store(
            s, ACTOR, StoreIn(code="SH001", name="Jing'an Store", region="East China"), now=now
        )
        mall.upsert_gift(
            s,
            ACTOR,
            GiftIn(code="MUG", name="Ceramic mug", category="home", points=300),
            now=now,
        )
        ctx = mall.make_ctx(s, ACTOR, now, SH)
        stock.receive(s, ctx, "MUG", "east", 5)
        flows.earn(s, ctx, member_id, points=1000, source_type="test", source_id="seed")


def test_redeem_in_the_portal_and_verify_at_the_desk(live, new_page):
    member = _member(live, "13911119001")
    _shop(live, member.id)
    phone = new_page(**PHONE_SIZE)
    _sign_in(phone, live, "13911119001")
    phone.click(".tabbar >> text=Mall")
    phone.wait_for_url("**/portal/mall")
    phone.click("[data-gift=MUG] a")  # step 2: the gift
    phone.wait_for_url("**/portal/mall/gifts/MUG")
    phone.select_option("#f-store", "SH001")
    phone.click("#redeem-button")  # step 3: confirm
    phone.wait_for_url("**/portal/mall/codes/*")
    code = phone.locator("[data-code]").get_attribute("data-code")
    assert code and phone.locator(".qr svg").count() == 1
    assert phone.locator("[data-status=reserved]").count() == 1

    desk = new_page()
    sign_in(desk, live.staff("clerk"))
    desk.goto("/console/desk/gifts")
    desk.select_option("#f-store_code", "SH001")
    desk.click("text=Use this store")
    desk.wait_for_url("**/console/desk/gifts")
    desk.fill("#f-code", code.lower())  # a scanner or a typed code, any case
    desk.press("#f-code", "Enter")
    desk.wait_for_selector("[data-testid=verified]")
    assert "Ceramic mug" in desk.inner_text("[data-testid=verified]")
    desk.fill("#f-code", code)
    desk.press("#f-code", "Enter")
    desk.wait_for_selector("[data-error-for=code]")
    assert "already used" in desk.inner_text("[data-error-for=code]")

    phone.goto("/portal/mall/orders")
    assert phone.locator(f'[data-redemption="{code}"][data-status=fulfilled]').count() == 1
    phone.goto("/portal/points")
    assert phone.locator("[data-available]").get_attribute("data-available") == "700"


def test_draw_the_lottery_in_the_portal(live, new_page):
    member = _member(live, "13911119002")
    _shop(live, member.id)
    with live.db.unit_of_work() as s:
        ctx = mall.make_ctx(s, ACTOR, live.clock.now(), SH)
        bonus = PrizeIn(name="Bonus", kind="points", award_points=50, ppm=1_000_000)
        lottery.put_pool(
            s,
            ctx,
            PoolIn(
                code="WHEEL",
                name="Lucky wheel",
                cost_points=20,
                prizes=[bonus.model_copy(update={"is_fallback": True})],
            ),
        )
    phone = new_page(**PHONE_SIZE)
    _sign_in(phone, live, "13911119002")
    phone.goto("/portal/mall")
    phone.click("a[href='/portal/mall/lottery']")
    phone.wait_for_url("**/portal/mall/lottery")
    assert phone.locator("[data-pool=WHEEL] [data-left]").get_attribute("data-left") == "3"
    phone.click("[data-pool=WHEEL] button")
    phone.wait_for_selector("[data-testid=draw-result]")
    assert phone.locator("[data-testid=draw-result]").get_attribute("data-prize") == "Bonus"
    assert phone.locator("[data-available]").get_attribute("data-available") == "1030"
