"""Browser: at the door, an operator checks a member in by code, sees the check-in list, and
closes the event, which marks the member with a place who did not come as a no-show."""

from __future__ import annotations

from datetime import timedelta

import pytest

from patron.campaigns import member_events
from patron.campaigns.member_events import EventIn
from tests.portal.helpers import ACTOR, ctx, new_member
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_operator_checks_in_and_closes_an_event(page, live):
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        member_events.create_event(
            s,
            ACTOR,
            EventIn(code="salon", name="VIP salon", starts_at=now + timedelta(days=7), capacity=2),
            now=now,
        )
        came = new_member(s, now, phone="13900000101")
        away = new_member(s, now, phone="13900000102")
        waiting = new_member(s, now, phone="13900000103")
        c = ctx(s, now)
        code = member_events.register(s, c, "salon", came.id).registration.checkin_code
        member_events.register(s, c, "salon", away.id)
        member_events.register(s, c, "salon", waiting.id)
        nos = (came.member_no, away.member_no, waiting.member_no)
    sign_in(page, live.staff("operator"))
    page.goto("/console/campaigns")
    page.click("a[href='/console/member-events']")
    page.click("[data-event=salon] a")
    summary = page.locator("[data-summary]").inner_text()
    assert "2 of 2 places taken, 1 on the waiting list" in summary or "候补 1" in summary
    page.fill("input[name=checkin_code]", code.lower())
    page.click("form[action$='/checkin'] button")
    page.wait_for_selector(f"[data-member='{nos[0]}']")
    assert page.locator(f"[data-member='{nos[0]}'] [data-status]").inner_text() in (
        "Attended",
        "已到场",
    )
    page.click("form[action$='/close'] button")
    page.wait_for_selector("form[action$='/close']", state="detached")
    assert page.locator(f"[data-member='{nos[1]}'] [data-status]").inner_text() in (
        "Did not come",
        "未到场",
    )
    assert page.locator(f"[data-member='{nos[2]}'] [data-status]").inner_text() in (
        "On the waiting list",
        "候补名单",
    )
