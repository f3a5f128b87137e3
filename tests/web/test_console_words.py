"""The console in the operator's words (SQLite and PostgreSQL): no page under /console shows a
raw code, a rule id or JSON — points history as sentences with the store's name, audit records
with labelled values and member numbers — in English and in Chinese."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.routing import APIRoute

from patron.web.console import history_text
from tests.factories import order_body
from tests.web.test_members_pages import member, staff  # noqa: F401

#: what machine text looks like: JSON, snake_case or dotted codes, rule ids, source references
RAW = re.compile(
    r'\{"|"\w+":|\b[a-z]+_[a-z_]+\b|\b[a-z]+\.[a-z_]+\b|\b(?:category|tier|order|api):[a-z]'
)
#: words that look like codes but are meant: an e-mail domain, the placeholder of a form field
ALLOWED = ("example.com",)


class _Text(HTMLParser):
    """The text a person reads: no tags, attributes, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _visible(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    text = " ".join(parser.parts)
    for ok in ALLOWED:
        text = text.replace(ok, "")
    return text


def _console_pages(app: Any, member_no: str) -> list[str]:
    paths = [
        r.path
        for r in app.routes
        if isinstance(r, APIRoute)
        and r.path.startswith("/console")
        and "GET" in r.methods
        and "{" not in r.path
        and not r.path.endswith(("/logout", "/login", ".csv", ".xlsx", "/export"))
    ]
    detail = f"/console/members/{member_no}"
    return sorted(paths) + [f"{detail}?tab={t}" for t in ("overview", "points", "orders", "audit")]


def test_order_earning_reasons_become_labelled_parts() -> None:
    parts = history_text._rule_parts(
        "order D0004509 (store CQ001): base, category:baby, tier:diamond, summer-x2",
        {"baby": "母婴"},
        {"diamond": "钻石会员"},
    )
    assert parts == [
        ("Base points", {}),
        ("Category bonus: %(category)s", {"category": "母婴"}),
        ("Tier multiplier: %(tier)s", {"tier": "钻石会员"}),
        ("Campaign rule: %(rule)s", {"rule": "summer-x2"}),
    ]
    assert history_text._rule_parts("goodwill", {}, {}) == []


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_no_console_page_shows_a_raw_code_or_json(
    staff,  # noqa: F811
    member,  # noqa: F811
    client,
    shop,
    app,
    auth_headers,
    lang,
):
    r = client.post("/api/v1/orders", json=order_body(member), headers=shop)
    assert r.status_code == 201, r.text
    # a tier held by hand, an adjustment waiting for approval, a tag: audit records of each kind
    h = auth_headers("admin")
    hold = {"tier": "gold", "reason": "complaint resolved", "until": None}
    assert client.post(f"/api/v1/members/{member}/tier/override", json=hold, headers=h).is_success
    big = {"ledger": "points", "amount": 12_000, "reason": "store closure"}
    assert client.post(f"/api/v1/members/{member}/points/adjustments", json=big, headers=h)
    admin = staff("admin")
    admin.headers["Accept-Language"] = lang
    found: dict[str, list[str]] = {}
    for path in _console_pages(app, member):
        r = admin.get(path)
        assert r.status_code == 200, (path, r.status_code)
        raw = RAW.findall(_visible(r.text))
        if raw:
            found[path] = raw[:5]
    assert not found, found
    points = admin.get(f"/console/members/{member}", params={"tab": "points"}).text
    store = "上海店"
    assert re.search(rf"O-1[^<]*{store}", points), "the earning names the order and the store"
