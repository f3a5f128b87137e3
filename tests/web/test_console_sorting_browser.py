"""Sorting and the consent history in Chromium: an operator clicks a column header of the audit
log and of the ticket queue (again: the other way), the order reaches the address and the
download link; the member page lists consent changes, in Chinese too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.members import service as members
from patron.members.schemas import Consents, MemberCreate
from patron.service import tickets
from tests.web.conftest import LiveServer, sign_in

pytestmark = pytest.mark.browser


def _members_with_tickets(live: LiveServer) -> str:
    """Two members (consent changed twice on the first) and three tickets of each priority."""
    actor = Principal.system("tests")
    tz = business_tz(live.app.state.settings.business_timezone)
    with live.db.unit_of_work() as s:
        first = members.register(
            s, actor, live.app.state.cipher,
            MemberCreate(phone="13511112222", channel="web", name="赵敏"),
            now=live.clock.now(), tz=tz,
        )  # fmt: skip
        members.register(
            s, actor, live.app.state.cipher,
            MemberCreate(phone="13511113333", channel="app", name="周芷若"),
            now=live.clock.now(), tz=tz,
        )  # fmt: skip
        for granted in (True, False):
            live.clock.advance(timedelta(minutes=1))
            members.set_consents(
                s, actor, first.member_no, Consents(sms=granted),
                now=live.clock.now(), source="portal",
            )  # fmt: skip
        for priority in ("low", "urgent", "normal"):
            tickets.open_ticket(
                s, actor, first, category="other", subject=f"{priority} one", body="…",
                channel="console", now=live.clock.now(), priority=priority,
            )  # fmt: skip
        return first.member_no


def test_headers_sort_the_audit_log_and_the_queue(live: LiveServer, page: Any, new_page: Any):
    member_no = _members_with_tickets(live)
    sign_in(page, live.staff("admin"))

    page.goto("/console/audit")
    actions = page.locator("td[data-action]")
    expect(actions.first).to_be_visible()
    page.locator('a[data-sort="action"]').click()
    page.wait_for_url("**/console/audit?sort=action")
    expect(page.locator('th:has(a[data-sort="action"])')).to_have_attribute(
        "aria-sort", "ascending"
    )
    codes = [c.get_attribute("data-action") for c in actions.all()]
    assert codes == sorted(codes) and len(set(codes)) > 1
    page.locator('a[data-sort="action"]').click()
    page.wait_for_url("**/console/audit?sort=action&dir=desc")
    codes = [c.get_attribute("data-action") for c in actions.all()]
    assert codes == sorted(codes, reverse=True)
    href = page.locator('a[data-export="csv"]').get_attribute("href")
    assert href is not None and "sort=action&dir=desc" in href

    page.goto("/console/service")
    page.locator('a[data-sort="priority"]').click()
    page.wait_for_url("**/console/service?view=all&sort=priority")
    subjects = page.locator("tr[data-ticket] td:first-child")
    expect(subjects.first).to_contain_text("urgent one")
    expect(subjects.last).to_contain_text("low one")
    page.locator('a[data-sort="priority"]').click()
    expect(subjects.first).to_contain_text("low one")

    zh = new_page(viewport={"width": 1366, "height": 900})
    sign_in(zh, live.staff("clerk"))
    zh.goto(f"/console/members/{member_no}")
    with zh.expect_navigation():  # the operator switches the console to Chinese
        zh.select_option("#lang-select", "zh_CN")
    history = zh.locator("#consent-history tbody tr")
    expect(zh.get_by_role("heading", name="授权变更记录")).to_be_visible()
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text("已拒绝")
    expect(history.last).to_contain_text("已同意")
    expect(history.first).to_contain_text("会员中心")
