"""The clerk desk in Chromium at tablet sizes: find members by phone and by their card code,
ring up two scanned products, pay part with points, commit, return one line, register a member."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
import segno
from playwright.sync_api import expect
from sqlalchemy import select

from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import CategoryIn, ProductIn, StoreIn
from patron.ledger import flows
from patron.ledger import queries as ledger_queries
from patron.ledger import service as ledger
from patron.members import card
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import MemberCreate
from patron.orders.models import Order, OrderReturn
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser
SH = ZoneInfo("Asia/Shanghai")
LANDSCAPE = {"width": 1024, "height": 768}
PORTRAIT = {"width": 768, "height": 1024}


def _seed(live):
    """Store SH001, products BEA-1 (¥199.00) and FRE-1 (¥12.50), two members; 3,000 points
    for the first. Returns (member numbers, member ids)."""
    actor = Principal.system("tests")
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        catalog.upsert_store(
            s, actor, StoreIn(code="SH001", name="上海店", region="East China"), now=now
        )
        for code in ("beauty", "fresh"):
            catalog.upsert_category(s, actor, CategoryIn(code=code, name=code), now=now)
        for sku, cat, price, name in (
            ("BEA-1", "beauty", 19900, "Face cream"),
            ("FRE-1", "fresh", 1250, "Apples"),
        ):
            catalog.upsert_product(
                s,
                actor,
                ProductIn(sku=sku, name=name, category_code=cat, price_fen=price),
                now=now,
            )
        made = []
        for phone, name in (("13900005555", "王芳"), ("13900006666", "张伟")):
            m = members.register(
                s,
                actor,
                live.app.state.cipher,
                MemberCreate(phone=phone, channel="web", name=name),
                now=now,
                tz=SH,
            )
            made.append((m.member_no, m.id))
        flows.earn(
            s,
            ledger.Ctx(actor, now, SH),
            made[0][1],
            points=3000,
            source_type="test",
            source_id="grant",
        )
    return made


def _available(live, member_id):
    with live.db.unit_of_work() as s:
        return ledger_queries.balance(s, member_id, live.clock.now()).available


# The tablet camera, faked: a canvas showing the member's QR code, streamed as video.
FAKE_CAMERA = """
navigator.mediaDevices.getUserMedia = async () => {
  const img = new Image();
  img.src = %s;
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const g = c.getContext("2d");
  const draw = () => {
    g.fillStyle = "#fff";
    g.fillRect(0, 0, c.width, c.height);
    g.drawImage(img, 0, 0);
  };
  draw();
  setInterval(draw, 100);  // a canvas stream only sends frames when the canvas is drawn
  return c.captureStream(10);
};
"""


def _fits(page):
    """Nothing wider than the tablet: no sideways scrolling."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def test_clerk_rings_up_a_sale_with_points_returns_a_line_and_registers(live, new_page):
    (no1, id1), (no2, id2) = _seed(live)
    page = new_page(viewport=LANDSCAPE, has_touch=True)
    sign_in(page, live.staff("clerk"))
    page.goto("/console/desk")
    # The store is chosen once and remembered.
    page.select_option("#f-store_code", "SH001")
    page.get_by_role("button", name="Use this store").click()
    expect(page.get_by_test_id("store-name")).to_contain_text("SH001")

    # Find the member by phone: the scanner/keyboard types and presses Enter.
    page.fill("#f-q", "13900005555")
    page.press("#f-q", "Enter")
    expect(page.get_by_test_id("member")).to_contain_text("王芳")
    assert page.url.endswith(f"/console/desk?member={no1}")
    expect(page.get_by_test_id("balance")).to_have_text("3,000")

    # Two products by SKU + Enter, the way a handheld scanner sends them.
    page.fill("#f-add", "BEA-1")
    page.press("#f-add", "Enter")
    expect(page.locator("tr[data-sku='BEA-1']")).to_be_visible()
    page.fill("#f-add", "FRE-1")
    page.press("#f-add", "Enter")
    expect(page.locator("tr[data-sku='FRE-1']")).to_be_visible()
    expect(page.get_by_test_id("total")).to_have_text("¥211.50")
    expect(page.get_by_test_id("usable")).to_contain_text("3,000")
    earn_before = int(page.get_by_test_id("points-earned").inner_text().replace(",", ""))
    assert earn_before > 0
    commit = page.get_by_role("button", name="Commit sale")
    assert commit.bounding_box()["height"] >= 52  # a thumb-sized target
    _fits(page)

    # Part of it paid with points; the quote shows the rest and the new earning.
    page.fill("#f-points", "2000")
    page.get_by_role("button", name="Apply points").click()
    expect(page.get_by_test_id("points-paid")).to_contain_text("2,000")
    expect(page.get_by_test_id("to-pay")).to_have_text("¥191.50")
    earned = int(page.get_by_test_id("points-earned").inner_text().replace(",", ""))
    order_no = page.get_by_test_id("order-no").inner_text()
    page.get_by_role("button", name="Commit sale").click()

    receipt = page.get_by_test_id("receipt")
    expect(receipt).to_be_visible()
    expect(page.get_by_test_id("receipt-order")).to_have_text(order_no)
    expect(page.get_by_test_id("receipt-paid")).to_have_text("¥191.50")
    expect(page.get_by_test_id("receipt-points-used")).to_contain_text("2,000")
    expect(page.get_by_test_id("receipt-earned")).to_have_text(f"{earned:,}")
    balance = 3000 - 2000 + earned
    expect(page.get_by_test_id("receipt-balance")).to_have_text(f"{balance:,}")
    assert _available(live, id1) == balance
    with live.db.unit_of_work() as s:
        order = s.scalar(select(Order).where(Order.external_id == order_no))
        assert order is not None and order.points_used == 2000 and order.store_code == "SH001"

    # Return the face cream: the points it earned are clawed back.
    page.get_by_role("link", name="Another sale for this member").click()
    page.get_by_role("link", name="Returns").click()
    form = page.locator(f"form[data-order='{order_no}']")
    form.locator("tr[data-line='1'] input[name=qty]").fill("1")
    form.get_by_role("button", name="Process return").click()
    expect(page.get_by_test_id("return-done")).to_be_visible()
    with live.db.unit_of_work() as s:
        ret = s.scalar(select(OrderReturn))
        assert ret is not None and ret.points_clawed > 0
        clawed, given_back = ret.points_clawed, ret.points_returned
    expect(page.get_by_test_id("clawed")).to_have_text(f"{clawed:,}")
    after = balance - clawed + given_back
    expect(page.get_by_test_id("balance-after")).to_have_text(f"{after:,}")
    assert _available(live, id2) == 0

    # The next customer shows the QR code from the member portal; the scanner types it.
    page.get_by_role("link", name="Next customer").click()
    token = card.issue(id2, live.app.state.keys["token_key"], live.clock.now())
    page.fill("#f-q", token)
    page.press("#f-q", "Enter")
    expect(page.get_by_test_id("member")).to_contain_text("张伟")
    expect(page.get_by_test_id("member-no")).to_contain_text(no2[:4])


def test_clerk_registers_a_new_member_on_a_portrait_tablet(live, new_page):
    _seed(live)
    page = new_page(viewport=PORTRAIT, has_touch=True)
    sign_in(page, live.staff("clerk"))
    page.goto("/console/desk")
    page.select_option("#f-store_code", "SH001")
    page.get_by_role("button", name="Use this store").click()
    page.get_by_role("link", name="Register a new member").click()
    # A phone that is taken names its member and writes nothing.
    page.fill("#f-phone", "13900005555")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.locator("[data-error-for=phone]")).to_contain_text("already belongs to member")
    page.fill("#f-phone", "13900007777")
    page.fill("#f-name", "李娜")
    page.get_by_label("Text messages").check()
    _fits(page)
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Member registered")
    expect(page.get_by_test_id("member")).to_contain_text("李娜")
    expect(page.get_by_test_id("balance")).to_have_text("0")
    _fits(page)
    with live.db.unit_of_work() as s:
        m = s.scalar(select(Member).where(Member.name == "李娜"))
        assert m is not None and m.registration_store_code == "SH001"
        assert [c.channel for c in members.consents_of(s, m.id) if c.granted] == ["sms"]


def test_clerk_scans_the_member_code_with_the_tablet_camera(live, new_page):
    _made, (no2, id2) = _seed(live)
    page = new_page(viewport=PORTRAIT, has_touch=True)
    token = card.issue(id2, live.app.state.keys["token_key"], live.clock.now())
    qr = segno.make(token, error="m").png_data_uri(scale=6, border=4)
    page.add_init_script(FAKE_CAMERA % ('"' + qr + '"'))
    sign_in(page, live.staff("clerk"))
    page.goto("/console/desk")
    page.get_by_role("button", name="Scan with camera").click()
    expect(page.get_by_test_id("member")).to_contain_text("张伟")
    assert page.url.endswith(f"/console/desk?member={no2}")
    # A browser without a camera API never offers the button; the field still takes a scanner.
    bare = new_page(viewport=PORTRAIT)
    bare.add_init_script("Object.defineProperty(navigator, 'mediaDevices', {value: undefined})")
    sign_in(bare, live.staff("clerk"))
    bare.goto("/console/desk")
    expect(bare.locator("#f-q")).to_be_focused()
    expect(bare.get_by_role("button", name="Find")).to_be_visible()
    expect(bare.locator(".js-scan")).to_be_hidden()


def test_a_refused_camera_is_explained_in_the_clerks_words(live, new_page):
    _seed(live)
    page = new_page(viewport=PORTRAIT, has_touch=True)
    page.add_init_script(
        "navigator.mediaDevices.getUserMedia = async () => {"
        " throw new DOMException('Permission denied', 'NotAllowedError'); };"
    )
    sign_in(page, live.staff("clerk"))
    page.goto("/console/desk")
    page.get_by_role("button", name="Scan with camera").click()
    expect(page.locator(".js-scan-status")).to_have_text(
        "The camera is blocked. Allow it in the browser settings, or type or scan the code."
    )
