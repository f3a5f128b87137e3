"""Member pages in Chromium: find a member by phone and read their points; a large adjustment
waits for a second person, who approves it in another browser."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.ledger import flows, service
from patron.ledger.models import PointsAdjustment
from patron.members import service as members
from patron.members.schemas import MemberCreate
from tests.web.conftest import LiveServer, sign_in

pytestmark = pytest.mark.browser
PHONE = "13687654321"


def _member_with_points(live: LiveServer, points: int = 1_500, phone: str = PHONE) -> str:
    actor = Principal.system("tests")
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        tz = business_tz(live.app.state.settings.business_timezone)
        m = members.register(
            s,
            actor,
            live.app.state.cipher,
            MemberCreate(phone=phone, channel="web", name="赵敏"),
            now=now,
            tz=tz,
        )
        ctx = service.Ctx(actor=actor, now=now, tz=tz, settings=service.get_points_settings(s))
        flows.earn(
            s,
            ctx,
            m.id,
            points=points,
            growth_value=300,
            source_type="order",
            source_id=f"B-{phone[-1]}",
        )
        return m.member_no


def test_leaving_the_search_box_does_not_search_again(live: LiveServer, page: Any):
    """The box searches as one types; leaving it (to click a result) must not send the same
    search again: that answer, arriving while the member's page loads, rewrote the address
    (hx-push-url) and the browser dropped the navigation to the member."""
    _member_with_points(live)
    sign_in(page, live.staff("clerk"))
    page.goto("/console/members")
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/console/members?" in r.url else None)
    with page.expect_response(lambda r: "/console/members?" in r.url and "q=" in r.url):
        page.fill("#f-q", PHONE)
    page.locator("h1").click()  # the box loses focus: a change event
    with page.expect_response(lambda r: "status=active" in r.url):
        page.select_option("#f-status", "active")  # a filter still searches at once
    assert len(searches) == 2, searches


def test_find_a_member_by_phone_and_read_balance_expiry_and_history(live: LiveServer, page: Any):
    other = _member_with_points(live, 10, phone="13511112222")
    member_no = _member_with_points(live)
    sign_in(page, live.staff("clerk"))
    page.get_by_role("link", name="Members").click()
    expect(page.locator("tr[data-member]")).to_have_count(2)
    page.fill("#f-q", PHONE)  # htmx searches as the clerk types, no submit
    expect(page.locator("tr[data-member]")).to_have_count(1)
    assert page.locator(f'tr[data-member="{other}"]').count() == 0
    row = page.locator(f'tr[data-member="{member_no}"]')
    row.get_by_role("link", name=member_no).click()
    page.wait_for_url(f"**/console/members/{member_no}")
    assert page.locator("#available-points").inner_text() == "1,500"
    assert "136****4321" in page.locator("header.member-head").inner_text()  # clerk: masked
    page.locator('a[data-tab="points"]').click()
    schedule = page.locator("#expiry-schedule")
    assert "2027-03-01" in schedule.inner_text() and "1,500" in schedule.inner_text()
    history = page.locator("#history tbody tr")
    assert history.count() == 1
    # an earning named after an order Patron never recorded reads as a plain earning
    assert "Earned" in history.first.inner_text() and "+1,500" in history.first.inner_text()


def test_large_adjustment_waits_for_a_second_person(live: LiveServer, page: Any, new_page: Any):
    member_no = _member_with_points(live)
    operator = live.staff("operator", name="Olga Operator")
    sign_in(page, operator)
    page.goto(f"/console/members/{member_no}?tab=points")
    page.fill("#f-amount", "20000")
    page.fill("#f-reason", "store closure compensation")
    page.get_by_role("button", name="Submit adjustment").click()
    assert "waits for a second approver" in page.locator(".flash").inner_text()
    assert page.locator("#available-points").inner_text() == "1,500"
    assert "Waiting for approval" in page.locator("#adjustments").inner_text()
    # The operator cannot approve it: no approvals menu, and the page refuses them.
    assert page.locator('a[data-nav="approvals"]').count() == 0
    response = page.goto("/console/approvals")
    assert response is not None and response.status == 403

    admin_page = new_page(viewport={"width": 1366, "height": 900})
    sign_in(admin_page, live.staff("admin"))
    admin_page.get_by_role("link", name="Approvals").click()
    row = admin_page.locator("tr[data-adjustment]")
    assert row.count() == 1 and "+20,000" in row.inner_text()
    row.get_by_role("button", name="Approve").click()
    assert "approved and applied" in admin_page.locator(".flash").inner_text()
    assert "Nothing is waiting" in admin_page.inner_text("main")

    page.goto(f"/console/members/{member_no}?tab=points")
    assert page.locator("#available-points").inner_text() == "21,500"
    first = page.locator("#history tbody tr").first.inner_text()
    assert "Adjusted by hand" in first and "+20,000" in first and "store closure" in first
    assert re.search(r"Applied", page.locator("#adjustments").inner_text())
    with live.db.unit_of_work() as s:
        row_db = s.scalar(select(PointsAdjustment))
        assert row_db is not None and row_db.status == "applied"
        assert row_db.requested_by != row_db.decided_by
