"""The dashboard and the admin pages in Chromium: charts drawn, a bad range refused next to its
field, a staff user and an API key created (the secret shown once), the audit log filtered."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from patron.auth.models import ApiKey, StaffUser
from patron.auth.principal import Principal
from patron.members import service as members_service
from patron.members.schemas import MemberCreate
from tests.web.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.browser


def _register(live, phone: str) -> None:
    with live.db.unit_of_work() as session:
        members_service.register(
            session,
            Principal.system("tests"),
            live.app.state.cipher,
            MemberCreate(phone=phone, channel="web"),
            now=live.clock.now(),
            tz=ZoneInfo("Asia/Shanghai"),
        )


def test_dashboard_draws_its_charts_and_refuses_a_bad_range(page, live):
    _register(live, "13900000001")
    _register(live, "13900000002")
    sign_in(page, live.staff("admin"))
    page.goto("/console/")
    assert page.locator("[data-kpi=members_total] .value").inner_text() == "2"
    assert page.locator("[data-kpi=new_members] .value").inner_text() == "2"
    # ECharts draws into a canvas inside each chart container.
    for chart in ("trend", "points", "tiers"):
        page.locator(f"[data-chart={chart}] canvas").first.wait_for()
    assert page.locator("[data-tier=regular] td.num").first.inner_text() == "2"
    # Money in the charts reads as it does in the page: ¥, thousands, two decimals.
    shown = page.evaluate(
        """() => {
          const trend = echarts.getInstanceByDom(document.getElementById("chart-trend"));
          const tiers = echarts.getInstanceByDom(document.getElementById("chart-tiers"));
          const t = trend.getOption(), p = tiers.getOption();
          return [
            t.yAxis[1].axisLabel.formatter(8523630),
            t.series[1].tooltip.valueFormatter(8523630),
            t.yAxis[0].axisLabel.formatter(12000),
            p.series[1].tooltip.formatter(
              {seriesName: "S", name: "<b>Gold</b>", marker: "", value: 123456789, percent: 40}),
          ];
        }"""
    )
    assert shown == [
        "¥85,236.30",
        "¥85,236.30",
        "12,000",
        "S<br>&lt;b&gt;Gold&lt;/b&gt;: ¥1,234,567.89 (40%)",
    ]
    page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById("chart-trend"))
             .dispatchAction({type: "showTip", seriesIndex: 1, dataIndex: 29})"""
    )
    tip = page.locator("#chart-trend div").filter(has_text="¥0.00")
    assert tip.count() >= 1

    page.click("text=Last 7 days")
    page.wait_for_url("**/console/?preset=7")
    assert page.locator("#f-from").input_value() == "2026-02-23"
    page.locator("[data-chart=trend] canvas").first.wait_for()

    page.fill("#f-from", "2026-03-01")
    page.fill("#f-to", "2026-02-01")
    page.click("text=Apply")
    page.wait_for_url("**/console/?from=2026-03-01&to=2026-02-01&*")
    error = page.locator("[data-error-for=from]")
    assert error.inner_text() == "The start date must not be after the end date."
    assert page.locator("#f-from").get_attribute("aria-invalid") == "true"
    assert page.locator("[data-chart]").count() == 0


def test_admin_creates_a_staff_user_and_an_api_key_then_filters_the_audit_log(page, live, new_page):
    sign_in(page, live.staff("admin"))
    page.goto("/console/admin/staff")
    form = page.locator("#staff-create")
    form.locator("#f-username").fill("wang.fang")
    form.locator("#f-display_name").fill("王芳")
    form.locator("#f-role").select_option("clerk")
    form.locator("#f-password").fill("short")
    form.locator("button[type=submit]").click()
    assert (
        form.locator("[data-error-for=password]").inner_text()
        == "Use a password of at least 10 characters."
    )
    assert form.locator("#f-username").input_value() == "wang.fang"  # kept for the retry
    form.locator("#f-password").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/console/admin/staff")
    assert page.locator(".flash").inner_text() == "Staff user created."
    assert page.locator("[data-staff='wang.fang']").inner_text().count("王芳") == 1
    # The new clerk can sign in, and sees no admin pages.
    clerk = new_page()
    sign_in(clerk, "wang.fang")
    assert clerk.goto("/console/admin/staff").status == 403

    page.goto("/console/admin/keys")
    page.fill("#f-name", "online shop")
    page.check("input[name=scopes][value='members:read']")
    page.check("input[name=scopes][value='orders:write']")
    page.click("text=Create API key")
    secret = page.locator("[data-secret]").inner_text()
    assert secret.startswith("ptn_")
    with live.db.unit_of_work() as s:
        key = s.scalars(select(ApiKey)).one()
        assert key.name == "online shop"
        assert key.scopes == ["members:read", "orders:write"]
        assert secret not in key.key_hash
    page.goto("/console/admin/keys")
    assert page.locator(f"[data-key='{key.prefix}']").count() == 1
    assert page.locator("[data-secret]").count() == 0
    assert secret not in page.content()

    page.goto("/console/audit")
    page.select_option("#f-action", "apikey.create")
    page.click("text=Filter")
    page.wait_for_url("**/console/audit?**action=apikey.create**")
    assert page.locator("[data-total]").get_attribute("data-total") == "1"
    assert "online shop" in page.locator("tr[data-audit]").inner_text()
    with live.db.unit_of_work() as s:
        new_id = s.scalar(select(StaffUser.id).where(StaffUser.username == "wang.fang"))
    page.goto("/console/audit")
    page.select_option("#f-entity_type", "staff")
    page.fill("#f-entity_id", str(new_id))
    page.click("text=Filter")
    page.wait_for_url("**entity_type=staff**")
    rows = page.locator("tr[data-audit]")
    assert rows.count() == 1
    assert "Staff user created" in rows.inner_text()
