"""Coupons in Chromium: the member's wallet in the portal (codes, expiry soon), a desk sale
with a coupon the clerk types, and the console issuing a template to a list."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from patron.auth.principal import Principal
from patron.coupons import service as coupons
from patron.coupons.domain import TemplateRules
from patron.coupons.models import Coupon
from patron.ledger.service import Ctx
from patron.orders.models import Order
from tests.web.conftest import sign_in
from tests.web.test_desk_flow import LANDSCAPE, _seed
from tests.web.test_portal_browser import _sign_in

pytestmark = pytest.mark.browser
SH = ZoneInfo("Asia/Shanghai")
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def _give(live, member_id, *, days=30, code="T200"):
    with live.db.unit_of_work() as s:
        ctx = Ctx(Principal.system("tests"), live.clock.now(), SH)
        coupons.put_template(
            s,
            ctx,
            code,
            name="满 200 减 30",
            rules=TemplateRules(
                kind="threshold", amount_fen=3000, min_spend_fen=20000, valid_days=days
            ),
            total_quantity=None,
            per_member_limit=5,
            points_price=0,
            status="active",
        )
        coupon, _ = coupons.issue(s, ctx, code, member_id, reason="manual", ref="b1")
        return coupon.code


def test_the_wallet_shows_codes_and_what_expires_soon(live, new_page):
    (_no1, id1), _ = _seed(live)
    soon = _give(live, id1, days=2, code="SOON")
    later = _give(live, id1, days=30, code="LATER")
    page = new_page(**PHONE)
    _sign_in(page, live, "13900005555")
    page.goto("/portal/me")
    page.get_by_role("link", name="My coupons").click()
    cards = page.get_by_test_id("coupon")
    expect(cards).to_have_count(2)
    first = page.locator(f"[data-code='{soon}']")
    expect(first).to_contain_text(soon)
    expect(first).to_contain_text("¥30.00 off orders of ¥200.00")
    expect(first.get_by_test_id("expiring")).to_be_visible()
    expect(first).to_contain_text("Valid until 2026-03-02")
    expect(page.locator(f"[data-code='{later}']").get_by_test_id("expiring")).to_have_count(0)


def test_a_desk_sale_with_a_coupon(live, new_page):
    (no1, id1), _ = _seed(live)
    code = _give(live, id1)
    page = new_page(viewport=LANDSCAPE, has_touch=True)
    sign_in(page, live.staff("clerk"))
    page.goto("/console/desk")
    page.select_option("#f-store_code", "SH001")
    page.get_by_role("button", name="Use this store").click()
    page.fill("#f-q", "13900005555")
    page.press("#f-q", "Enter")
    expect(page.get_by_test_id("member")).to_contain_text("王芳")
    page.fill("#f-add", "BEA-1")
    page.press("#f-add", "Enter")
    expect(page.get_by_test_id("total")).to_have_text("¥199.00")
    # below the threshold: the clerk reads why
    page.fill("#f-coupons", code.lower())
    page.get_by_role("button", name="Apply coupons").click()
    expect(page.locator("[data-error-for=coupons]")).to_contain_text("minimum spend")
    page.fill("#f-add", "FRE-1")
    page.press("#f-add", "Enter")
    expect(page.get_by_test_id("coupon-applied")).to_have_text("−¥30.00")
    expect(page.get_by_test_id("total")).to_have_text("¥181.50")
    order_no = page.get_by_test_id("order-no").inner_text()
    page.get_by_role("button", name="Commit sale").click()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    expect(page.get_by_test_id("receipt-paid")).to_have_text("¥181.50")
    with live.db.unit_of_work() as s:
        order_id = s.scalar(select(Order.id).where(Order.external_id == order_no))
        coupon = s.scalar(select(Coupon).where(Coupon.code == code))
        assert coupon is not None and coupon.status == "redeemed"
        assert coupon.order_id == order_id and coupon.discount_fen == 3000
    assert no1


def test_the_console_creates_a_template_and_issues_it_to_a_list(live, new_page):
    (no1, _), (no2, _) = _seed(live)
    page = new_page(viewport={"width": 1366, "height": 900})
    sign_in(page, live.staff("operator"))
    page.goto("/console/coupons")
    form = page.get_by_test_id("template-form")
    form.locator("#f-code").fill("T200")
    form.locator("#f-name").fill("满 200 减 30")
    form.locator("#f-kind").select_option("threshold")
    form.locator("#f-amount").fill("30")
    form.locator("#f-min_spend").fill("20")
    form.get_by_role("button", name="Save template").click()
    expect(form.locator("[data-error-for=kind]")).to_be_visible()
    form.locator("#f-min_spend").fill("200")
    form.get_by_role("button", name="Save template").click()
    expect(page.locator("tr[data-template='T200']")).to_be_visible()
    issue = page.get_by_test_id("issue-form")
    issue.locator("#f-member_nos").fill(f"{no1}\n{no2}")
    issue.locator("#f-ref").fill("VIP-1")
    issue.get_by_role("button", name="Issue").click()
    expect(page.get_by_test_id("issue-result")).to_contain_text("2 coupons of T200 issued")
    expect(page.locator("tr[data-template='T200']")).to_contain_text("2")
