"""The member portal in Chromium at a phone's size (390×844): sign-in with the demo SMS code,
the member card's QR token as the clerk desk resolves it, the expiry notice, daily check-in,
the profile bonus once, my data, and another member's order refused."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.errors import Unauthorized
from patron.ledger import flows
from patron.ledger import queries as ledger_queries
from patron.ledger.domain import compute_expiry, last_valid_day
from patron.ledger.service import Ctx, PointsSettings
from patron.members import card
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import MemberCreate
from patron.orders import service as orders
from patron.orders.schemas import OrderIn
from patron.privacy.models import ErasureRequest
from tests.factories import order_body
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser
SH = ZoneInfo("Asia/Shanghai")
PHONE_SIZE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
ACTOR = Principal.system("tests")


def _member(live, phone: str, **fields) -> Member:
    with live.db.unit_of_work() as s:
        m = members.register(
            s,
            ACTOR,
            live.app.state.cipher,
            MemberCreate(phone=phone, channel="web", **fields),
            now=live.clock.now(),
            tz=SH,
        )
        s.expunge(m)
        return m


def _shop_order(live, member_no: str, ext: str) -> int:
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        if not catalog.store_exists(s, "SH001"):
            catalog.upsert_store(
                s, ACTOR, StoreIn(code="SH001", name="Jing'an Store", region="East"), now=now
            )
            for code in ("beauty", "fresh"):
                catalog.upsert_category(s, ACTOR, CategoryIn(code=code, name=code), now=now)
            for sku, cat, price in (("BEA-1", "beauty", 19900), ("FRE-1", "fresh", 1250)):
                catalog.upsert_product(
                    s,
                    ACTOR,
                    ProductIn(sku=sku, name=sku, category_code=cat, price_fen=price),
                    now=now,
                )
        order, _ = orders.ingest_order(
            s, ACTOR, OrderIn(**order_body(member_no, ext=ext)), now=now, tz=SH
        )
        return order.id


def _sign_in(page, live, phone: str, *, via_demo_page: bool = False) -> None:
    page.goto("/portal/")
    page.wait_for_url("**/portal/login")
    page.fill("#f-phone", phone)
    page.click("text=Send code")
    page.wait_for_selector("#f-code")
    if via_demo_page:
        inbox = page.context.new_page()
        inbox.goto("/portal/demo/sms")
        text = inbox.locator("#sms-list li .sms-text").first.inner_text()
        inbox.close()
    else:
        text = live.app.state.sms_channel.recent()[0].text
    code = re.search(r"\d{6}", text).group(0)  # type: ignore[union-attr]
    page.fill("#f-code", code)
    page.click("button[type=submit] >> text=Sign in")
    page.wait_for_url("**/portal/")


def test_sign_in_card_token_and_expiry_notice(live, new_page):
    m = _member(live, "13911110001", name="Wang Fang")
    with live.db.unit_of_work() as s:
        ctx = Ctx(ACTOR, live.clock.now(), SH)
        flows.earn(s, ctx, m.id, points=300, source_type="test", source_id="gift")
    page = new_page(**PHONE_SIZE)
    _sign_in(page, live, "139 1111 0001", via_demo_page=True)

    no = m.member_no
    assert page.locator("[data-member-no]").inner_text() == f"{no[:4]} {no[4:8]} {no[8:]}"
    assert page.locator("[data-tier]").inner_text() == "Regular"
    assert page.locator("#card-qr svg").count() == 1
    token = page.locator("[data-card-token]").get_attribute("data-card-token")
    key = live.app.state.keys["token_key"]
    # the clerk's scanner types the code into the desk's lookup field and presses Enter
    desk = new_page(viewport={"width": 1024, "height": 768})
    sign_in(desk, live.staff("clerk"))
    desk.goto("/console/desk")
    desk.fill("#f-q", token)
    desk.press("#f-q", "Enter")
    expect(desk.get_by_test_id("member")).to_contain_text("Wang Fang")
    assert desk.url.endswith(f"/console/desk?member={no}")
    # the expiry notice: 300 points, valid through the last day of the default 365 days
    expires = compute_expiry(live.clock.now(), PointsSettings().expiry, SH)
    assert expires is not None
    day = last_valid_day(expires, SH).isoformat()
    notice = page.locator(".notice.expiry")
    assert notice.inner_text() == f"300 points expire on {day}"
    assert page.locator("[data-available]").get_attribute("data-available") == "300"

    # a screenshot of the code is useless three minutes later; the page shows a fresh one
    live.clock.advance(timedelta(minutes=3))
    with live.db.unit_of_work() as s, pytest.raises(Unauthorized):
        card.resolve(s, token, key, live.clock.now())
    desk.goto("/console/desk")
    desk.fill("#f-q", token)
    desk.press("#f-q", "Enter")
    expect(desk.locator("[data-error-for=q]")).to_be_visible()  # the desk refuses it too
    page.reload()
    fresh = page.locator("[data-card-token]").get_attribute("data-card-token")
    assert fresh != token
    with live.db.unit_of_work() as s:
        assert card.resolve(s, fresh, key, live.clock.now()).id == m.id

    # the bottom tab bar leads to each area; the page fits the phone's width
    page.click(".tabbar >> text=Tier")
    page.wait_for_url("**/portal/tier")
    assert "1,000 more growth to reach Silver." in page.inner_text("main")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_check_in_once_a_day_and_the_streak(live, new_page):
    m = _member(live, "13911110002")
    page = new_page(**PHONE_SIZE)
    _sign_in(page, live, "13911110002")
    page.goto("/portal/checkin")
    stale = page.context.new_page()  # the same page left open in a second tab
    stale.goto("/portal/checkin")
    with page.expect_navigation():
        page.click("#checkin-button")
    assert page.locator(".flash").inner_text() == "Checked in!"
    assert page.locator(".checkin").get_attribute("data-streak") == "1"
    assert page.locator("button:has-text('Checked in today')").is_disabled()
    # the second check-in of the day is refused, and pays nothing
    with stale.expect_navigation():
        stale.click("#checkin-button")
    assert stale.locator("[data-error-for=form]").inner_text() == (
        "You have already checked in today. Come back tomorrow!"
    )
    with live.db.unit_of_work() as s:
        assert ledger_queries.balance(s, m.id, live.clock.now()).available == 5

    live.clock.advance(timedelta(days=1))
    page.goto("/portal/checkin")
    assert page.locator(".checkin").get_attribute("data-checked-in") == "no"
    with page.expect_navigation():
        page.click("#checkin-button")
    assert page.locator(".checkin").get_attribute("data-streak") == "2"
    assert page.locator(".big-number").inner_text() == "2-day streak"
    assert page.locator(".calendar [data-done]").evaluate_all(
        "els => els.map(e => e.dataset.done)"
    ) == ["1", "2"]
    with live.db.unit_of_work() as s:
        assert ledger_queries.balance(s, m.id, live.clock.now()).available == 10
    page.goto("/portal/points")
    assert page.locator(".history-entry").first.inner_text().startswith("Daily check-in")


def test_profile_completion_bonus_once(live, new_page):
    m = _member(live, "13911110003")
    page = new_page(**PHONE_SIZE)
    _sign_in(page, live, "13911110003")
    page.goto("/portal/profile")
    assert page.locator("[data-bonus]").get_attribute("data-bonus") == "200"
    # a bad email is refused next to the field, nothing saved
    page.fill("#f-name", "Li Na")
    page.fill("#f-email", "li-at-example")
    with page.expect_navigation():
        page.click("button:text-is('Save')")
    assert page.locator("[data-error-for=email]").is_visible()
    page.fill("#f-email", "lina@example.com")
    page.fill("#f-birthday", "1992-07-08")
    page.select_option("#f-gender", "female")
    page.fill("#f-city", "Suzhou")
    page.select_option("#f-preferred_channel", "wechat")
    page.check("input[name=consent_wechat]")
    with page.expect_navigation():
        page.click("button:text-is('Save')")
    assert page.locator(".flash").inner_text() == (
        "Profile saved. You earned the profile completion bonus!"
    )
    assert page.locator("[data-bonus]").count() == 0
    assert page.locator("#f-birthday").get_attribute("readonly") is not None
    # saving again (a complete profile) earns nothing more
    page.fill("#f-city", "Hangzhou")
    with page.expect_navigation():
        page.click("button:text-is('Save')")
    assert page.locator(".flash").inner_text() == "Profile saved."
    with live.db.unit_of_work() as s:
        member = s.get(Member, m.id)
        assert member is not None
        assert (member.city, member.preferred_channel) == ("Hangzhou", "wechat")
        consents = members.consents_of(s, member.id)
        assert {c.channel: c.granted for c in consents}["wechat"] is True
        assert ledger_queries.balance(s, m.id, live.clock.now()).available == 200
    page.goto("/portal/points")
    entries = page.locator(".history-entry")
    assert entries.count() == 1
    assert entries.first.inner_text().startswith("Bonus for completing your profile")


def test_my_data_export_erasure_and_another_members_order(live, new_page):
    me = _member(live, "13911110004", name="Zhou Min", email="zm@example.com")
    other = _member(live, "13911110005", name="Sun Li")
    mine = _shop_order(live, me.member_no, "POS-1")
    theirs = _shop_order(live, other.member_no, "POS-2")
    page = new_page(**PHONE_SIZE, accept_downloads=True)
    _sign_in(page, live, "13911110004")

    page.goto("/portal/points")
    page.click("text=Earned at Jing'an Store")
    page.wait_for_url(f"**/portal/orders/{mine}")
    assert "POS-1" in page.inner_text("h1")
    refused = page.goto(f"/portal/orders/{theirs}")
    assert refused is not None
    assert refused.status == 404
    assert "POS-2" not in page.content()
    assert "Sun Li" not in page.content()

    page.goto("/portal/data")
    with page.expect_download() as got:
        page.click("#export-json")
    data = json.loads(Path(got.value.path()).read_text(encoding="utf-8"))
    assert data["profile"]["member_no"] == me.member_no
    assert data["profile"]["phone"] == "+8613911110004"
    assert data["profile"]["email"] == "zm@example.com"
    assert [o["external_id"] for o in data["orders"]] == ["POS-1"]
    assert data["points"][0]["source"] == "order:pos:POS-1"
    assert {"consents", "tiers", "checkins", "consent_history"} <= set(data)
    with page.expect_download() as got_csv:
        page.click("#export-csv")
    archive = zipfile.ZipFile(io.BytesIO(Path(got_csv.value.path()).read_bytes()))
    assert "POS-1" in archive.read("orders.csv").decode("utf-8-sig")
    assert "Sun Li" not in json.dumps(data)

    with page.expect_navigation():
        page.click("text=Request erasure")
    assert page.locator("[data-error-for=confirm]").is_visible()
    page.fill("#f-reason", "moving abroad")
    page.check("#f-confirm")
    page.click("text=Request erasure")
    page.wait_for_selector("[data-erasure=open]")
    with live.db.unit_of_work() as s:
        rows = s.execute(select(ErasureRequest.member_id, ErasureRequest.reason)).all()
        assert [tuple(r) for r in rows] == [(me.id, "moving abroad")]
        assert s.scalar(select(func.count()).select_from(ErasureRequest)) == 1
