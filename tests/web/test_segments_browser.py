"""Browser: an operator builds a segment — a condition, a group, a removal — watching the live
count, saves it and downloads it; then saves the same tree as a rule tag."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.segments.test_select import _member
from tests.web.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_operator_builds_counts_and_saves_a_segment(page, live):
    with live.db.unit_of_work() as s:
        for i in (9001, 9002, 9003):
            _member(s, i, reg_days=10 if i == 9001 else 400, city="Chengdu")
    sign_in(page, live.staff("operator"))
    page.goto("/console/segments/build")
    page.select_option("select[name='r.0:field']", "city")
    page.wait_for_selector("input[name='r.0:values']")
    page.fill("input[name='r.0:values']", "Chengdu")
    page.locator("input[name='r.0:values']").dispatch_event("change")
    expect(page.locator("#seg-count p").first).to_contain_text("conditions: 3.")
    assert "T000009001" in page.locator("#seg-count").inner_text()

    page.click("button[value='group:r']")
    page.wait_for_selector("select[name='r.1:op']")
    page.select_option("select[name='r.1.0:field']", "lifecycle")
    page.wait_for_selector("input[name='r.1.0:values'][value='new']")
    page.check("input[name='r.1.0:values'][value='new']")
    expect(page.locator("#seg-count p").first).to_contain_text("conditions: 1.")

    page.click("button[value='remove:r.1']")
    expect(page.locator("select[name='r.1:op']")).to_have_count(0)
    expect(page.locator("#seg-count p").first).to_contain_text("conditions: 3.")

    page.fill("input[name=target_code]", "chengdu")
    page.fill("input[name=target_name]", "Chengdu members")
    page.click("button[value=save_segment]")
    page.wait_for_url("**/console/segments/chengdu")
    assert "Members matching now: 3" in page.locator("[data-count]").inner_text()
    assert page.locator("tr[data-version='1']").count() == 1
    with page.expect_download() as got:
        page.click("a[href='/console/segments/chengdu/export?format=csv']")
    assert got.value.suggested_filename == "segment-chengdu.csv"

    page.click("a[href='/console/segments/build?segment=chengdu']")
    page.fill("input[name=target_name]", "in chengdu")
    page.click("button[value=save_tag]")
    page.wait_for_url("**/console/segments/tags")
    assert page.locator("[data-tag='in chengdu'] [data-members='3']").count() == 1
