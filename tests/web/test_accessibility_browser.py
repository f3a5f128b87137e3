"""Accessibility: axe-core (pinned in package-lock.json, loaded from node_modules like the
pages' own libraries) runs in Chromium on every console page and every portal page, in
English and Chinese, and finds no violation."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.routing import APIRoute

from patron.web.assets import vendor_root
from tests.web.conftest import sign_in
from tests.web.test_portal_browser import PHONE_SIZE, _member, _shop_order, _sign_in

pytestmark = pytest.mark.browser

RUN_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.map(v => ({id: v.id, impact: v.impact,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""
SKIP_PATHS = ("/logout", "/login", "/export", "/lang/", "/demo/", "/qr", ".json", ".zip")


def _axe_source(live: Any) -> str:
    path = vendor_root(live.app.state.settings) / "axe-core" / "axe.min.js"
    if not path.is_file():
        if os.environ.get("PATRON_REQUIRE_BROWSER") == "1":
            pytest.fail("axe-core is not installed: run npm ci")
        pytest.skip("axe-core is not installed: run npm ci")
    return path.read_text(encoding="utf-8")


def _violations(page: Any, source: str) -> list[dict[str, Any]]:
    # evaluate() runs outside the page's Content-Security-Policy, which refuses inline scripts
    page.evaluate(source)
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return found


def _paths(live: Any, prefix: str) -> list[str]:
    return sorted(
        r.path
        for r in live.app.routes
        if isinstance(r, APIRoute)
        and r.path.startswith(prefix)
        and "GET" in r.methods
        and "{" not in r.path
        and not any(s in r.path for s in SKIP_PATHS)
    )


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_axe_finds_nothing_on_console_pages(live, new_page, lang):
    source = _axe_source(live)
    m = _member(live, "13911112222", name="Wang Fang")
    _shop_order(live, m.member_no, "AX-1")
    page = new_page(
        extra_http_headers={"Accept-Language": lang}, viewport={"width": 1366, "height": 900}
    )
    sign_in(page, live.staff("admin"))
    detail = f"/console/members/{m.member_no}"
    paths = [*_paths(live, "/console"), *(f"{detail}?tab={t}" for t in ("overview", "points"))]
    paths += [f"{detail}?tab={t}" for t in ("orders", "audit")]
    found = {}
    for path in paths:
        page.goto(path)
        problems = _violations(page, source)
        if problems:
            found[path] = problems
    assert not found, found


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_axe_finds_nothing_on_portal_pages(live, new_page, lang):
    source = _axe_source(live)
    m = _member(live, "13911113333", name="Li Lei")
    order_id = _shop_order(live, m.member_no, "AX-2")
    page = new_page(extra_http_headers={"Accept-Language": lang}, **PHONE_SIZE)
    page.goto("/portal/login")
    found = {}
    problems = _violations(page, source)
    if problems:
        found["/portal/login"] = problems
    _sign_in(page, live, "13911113333")
    for path in [*_paths(live, "/portal"), f"/portal/orders/{order_id}"]:
        page.goto(path)
        problems = _violations(page, source)
        if problems:
            found[path] = problems
    assert not found, found
