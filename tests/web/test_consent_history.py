"""Consent changes and their history on the console's member page (SQLite and PostgreSQL):
each grant and withdrawal with its channel, time and source, newest first, in both languages."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from patron.members import service as members
from tests.web.test_members_pages import staff  # noqa: F401


def _history(page: str) -> str:
    part = page[page.index('id="consent-history"') :]
    return part[: part.index("</table>")]


def test_consent_history_lists_every_change_newest_first(
    staff,  # noqa: F811
    client,
    make_member,
    auth_headers,
    clock,
    database,
):
    no = make_member(consents={"email": True})
    h = auth_headers("admin")
    for body in ({"sms": True}, {"sms": False, "wechat": True}):
        clock.advance(timedelta(minutes=5))
        assert client.put(f"/api/v1/members/{no}/consents", json=body, headers=h).is_success
    clock.advance(timedelta(minutes=5))
    # Unchanged values write no event.
    assert client.put(f"/api/v1/members/{no}/consents", json={"sms": False}, headers=h).is_success

    with database.unit_of_work() as s:
        member_id = members.get_member(s, no).id
        events, total = members.consent_history(s, member_id, limit=2)
        assert total == 4
        assert [(e.channel, e.granted) for e in events] in (
            [("sms", False), ("wechat", True)],
            [("wechat", True), ("sms", False)],
        )
        everything, _ = members.consent_history(s, member_id)
        assert [(e.channel, e.granted) for e in everything][-2:] == [("sms", True), ("email", True)]
        assert everything[-1].source == "register:web"

    operator = staff("operator")
    rows = re.findall(
        r'<tr data-channel="(\w+)" data-granted="(\w+)">',
        _history(operator.get(f"/console/members/{no}").text),
    )
    assert rows[2:] == [("sms", "yes"), ("email", "yes")]
    assert sorted(rows[:2]) == [("sms", "no"), ("wechat", "yes")]
    operator.headers["Accept-Language"] = "zh-CN"
    zh = operator.get(f"/console/members/{no}").text
    assert "授权变更记录" in zh
    history = _history(zh)
    assert "已拒绝" in history and "已同意" in history
    assert re.search(r'data-consent-source="register:web">注册时（官网）<', history)
    assert re.search(r'data-consent-source="staff:[^"]+">员工 · ', history)


def test_member_without_consents_says_so(staff, make_member):  # noqa: F811
    no = make_member()
    page = staff("clerk").get(f"/console/members/{no}").text
    assert "Consent history" in page
    assert "No consent was given or withdrawn yet." in page
    assert 'id="consent-history"' not in page


def test_a_long_history_shows_the_latest_and_points_to_the_audit_trail(
    staff,  # noqa: F811
    client,
    make_member,
    auth_headers,
    clock,
):
    no = make_member()
    h = auth_headers("admin")
    for i in range(23):
        clock.advance(timedelta(minutes=1))
        body: dict[str, Any] = {"push": i % 2 == 0}
        assert client.put(f"/api/v1/members/{no}/consents", json=body, headers=h).is_success
    page = staff("clerk").get(f"/console/members/{no}").text
    assert _history(page).count("<tr data-channel=") == 20
    assert "The latest 20 of 23 changes; the audit trail has every one." in page
