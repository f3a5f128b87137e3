"""The console workflows of the operator's-language work in Chromium, in English and Chinese:
previewing a hand-set tier before saving it (the preview follows the form as it changes),
downloading the member list with its filters, and an approval row showing the balance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.ledger import flows, service
from patron.members import service as members
from tests.web.conftest import LiveServer, sign_in
from tests.web.test_members_browser import _member_with_points

pytestmark = pytest.mark.browser
QUALIFIED = {"en-US": "already qualifies for", "zh-CN": "已达到"}


def _to_diamond(live: LiveServer, member_no: str) -> None:
    actor = Principal.system("tests")
    with live.db.unit_of_work() as s:
        tz = business_tz(live.app.state.settings.business_timezone)
        ctx = service.Ctx(actor=actor, now=live.clock.now(), tz=tz)
        member_id = members.get_member(s, member_no).id
        for _ in range(2):  # within the approval and daily limits: 300 + 20,000 growth
            row = flows.request_adjustment(
                s, ctx, member_id, ledger="growth", amount=10_000, reason="t"
            )
            assert row.status == "applied"


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_tier_preview_then_save_and_download_members(live: LiveServer, new_page: Any, lang: str):
    member_no = _member_with_points(live)
    _to_diamond(live, member_no)
    page = new_page(extra_http_headers={"Accept-Language": lang})
    sign_in(page, live.staff("operator"))
    page.goto(f"/console/members/{member_no}")
    page.locator("#tier details.edit summary").click()
    page.select_option("#f-tier", "gold")
    page.fill("#f-override_reason", "VIP")
    page.fill("#f-until", "2026-12-31")
    page.wait_for_load_state("networkidle")
    with page.expect_response("**/tier/preview"):  # the preview follows the last change
        page.locator("#f-until").dispatch_event("change")
    preview = page.locator("#tier-preview")
    expect(preview.locator("[data-held-through]")).to_have_attribute(
        "data-held-through", "2026-12-31"
    )
    expect(preview.locator("[data-qualified]")).to_contain_text(QUALIFIED[lang])
    page.locator("#tier-form button[type=submit]").click()
    expect(page.locator("#tier-progress[data-qualified]")).to_be_visible()
    expect(page.locator("#tier [data-held-through]")).to_have_attribute(
        "data-held-through", "2026-12-31"
    )

    page.goto("/console/members?tier=gold")
    with page.expect_download() as got:
        page.locator("a[data-export=csv]").click()
    text = Path(got.value.path()).read_text(encoding="utf-8-sig")
    assert member_no in text and "赵敏" in text
