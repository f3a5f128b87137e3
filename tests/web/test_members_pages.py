"""Member pages and approvals without a browser (SQLite and PostgreSQL): search, masking, every
action form's refusal (422, message next to the field, nothing changed) and approval rules."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.ledger.models import PointsAdjustment, PointsPosting
from patron.members.models import Member, MemberTag
from patron.tiers.models import MemberTier, TierChange

PASSWORD = "members-page-pass-1"
PHONE = "13912345678"


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, text[:500]
    return found.group(1)


@pytest.fixture
def staff(app: Any, database: Any, clock: Any) -> Callable[[str], TestClient]:
    """``staff("clerk")`` → a TestClient signed in to the console as a new user of that role."""

    def make(role: str) -> TestClient:
        username = f"{role}-{uuid.uuid4().hex[:6]}"
        with database.unit_of_work() as s:
            auth_service.create_staff(
                s,
                Principal.system("tests"),
                username=username,
                display_name=role.title(),
                role=role,
                password=PASSWORD,
                now=clock.now(),
            )
        c = TestClient(app, headers={"Accept-Language": "en"})
        form = c.get("/console/login")
        r = c.post(
            "/console/login",
            data={"username": username, "password": PASSWORD, "csrf_token": _csrf(form.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return c

    return make


@pytest.fixture
def member(client: TestClient, make_member: Callable[..., str], auth_headers: Any) -> str:
    """A member with a phone, a name, a tag, 1,500 points and gold tier (6,000 growth)."""
    no = make_member(phone=PHONE, name="王小丽", email="xl@example.com")
    h = auth_headers("admin")
    r = client.post(f"/api/v1/members/{no}/tags", json={"tag": "VIP沙龙"}, headers=h)
    assert r.status_code == 200, r.text
    limits = client.get("/api/v1/points/settings", headers=h).json()
    r = client.put("/api/v1/points/settings", json={**limits, "direct_earn_limit": 1500}, headers=h)
    assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/members/{no}/points/earn",
        json={"points": 1500, "source_type": "order", "source_id": "A-1"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    # growth moves only with orders, actions and adjustments
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"ledger": "growth", "amount": 6000, "reason": "tier for the tests"},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["status"] == "applied", r.text
    make_member(name="李雷")  # someone else, who must not match the searches below
    return no


def _rows(text: str) -> list[str]:
    return re.findall(r'data-member="([0-9]{10})"', text)


def _error_for(text: str, name: str) -> str:
    found = re.search(rf'data-error-for="{name}">([^<]+)<', text)
    assert found, f"no error next to {name}"
    return html.unescape(found.group(1))


def test_search_finds_a_member_by_phone_number_name_tag_and_tier(staff, member):
    clerk = staff("clerk")
    for query in (
        {"q": PHONE},
        {"q": "+86 139 1234 5678"},
        {"q": member},
        {"q": "王小"},
        {"tag": "VIP沙龙"},
        {"tier": "gold"},
        {"q": "王", "tier": "gold", "status": "active", "channel": "web"},
    ):
        r = clerk.get("/console/members", params=query)
        assert r.status_code == 200, query
        assert _rows(r.text) == [member], query
    assert len(_rows(clerk.get("/console/members").text)) == 2
    assert _rows(clerk.get("/console/members", params={"tier": "regular"}).text) != [member]
    assert _rows(clerk.get("/console/members", params={"tier": "diamond"}).text) == []
    # htmx live search answers with the result table only.
    r = clerk.get(
        "/console/members",
        params={"q": PHONE},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert _rows(r.text) == [member] and "<html" not in r.text


def test_phone_is_masked_for_a_clerk_and_shown_to_an_admin(staff, member):
    clerk, admin = staff("clerk"), staff("admin")
    for path in ("/console/members?q=王小丽", f"/console/members/{member}"):
        masked = clerk.get(path).text
        assert "139****5678" in masked and PHONE not in masked
        full = admin.get(path).text
        assert PHONE in full and "139****5678" not in full
    assert "xl@example.com" not in clerk.get(f"/console/members/{member}").text
    # A clerk's profile form has no phone field to write a masked number back with, and a
    # phone or email the clerk sends anyway is ignored.
    page = clerk.get(f"/console/members/{member}").text
    assert 'name="phone"' not in page
    r = clerk.post(
        f"/console/members/{member}/profile",
        data={"csrf_token": _csrf(page), "name": "王小丽", "phone": "139****5678", "email": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert PHONE in admin.get(f"/console/members/{member}").text
    assert "xl@example.com" in admin.get(f"/console/members/{member}").text


def test_member_page_shows_tier_progress_balance_expiry_and_history(staff, member):
    admin = staff("admin")
    page = admin.get(f"/console/members/{member}").text
    assert "Gold" in page and "Diamond" in page  # current tier and the next one
    assert "14,000 more growth value" in page
    points = admin.get(f"/console/members/{member}", params={"tab": "points"}).text
    assert 'data-bucket="available">1,500<' in points
    assert '<td>2027-03-01</td><td class="num">1,500<' in points  # usable for 365 days
    assert 'data-posting="' in points and "Earned through the API (order A-1)" in points
    audit = admin.get(f"/console/members/{member}", params={"tab": "audit"}).text
    assert 'data-action="member.tag_add"' in audit and "Tag added" in audit
    assert 'data-action="points.earn"' in audit and "Points earned" in audit
    assert admin.get(f"/console/members/{member}", params={"tab": "orders"}).status_code == 200
    assert admin.get("/console/members/1234567890").status_code == 404


def _count(database, *where: Any, model: Any = AuditRecord) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_profile_form_refuses_bad_input_next_to_the_field_and_changes_nothing(
    staff, member, database, make_member
):
    admin = staff("admin")
    url = f"/console/members/{member}"
    token = _csrf(admin.get(url).text)
    other_phone = "13700001111"
    make_member(phone=other_phone)
    audits = _count(database)
    for field, value, message in (
        ("email", "not-an-email", "valid email"),
        ("birthday", "2099-01-01", "future"),
        ("birthday", "31/12/1990", "YYYY-MM-DD"),
        ("phone", "12345", "mobile phone number"),
        ("gender", "robot", "from the list"),
        ("name", "x" * 101, "100 characters"),
    ):
        form = {"csrf_token": token, "name": "新名字", "phone": PHONE, field: value}
        r = admin.post(f"{url}/profile", data=form)
        assert r.status_code == 422, (field, value)
        assert message in _error_for(r.text, field), (field, value)
    # a new number needs a reason (kept in the audit trail) before anything else
    no_reason = admin.post(
        f"{url}/profile", data={"csrf_token": token, "name": "新名字", "phone": "13700002222"}
    )
    assert no_reason.status_code == 422
    assert "Give a reason" in _error_for(no_reason.text, "reason")
    taken = {"csrf_token": token, "name": "新名字", "phone": other_phone, "reason": "new SIM"}
    assert "already belongs" in _error_for(admin.post(f"{url}/profile", data=taken).text, "phone")
    with database.unit_of_work() as s:
        m = s.scalar(select(Member).where(Member.member_no == member))
        assert m is not None and m.name == "王小丽"
    assert _count(database) == audits
    ok = admin.post(
        f"{url}/profile",
        data={"csrf_token": token, "name": "王丽", "phone": PHONE, "city": "杭州"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    page = admin.get(url).text
    assert "Profile saved." in page and "杭州" in page
    assert _count(database, AuditRecord.action == "member.update") == 1


def test_tag_forms(staff, member, database, client, auth_headers):
    clerk = staff("clerk")
    url = f"/console/members/{member}"
    token = _csrf(clerk.get(url).text)
    for bad, message in (("", "Enter a tag"), ("!!bad", "starts with a letter")):
        r = clerk.post(f"{url}/tags", data={"csrf_token": token, "tag": bad})
        assert r.status_code == 422
        assert message in _error_for(r.text, "tag")
    r = clerk.post(f"{url}/tags/remove", data={"csrf_token": token, "tag": "no-such-tag"})
    assert r.status_code == 422 and "does not have" in _error_for(r.text, "tag")
    assert _count(database, model=MemberTag) == 1
    r = clerk.post(f"{url}/tags", data={"csrf_token": token, "tag": "常客"}, follow_redirects=False)
    assert r.status_code == 303
    assert _rows(clerk.get("/console/members", params={"tag": "常客"}).text) == [member]
    r = clerk.post(f"{url}/tags/remove", data={"csrf_token": token, "tag": "VIP沙龙"})
    assert r.status_code == 200 and "Tag removed." in r.text
    assert _count(database, model=MemberTag) == 1


def test_adjust_form_refuses_bad_input_and_needs_points_adjust(staff, member, database):
    operator, clerk = staff("operator"), staff("clerk")
    url = f"/console/members/{member}"
    token = _csrf(operator.get(url).text)
    postings = _count(database, model=PointsPosting)
    adjustments = _count(database, model=PointsAdjustment)  # the fixture's growth
    for field, form, message in (
        ("amount", {"amount": "", "reason": "x"}, "Enter an amount"),
        ("amount", {"amount": "1.5", "reason": "x"}, "no decimals"),
        ("amount", {"amount": "abc", "reason": "x"}, "whole number"),
        ("amount", {"amount": "0", "reason": "x"}, "not zero"),
        ("amount", {"amount": "-5000", "reason": "x"}, "that many points"),
        ("amount", {"amount": "99999999999", "reason": "x"}, "too large"),
        ("reason", {"amount": "50", "reason": "  "}, "Give a reason"),
        ("ledger", {"amount": "50", "reason": "x", "ledger": "cash"}, "from the list"),
        ("amount", {"amount": "-7000", "reason": "x", "ledger": "growth"}, "growth value"),
    ):
        r = operator.post(f"{url}/adjust", data={"csrf_token": token, "ledger": "points", **form})
        assert r.status_code == 422, form
        assert message in _error_for(r.text, field), form
    assert _count(database, model=PointsPosting) == postings
    assert _count(database, model=PointsAdjustment) == adjustments
    # A clerk may not adjust at all.
    r = clerk.post(
        f"{url}/adjust",
        data={"csrf_token": _csrf(clerk.get(url).text), "amount": "5", "reason": "x"},
    )
    assert r.status_code == 403
    assert _count(database, model=PointsAdjustment) == adjustments
    ok = operator.post(
        f"{url}/adjust",
        data={"csrf_token": token, "ledger": "points", "amount": "-200", "reason": "goodwill fix"},
    )
    assert ok.status_code == 200 and "Adjustment applied." in ok.text
    assert 'data-bucket="available">1,300<' in ok.text


def test_tier_override_form(staff, member, database):
    operator = staff("operator")
    url = f"/console/members/{member}"
    token = _csrf(operator.get(url).text)
    changes = _count(database, model=TierChange)
    for field, form, message in (
        ("tier", {"tier": "platinum", "override_reason": "x"}, "tier from the list"),
        ("override_reason", {"tier": "diamond", "override_reason": " "}, "Give a reason"),
        ("until", {"tier": "diamond", "override_reason": "x", "until": "2020-01-01"}, "future"),
        ("until", {"tier": "diamond", "override_reason": "x", "until": "soon"}, "YYYY-MM-DD"),
    ):
        r = operator.post(f"{url}/tier", data={"csrf_token": token, **form})
        assert r.status_code == 422, form
        assert message in _error_for(r.text, field), form
    assert _count(database, model=TierChange) == changes
    ok = operator.post(
        f"{url}/tier",
        data={"csrf_token": token, "tier": "diamond", "override_reason": "complaint"},
    )
    assert ok.status_code == 200 and "Tier set." in ok.text
    with database.unit_of_work() as s:
        assert s.scalar(select(MemberTier.tier_code)) == "diamond"
    assert _count(database, AuditRecord.action == "tier.override") == 1


def _request_big(
    operator: TestClient, member: str, amount: int = 20_000, balance: str = "1,500"
) -> int:
    url = f"/console/members/{member}"
    r = operator.post(
        f"{url}/adjust",
        data={
            "csrf_token": _csrf(operator.get(url).text),
            "ledger": "points",
            "amount": str(amount),
            "reason": "store closure compensation",
        },
    )
    assert r.status_code == 200 and "second approver" in r.text
    assert f'data-bucket="available">{balance}<' in r.text  # nothing applied yet
    found = re.search(r'data-adjustment="([0-9]+)"', r.text)
    assert found
    return int(found.group(1))


def test_approvals_need_a_second_person_and_decide_once(staff, member, database):
    operator, admin, other_admin = staff("operator"), staff("admin"), staff("admin")
    assert operator.get("/console/approvals").status_code == 403
    adj = _request_big(operator, member)
    # The admin's own request cannot be approved by that admin.
    own = _request_big(admin, member, 15_000)
    page = admin.get("/console/approvals").text
    assert f'data-adjustment="{adj}"' in page and "Your request" in page
    token = _csrf(page)
    r = admin.post(f"/console/approvals/{own}/approve", data={"csrf_token": token})
    assert r.status_code == 403
    assert "another person must decide" in _error_for(r.text, str(own))
    with database.unit_of_work() as s:
        assert s.get(PointsAdjustment, own).status == "pending_approval"
    r = admin.post(f"/console/approvals/{adj}/approve", data={"csrf_token": token, "note": "ok"})
    assert r.status_code == 200 and "approved and applied" in r.text
    detail = admin.get(f"/console/members/{member}", params={"tab": "points"}).text
    assert 'data-bucket="available">21,500<' in detail
    # Decided once: a second decision (another admin, a stale page) is refused and changes nothing.
    token2 = _csrf(other_admin.get("/console/approvals").text)
    r = other_admin.post(f"/console/approvals/{adj}/reject", data={"csrf_token": token2})
    assert r.status_code == 409 and "already decided" in _error_for(r.text, str(adj))
    with database.unit_of_work() as s:
        row = s.get(PointsAdjustment, adj)
        assert row.status == "applied"
    r = other_admin.post(f"/console/approvals/{own}/reject", data={"csrf_token": token2})
    assert r.status_code == 200 and "Adjustment rejected." in r.text
    assert _count(database, AuditRecord.action == "points.adjust_approve") == 1
    assert _count(database, AuditRecord.action == "points.adjust_reject") == 1


def test_history_pages_and_audit_trail_includes_adjustments(
    staff, member, client, auth_headers, database
):
    h = auth_headers("admin")
    for n in range(20):
        r = client.post(
            f"/api/v1/members/{member}/points/earn",
            json={"points": 10, "source_type": "order", "source_id": f"P-{n}"},
            headers=h,
        )
        assert r.status_code == 201
    admin = staff("admin")
    url = f"/console/members/{member}"
    first = admin.get(url, params={"tab": "points"}).text
    assert first.count('data-posting="') == 20 and "Page 1 of 2" in first
    second = admin.get(url, params={"tab": "points", "page": 2}).text
    assert second.count('data-posting="') == 1
    assert "Earned through the API (order A-1)" in second
    operator = staff("operator")
    adj = _request_big(operator, member, 12_000, balance="1,700")
    token = _csrf(admin.get("/console/approvals").text)
    admin.post(f"/console/approvals/{adj}/reject", data={"csrf_token": token, "note": "no"})
    trail = admin.get(url, params={"tab": "audit"}).text
    assert 'data-action="points.adjust_request"' in trail and "Adjustment requested" in trail
    assert 'data-action="points.adjust_reject"' in trail and "Adjustment rejected" in trail


def test_member_pages_in_chinese(staff, member):
    admin = staff("admin")
    admin.headers["Accept-Language"] = "zh-CN"
    page = admin.get(f"/console/members/{member}", params={"tab": "points"}).text
    assert "到期计划" in page and "可用积分" in page and "积分记录" in page
    assert "找到会员：1 位" in admin.get("/console/members", params={"q": PHONE}).text


def test_search_count_stops_at_the_cap(database, member):
    from patron.members import service

    with database.unit_of_work() as s:
        _, total = service.search(s, None, count_limit=1)  # type: ignore[arg-type]
        assert total == 1
        _, total = service.search(s, None)  # type: ignore[arg-type]
        assert total == 2


def test_orders_tab_lists_orders_and_returns(staff, member, client, shop):
    from tests.factories import order_body

    r = client.post("/api/v1/orders", json=order_body(member), headers=shop)
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/orders/pos/O-1/returns",
        json={
            "external_id": "R-1",
            "returned_at": "2026-03-01T12:00:00+08:00",
            "lines": [{"line_no": 2, "quantity": 1}],
        },
        headers=shop,
    )
    assert r.status_code == 201, r.text
    page = staff("clerk").get(f"/console/members/{member}", params={"tab": "orders"}).text
    orders = page[page.index('id="orders"') : page.index('id="returns"')]
    assert "pos · O-1" in orders and "¥219.00" in orders and "Partly returned" in orders
    returns = page[page.index('id="returns"') :]
    assert "R-1" in returns and "¥" in returns


def test_a_removal_larger_than_the_balance_is_refused_when_asked_and_when_approved(
    staff, member, database, client, auth_headers
):
    operator, admin = staff("operator"), staff("admin")
    url = f"/console/members/{member}"
    form = {"csrf_token": _csrf(operator.get(url).text), "ledger": "points", "reason": "fix"}
    # Waiting for approval is no reason to queue what the member cannot pay now.
    r = operator.post(f"{url}/adjust", data={**form, "amount": "-12000"})
    assert r.status_code == 422
    assert "does not have that many points" in _error_for(r.text, "amount")
    assert _count(database, model=PointsAdjustment) == 1  # the fixture's growth adjustment
    # A removal the member can pay now waits; the approver sees the balance and what is left.
    h = auth_headers("admin")
    limits = client.get("/api/v1/points/settings", headers=h).json()
    r = client.put(
        "/api/v1/points/settings", json={**limits, "adjustment_approval_limit": 1000}, headers=h
    )
    assert r.status_code == 200, r.text
    adj = _request_big(operator, member, -1_400)
    page = admin.get("/console/approvals").text
    assert 'data-balance="1500"' in page and 'data-after="100"' in page
    # ... and if the balance falls in between, approving is refused and changes nothing.
    r = operator.post(f"{url}/adjust", data={**form, "amount": "-500"})
    assert r.status_code == 200 and "Adjustment applied." in r.text
    page = admin.get("/console/approvals").text
    assert 'data-after="-400"' in page and "Not enough: refused if approved" in page
    r = admin.post(f"/console/approvals/{adj}/approve", data={"csrf_token": _csrf(page)})
    assert r.status_code == 409
    assert "no longer has enough points" in _error_for(r.text, str(adj))
    with database.unit_of_work() as s:
        assert s.get(PointsAdjustment, adj).status == "pending_approval"
    assert _count(database, AuditRecord.action == "points.adjust_approve") == 0


def test_a_single_admin_decides_their_own_request_after_the_waiting_time(
    staff, member, database, clock, client, auth_headers
):
    h = auth_headers("admin")
    limits = client.get("/api/v1/points/settings", headers=h).json()
    assert limits["self_approval_delay_hours"] == 24  # the default
    r = client.put(
        "/api/v1/points/settings", json={**limits, "self_approval_delay_hours": 1}, headers=h
    )
    assert r.status_code == 200, r.text
    admin = staff("admin")
    own = _request_big(admin, member, 15_000)
    page = admin.get("/console/approvals").text
    assert "or you after" in page and "data-self-decide" not in page
    r = admin.post(f"/console/approvals/{own}/approve", data={"csrf_token": _csrf(page)})
    assert r.status_code == 403
    for _ in range(3):  # the console session slides while in use
        clock.advance(timedelta(minutes=20))
        page = admin.get("/console/approvals").text
    assert f'data-self-decide="{own}"' in page
    r = admin.post(f"/console/approvals/{own}/approve", data={"csrf_token": _csrf(page)})
    assert r.status_code == 200 and "approved and applied" in r.text
    with database.unit_of_work() as s:
        assert s.get(PointsAdjustment, own).status == "applied"
        record = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "points.adjust_approve")
        ).one()
        assert record.after["self_decided"] is True


def test_tier_history_and_consent_sources_in_chinese(staff, client, make_member, auth_headers):
    no = make_member(consents={"email": True})
    h = auth_headers("admin")
    r = client.post(
        f"/api/v1/members/{no}/points/adjustments",
        json={"ledger": "growth", "amount": 6000, "reason": "tier for the tests"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert client.put(f"/api/v1/members/{no}/consents", json={"sms": True}, headers=h).is_success
    admin = staff("admin")
    admin.headers["Accept-Language"] = "zh-CN"
    page = admin.get(f"/console/members/{no}").text
    history = page[page.index("<h3>等级变动记录</h3>") :]
    history = history[: history.index("</table>")]
    assert "金卡会员" in history and "普通会员" in history
    assert "Gold" not in history and "Regular" not in history
    consents = page[page.index('id="consents"') :]
    consents = consents[: consents.index("</table>")]
    assert re.search(r'data-consent-source="register:web">注册时（官网）<', consents)
    assert re.search(r'data-consent-source="staff:[^"]+">员工 · ', consents)


@pytest.mark.parametrize("role", ["analyst", "clerk", "operator", "admin"])
def test_no_role_is_shown_a_link_or_form_it_may_not_use(staff, member, client, shop, role):
    """Every console link a role sees opens, and every form it sees is accepted past the
    permission check (posted empty: refused as incomplete, never 403)."""
    from tests.factories import order_body

    assert client.post("/api/v1/orders", json=order_body(member), headers=shop).status_code == 201
    c = staff(role)
    pages = [
        "/console/",
        "/console/members",
        "/console/desk",
        f"/console/desk?member={member}",
        f"/console/desk/returns?member={member}",
        "/console/desk/register",
        *(f"/console/members/{member}?tab={t}" for t in ("overview", "points", "orders", "audit")),
    ]
    seen: set[tuple[str, str]] = set()
    for url in pages:
        page = c.get(url)
        if page.status_code == 403:
            continue
        assert page.status_code == 200, url
        token = _csrf(page.text)
        for href in re.findall(r'href="(/console[^"#]*)"', page.text):
            seen.add(("get", html.unescape(href)))
        for method, action in re.findall(
            r'<form method="(get|post)" action="(/console[^"]*)"', page.text
        ):
            seen.add((method, html.unescape(action)))
    for method, url in sorted(seen):
        if url in ("/console/logout", "/console/lang"):
            continue
        if method == "get":
            status = c.get(url, follow_redirects=False).status_code
        else:
            status = c.post(url, data={"csrf_token": token}, follow_redirects=False).status_code
        assert status != 403, (role, method, url)
        assert status < 500, (role, method, url)
