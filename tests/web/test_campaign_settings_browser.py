"""Browser: an operator edits the referral settings, the campaign settings and the points
milestones from the campaigns page — a bad value is shown beside its field and nothing is
saved; corrected, the settings are saved and shown again."""

from __future__ import annotations

import pytest

from patron.campaigns import milestones, referrals
from patron.campaigns import service as campaigns
from patron.coupons import service as coupons
from patron.coupons.domain import TemplateRules
from tests.portal.helpers import ctx
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def _saved(live):
    with live.db.unit_of_work() as s:
        return referrals.get_settings(s)


def _template(live, code):
    with live.db.unit_of_work() as s:
        coupons.put_template(
            s,
            ctx(s, live.clock.now()),
            code,
            name="推荐礼券",
            rules=TemplateRules(
                kind="threshold", amount_fen=3000, min_spend_fen=20000, valid_days=30
            ),
            total_quantity=None,
            per_member_limit=1,
            points_price=0,
            status="active",
        )


def test_an_operator_sets_a_coupon_and_the_tier_up_for_referrals(page, live):
    _template(live, "REF-GIFT")
    before = _saved(live)
    sign_in(page, live.staff("operator"))
    page.goto("/console/campaigns")
    page.click("a[href='/console/referral-settings']")
    page.select_option("#f-referrer_coupon", "REF-GIFT")
    page.check("#f-referrer_tier_up")
    page.fill("#f-max_per_referrer", "0")
    page.click("#save")
    error = page.locator("[data-error-for='max_per_referrer']")
    error.wait_for()
    assert "1" in error.inner_text()  # "Must be at least 1." in the viewer's language
    # what was typed and chosen is kept on the refused form
    assert page.input_value("#f-max_per_referrer") == "0"
    assert page.input_value("#f-referrer_coupon") == "REF-GIFT"
    assert _saved(live) == before
    page.fill("#f-max_per_referrer", "3")
    page.click("#save")
    page.wait_for_url("**/console/referral-settings")
    page.locator("[data-error-for]").first.wait_for(state="detached")
    saved = _saved(live)
    assert saved.max_per_referrer == 3 and saved.referrer_coupon == "REF-GIFT"
    assert saved.referrer_tier_up is True
    page.reload()
    assert page.input_value("#f-max_per_referrer") == "3"
    assert page.is_checked("#f-referrer_tier_up")


def test_an_operator_changes_the_budget_cap(page, live):
    sign_in(page, live.staff("operator"))
    page.goto("/console/campaigns")
    page.click("a[href='/console/campaign-settings']")
    assert page.input_value("#f-budget_cap") == "95"
    page.fill("#f-budget_cap", "120")
    page.fill("#f-point_cost", "1.5")
    page.click("#save")
    error = page.locator("[data-error-for='budget_cap']")
    error.wait_for()
    assert "100" in error.inner_text()  # "Must be at most 100%." in the viewer's language
    assert page.locator("[data-error-for='point_cost']").count() == 0
    with live.db.unit_of_work() as s:
        assert campaigns.get_settings(s).budget_cap_bp == 9_500
    page.fill("#f-budget_cap", "90")
    page.click("#save")
    page.wait_for_url("**/console/campaign-settings")
    page.locator("[data-error-for]").first.wait_for(state="detached")
    with live.db.unit_of_work() as s:
        saved = campaigns.get_settings(s)
    assert (saved.budget_cap_bp, saved.point_cost_fen_per_100) == (9_000, 150)
    page.reload()
    assert page.input_value("#f-budget_cap") == "90"
    assert page.input_value("#f-point_cost") == "1.50"


def test_an_operator_gives_a_milestone_a_coupon(page, live):
    _template(live, "M10K")
    sign_in(page, live.staff("operator"))
    page.goto("/console/campaigns")
    page.click("a[href='/console/milestones']")
    assert page.input_value("#f-ms-0-code") == "dedicated_service"
    page.select_option("#f-ms-0-coupon", "M10K")
    page.fill("#f-ms-1-code", "dedicated_service")  # the same code twice
    page.click("#save")
    error = page.locator("[data-error-for='ms-1-code']")
    error.wait_for()
    assert page.input_value("#f-ms-0-coupon") == "M10K"  # kept on the refused form
    with live.db.unit_of_work() as s:
        assert milestones.get_settings(s).milestones[0].coupon is None
    page.fill("#f-ms-1-code", "early_access")
    page.click("#save")
    page.wait_for_url("**/console/milestones")
    page.locator("[data-error-for]").first.wait_for(state="detached")
    with live.db.unit_of_work() as s:
        saved = milestones.get_settings(s).milestones
    assert [(m.code, m.coupon) for m in saved] == [
        ("dedicated_service", "M10K"),
        ("early_access", None),
    ]
