"""Browser: the console's suppliers page (a supplier, its agreement and a quote typed in yuan,
the gift's preferred supplier) and the turnover page (the month's figures and the stock chart
drawn by ECharts)."""

from __future__ import annotations

import pytest

from patron.mall import service as mall
from patron.mall import stock
from patron.mall.schemas import GiftIn
from tests.web.conftest import sign_in
from tests.web.test_portal_browser import ACTOR, SH

pytestmark = pytest.mark.browser


def _gift(live, units: dict[str, int]) -> None:
    now = live.clock.now()
    with live.db.unit_of_work() as s:
        mall.upsert_gift(
            s, ACTOR, GiftIn(code="MUG", name="Ceramic mug", category="home", points=300), now=now
        )
        ctx = mall.make_ctx(s, ACTOR, now, SH)
        for wh, n in units.items():
            stock.receive(s, ctx, "MUG", wh, n)


def test_suppliers_page(live, new_page):
    _gift(live, {"east": 5})
    page = new_page()
    sign_in(page, live.staff("operator"))
    page.goto("/console/mall/suppliers")
    form = page.locator("[data-testid=supplier-form]")
    form.locator("#s-code").fill("ACME")
    form.locator("#s-name").fill("Acme Ceramics")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-supplier=ACME][data-in-force=no]")
    agreement = page.locator("[data-testid=agreement-form]")
    agreement.locator("#a-ref").fill("AC-2026")
    agreement.locator("#a-from").fill("2026-01-01")
    agreement.locator("#a-to").fill("2026-12-31")
    agreement.locator("button[type=submit]").click()
    page.wait_for_selector("[data-supplier=ACME][data-in-force=yes]")
    quote = page.locator("[data-testid=quote-form]")
    quote.locator("#q-cost").fill("12.5")
    quote.locator("button[type=submit]").click()
    page.wait_for_selector("[data-quote=ACME][data-cost='1250']")
    page.locator("[data-testid=gift-suppliers-form] button[type=submit]").click()
    page.wait_for_selector("[data-gift=MUG][data-preferred=ACME]")
    # a cost with three decimals is refused in words, nothing saved
    quote = page.locator("[data-testid=quote-form]")
    quote.locator("#q-cost").fill("1.234")
    quote.locator("button[type=submit]").click()
    page.wait_for_selector("[data-error-for=form]")
    page.goto("/console/mall/suppliers")
    assert page.locator("[data-quote=ACME]").count() == 1


def test_turnover_page(live, new_page):
    _gift(live, {"east": 5, "north": 2})
    page = new_page()
    sign_in(page, live.staff("operator"))
    page.goto("/console/mall/turnover?month=2026-03")
    assert page.locator("[data-row='MUG:east']").get_attribute("data-closing") == "5"
    assert page.locator("[data-row='MUG:north']").get_attribute("data-closing") == "2"
    # ECharts drew the stock chart from the page's data
    page.wait_for_selector("#chart-stock canvas")
    assert page.locator("[data-export=csv]").get_attribute("href").endswith("format=csv")
