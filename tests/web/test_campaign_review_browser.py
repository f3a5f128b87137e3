"""Browser: an operator approves a held referral in the review queue, and changes the recall
packs (points and a coupon) on their settings page."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from patron.campaigns import recall
from patron.campaigns.models import Referral
from patron.coupons import service as coupons
from patron.coupons.domain import TemplateRules
from tests.portal.helpers import ctx, new_member
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_operator_approves_a_held_referral(page, live):
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        referrer = new_member(s, now, phone="13900000201")
        referee = new_member(s, now, phone="13900000202")
        held = s.execute(
            insert(Referral)
            .values(
                referrer_id=referrer.id,
                referee_id=referee.id,
                status="held",
                reason="self_referral",
                phone_prefix="8613900",
                created_at=now,
            )
            .returning(Referral.id)
        ).scalar_one()
    sign_in(page, live.staff("operator"))
    page.goto("/console/campaigns")
    page.click("a[href='/console/referrals']")
    row = page.locator(f"[data-referral='{held}']")
    assert referee.member_no in row.inner_text()
    row.locator("button[value=approve]").click()
    page.wait_for_selector("[data-empty]")
    with live.db.unit_of_work() as s:
        assert s.scalar(select(Referral.status).where(Referral.id == held)) == "pending"


def test_an_operator_changes_the_recall_packs(page, live):
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        coupons.put_template(
            s,
            ctx(s, now),
            "BACK",
            name="回归礼券",
            rules=TemplateRules(kind="amount_off", amount_fen=1000, valid_days=30),
            total_quantity=None,
            per_member_limit=1,
            points_price=0,
            status="active",
        )
    sign_in(page, live.staff("operator"))
    page.goto("/console/campaigns")
    page.click("a[href='/console/recall']")
    page.check("input[name=enabled]")
    page.fill("input[name=points]", "250")
    page.select_option("select[name=coupon_template]", "BACK")
    page.click("#recall-form button[type=submit]")
    page.wait_for_selector("#recall-form")
    assert page.input_value("input[name=points]") == "250"
    with live.db.unit_of_work() as s:
        saved = recall.get_settings(s)
        assert (saved.enabled, saved.points, saved.coupon_template) == (True, 250, "BACK")
