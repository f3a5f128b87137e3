"""The console in Chromium: the menu folds behind a button below 1,280 px (1,024 px wide, in
Chinese and English), the dashboard's presets and filters, a clerk held to their store, and a
batch tag on members ticked in the list."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from patron.auth import service as auth_service
from patron.auth.models import StaffUser
from patron.auth.principal import Principal
from patron.catalog import service as catalog
from patron.catalog.schemas import StoreIn
from patron.members import service as members_service
from patron.members.models import Member, MemberTag
from patron.members.schemas import MemberCreate
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def _register(live, phone: str, **fields) -> str:
    with live.db.unit_of_work() as session:
        m = members_service.register(
            session,
            Principal.system("tests"),
            live.app.state.cipher,
            MemberCreate(phone=phone, **{"channel": "web", **fields}),
            now=live.clock.now(),
            tz=ZoneInfo("Asia/Shanghai"),
        )
        return str(m.member_no)


def _fits(page) -> bool:
    """Nothing wider than the window (no sideways scrolling of the page)."""
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_menu_folds_below_1280_pixels(new_page, live, lang):
    page = new_page(viewport={"width": 1024, "height": 768})
    sign_in(page, live.staff("admin"))
    page.goto("/console/members")
    if lang == "zh-CN":
        with page.expect_navigation():
            page.select_option("#lang-select", "zh_CN")
    toggle = page.locator("button[data-menu-toggle]")
    menu = page.locator("#mainnav")
    assert toggle.is_visible()
    assert toggle.inner_text().strip().endswith("菜单" if lang == "zh-CN" else "Menu")
    assert not menu.is_visible()
    assert _fits(page)
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert menu.is_visible()
    # every link of the menu is on screen and can be reached
    links = menu.locator("a")
    assert links.count() >= 10
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1024
    menu.locator("[data-nav=orders]").click()
    page.wait_for_url("**/console/orders")
    assert not page.locator("#mainnav").is_visible()
    # Wide screens keep the menu in the top bar, with no button.
    page.set_viewport_size({"width": 1400, "height": 900})
    assert page.locator("#mainnav").is_visible()
    assert not page.locator("button[data-menu-toggle]").is_visible()


def test_dashboard_presets_filters_and_a_clerks_store(page, new_page, live):
    with live.db.unit_of_work() as s:
        for code, name, region in (("SH001", "上海店", "East China"), ("BJ001", "北京店", "North")):
            catalog.upsert_store(
                s, Principal.system("tests"),
                StoreIn(code=code, name=name, region=region), now=live.clock.now(),
            )  # fmt: skip
    _register(live, "13900000001", channel="store", store_code="SH001")
    _register(live, "13900000002", channel="store", store_code="BJ001")
    sign_in(page, live.staff("admin"))
    page.goto("/console/")
    page.click("[data-preset=last_month]")
    page.wait_for_url("**/console/?preset=last_month")
    assert page.locator("#f-from").input_value() == "2026-02-01"
    assert page.locator("#f-to").input_value() == "2026-02-28"
    assert page.locator("[data-preset=last_month]").get_attribute("aria-current") == "true"
    page.click("[data-preset=this_year]")
    page.wait_for_url("**/console/?preset=this_year")
    assert page.locator("#f-from").input_value() == "2026-01-01"
    assert page.locator("[data-kpi=new_members] .value").inner_text() == "2"
    page.select_option("#f-store", "BJ001")
    page.click("text=Apply")
    page.wait_for_url("**store=BJ001**")
    assert page.locator("[data-kpi=new_members] .value").inner_text() == "1"
    assert page.locator("[data-figure=new_members] [data-col=current]").inner_text() == "1"
    # a preset keeps the filters
    page.click("[data-preset=yesterday]")
    page.wait_for_url("**preset=yesterday**")
    assert "store=BJ001" in page.url
    assert page.locator("#f-store").input_value() == "BJ001"

    clerk_name = live.staff("clerk")
    with live.db.unit_of_work() as s:
        clerk_id = s.scalar(select(StaffUser.id).where(StaffUser.username == clerk_name))
        auth_service.update_staff(
            s, Principal.system("tests"), clerk_id, changes={"store_code": "SH001"},
            now=live.clock.now(),
        )  # fmt: skip
    clerk = new_page(viewport={"width": 1024, "height": 768})
    sign_in(clerk, clerk_name)
    clerk.goto("/console/?preset=this_year&store=BJ001")
    assert clerk.locator("[data-scope=store]").inner_text() == (
        "You see the figures of your store, 上海店."
    )
    assert clerk.locator("#f-store").count() == 0
    assert clerk.locator("[data-kpi=new_members] .value").inner_text() == "1"
    assert _fits(clerk)


def test_batch_tag_from_the_member_list(page, live):
    numbers = [_register(live, f"1390000010{i}") for i in range(3)]
    sign_in(page, live.staff("operator"))
    page.goto("/console/members")
    page.check("#select-all")
    assert page.locator("[data-selected-count=member]").inner_text() == "3"
    page.uncheck(f"input[name=member][value='{numbers[0]}']")
    assert page.locator("[data-selected-count=member]").inner_text() == "2"
    page.select_option("#b-action", "tag")
    page.fill("#b-tag", "春季沙龙")
    page.click("text=Apply to the selected members")
    page.wait_for_url("**/console/members")
    assert page.locator(".flash").inner_text() == "The selected members were tagged."
    with live.db.unit_of_work() as s:
        tagged = set(
            s.scalars(select(Member.member_no).join(MemberTag, MemberTag.member_id == Member.id))
        )
    assert tagged == set(numbers[1:])
    # nothing ticked: the refusal keeps the form and says what to do
    page.select_option("#b-action", "tag")
    page.fill("#b-tag", "x")
    page.click("text=Apply to the selected members")
    assert page.locator("[data-error-for=members]").inner_text() == (
        "Select at least one member in the list."
    )


def _new_key(page, live) -> str:
    sign_in(page, live.staff("admin"))
    page.goto("/console/admin/keys")
    page.fill("#f-name", "POS")
    page.check("input[name=scopes][value='members:read']")
    page.click("text=Create API key")
    # The secret is on the page while it is still parsing; the copy button works once the
    # deferred script has run, as it has for a person by the time they click.
    page.wait_for_load_state("load")
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("ptn_")
    return secret


def test_the_copy_button_copies_a_new_api_keys_secret(new_page, live):
    page = new_page(
        viewport={"width": 1024, "height": 768}, permissions=["clipboard-read", "clipboard-write"]
    )
    secret = _new_key(page, live)
    button = page.locator("button[data-copy=new-secret]")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == secret


def test_without_the_async_clipboard_the_copy_button_selects_the_secret(new_page, live):
    # A console served over plain HTTP on a shop's network is not a secure context: the page
    # has no navigator.clipboard. The button still copies (or selects the secret and says how).
    page = new_page(viewport={"width": 1024, "height": 768})
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    secret = _new_key(page, live)
    button = page.locator("button[data-copy=new-secret]")
    button.click()
    expect(button).not_to_have_text("Copy the secret")
    assert button.inner_text() in {"Copied", "Selected: press Ctrl+C to copy"}
    assert page.evaluate("() => window.getSelection().toString().trim()") == secret


def test_the_earning_preview_stays_beside_the_fields(page, live):
    from tests.web.test_console_layout_pages import _earning_setup

    _earning_setup(live.db, live.clock)
    sign_in(page, live.staff("operator"))
    page.goto("/console/config/earning")
    fields = page.locator(".config-main").bounding_box()
    preview = page.locator("#preview").bounding_box()
    assert fields is not None and preview is not None
    assert preview["x"] >= fields["x"] + fields["width"] - 1  # beside, not below
    # scrolled to the bonuses, the preview is still on screen
    page.locator("#f-growth_growth").scroll_into_view_if_needed()
    top = page.evaluate("() => document.getElementById('preview').getBoundingClientRect().top")
    assert 0 <= top < 900
    assert not page.locator("[data-past-windows] fieldset").first.is_visible()
    page.click("[data-past-windows] summary")
    assert page.locator("[data-past-windows] fieldset").first.is_visible()
    page.select_option("#f-preview_category", "baby")
    page.click("#preview-button")
    page.locator("#earning-preview").wait_for()


def test_the_desk_keeps_the_total_and_commit_button_in_view(live, new_page):
    from tests.web.test_desk_flow import _seed

    (no1, _), _ = _seed(live)
    page = new_page(viewport={"width": 1024, "height": 600}, has_touch=True)
    sign_in(page, live.staff("clerk"))
    page.goto("/console/desk")
    page.select_option("#f-store_code", "SH001")
    page.get_by_role("button", name="Use this store").click()
    page.goto(f"/console/desk?member={no1}")
    for sku in ("BEA-1", "FRE-1"):
        page.fill("#f-add", sku)
        page.press("#f-add", "Enter")
        page.locator(f"tr[data-sku='{sku}']").wait_for()
    # Each add is a full page load: the row can be in the DOM before the stylesheet has applied.
    page.wait_for_load_state("load")
    # The page is taller than the screen: at its top, the bar is still at the screen's bottom.
    assert page.evaluate("() => document.documentElement.scrollHeight") > 600
    page.evaluate("() => window.scrollTo(0, 0)")
    commit = page.get_by_role("button", name="Commit sale")
    expect(commit).to_be_in_viewport(ratio=1)
    box = commit.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 600
    assert page.get_by_test_id("sticky-to-pay").inner_text() == "¥211.50"
    assert page.get_by_test_id("to-pay").inner_text() == "¥211.50"


def test_the_jobs_page_fits_a_tablet(new_page, live):
    from patron.db import utcnow
    from patron.jobs import runs

    now = utcnow()
    runs.record(live.db, "tiers", started_at=now, finished_at=now, error=TimeoutError(),
                every_seconds=3600)  # fmt: skip
    page = new_page(viewport={"width": 768, "height": 1024})
    sign_in(page, live.staff("admin"))
    page.goto("/console/admin/jobs")
    expect(page.locator("tr[data-job=tiers] .badge")).to_have_text("Failed")
    expect(page.locator("tr[data-job=tiers]")).to_contain_text("TimeoutError")
    assert _fits(page)  # the wide table scrolls inside its card, not the page
