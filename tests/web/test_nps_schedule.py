"""Scheduled NPS surveys (SQLite and PostgreSQL): a round every interval goes through
messaging to a sample of members who agreed to messages, never twice to a member within the
configured days; the member answers in the portal once, and the answer counts in the NPS
report by tier."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from patron.auth.models import StaffUser
from patron.members.models import Member
from patron.messaging.models import Message
from patron.service import jobs
from tests.web.test_members_pages import _csrf, staff  # noqa: F401
from tests.web.test_portal_pages import portal_sign_in

PHONE = "13955550001"
BASE = "https://members.example.com"


def _asked(database) -> list[tuple[str, str, str]]:
    with database.unit_of_work() as s:
        return [
            (no, m.source_code, m.body)
            for m, no in s.execute(
                select(Message, Member.member_no)
                .join(Member, Member.id == Message.member_id)
                .where(Message.source_kind == "survey")
                .order_by(Message.id)
            )
        ]


def test_rounds_follow_the_schedule_and_ask_a_member_once_in_the_window(
    client,
    app,
    auth_headers,
    make_member,
    database,
    clock,
    staff,  # noqa: F811
):
    one = make_member(phone=PHONE, name="甲", consents={"sms": True})
    two = make_member(name="乙", consents={"email": True})
    make_member(name="丙", consents={"sms": False})  # never asked: no consent
    assert jobs.run_nps_surveys(database, clock.now(), base_url=BASE)["round"] is None  # off
    h = auth_headers("admin", fresh=True)
    settings = client.get("/api/v1/service/settings", headers=h).json()
    schedule = {"enabled": True, "interval_days": 30, "sample": 1, "member_days": 90}
    bad = client.put(
        "/api/v1/service/settings",
        json={**settings, "nps_schedule": {**schedule, "sample": 0}},
        headers=h,
    )
    assert bad.status_code == 422
    r = client.put(
        "/api/v1/service/settings", json={**settings, "nps_schedule": schedule}, headers=h
    )
    assert r.status_code == 200, r.text

    first = jobs.run_nps_surveys(database, clock.now(), base_url=BASE)
    assert first["queued"] == 1
    assert jobs.run_nps_surveys(database, clock.now(), base_url=BASE)["round"] is None
    clock.advance(timedelta(days=29))
    assert jobs.run_nps_surveys(database, clock.now(), base_url=BASE)["round"] is None
    clock.advance(timedelta(days=1))
    assert jobs.run_nps_surveys(database, clock.now(), base_url=BASE)["queued"] == 1
    asked = _asked(database)
    assert {no for no, _, _ in asked} == {one, two}  # the second round took the other member
    assert asked[0][1] != asked[1][1]
    assert all(f"{BASE}/portal/survey" in body for _, _, body in asked)
    assert any(body.startswith("甲，") for _, _, body in asked)
    clock.advance(timedelta(days=30))
    # both were asked within 90 days: nobody is left to ask
    assert jobs.run_nps_surveys(database, clock.now(), base_url=BASE)["queued"] == 0

    client.headers["Accept-Language"] = "zh-CN"
    portal_sign_in(client, app, PHONE)
    page = client.get("/portal/survey")
    assert page.status_code == 200 and 'data-testid="nps-survey"' in page.text
    token = _csrf(page.text)
    bad = client.post("/portal/survey", data={"csrf_token": token, "nps": ""})
    assert bad.status_code == 422
    done = client.post("/portal/survey", data={"csrf_token": token, "nps": "10", "comment": "好"})
    assert done.status_code == 200 and 'data-testid="no-survey"' in done.text
    again = client.post("/portal/survey", data={"csrf_token": token, "nps": "3"})
    assert again.status_code == 422

    nps = staff("operator").get("/console/service/nps").text
    assert 'data-nps-overall="100"' in nps


def test_a_member_never_asked_cannot_answer(client, app, make_member):
    make_member(phone=PHONE, name="丁", consents={"sms": True})
    portal_sign_in(client, app, PHONE)
    page = client.get("/portal/survey")
    assert 'data-testid="no-survey"' in page.text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    r = client.post("/portal/survey", data={"csrf_token": token, "nps": "9"})
    assert r.status_code == 422 and 'data-error-for="survey"' in r.text


def test_settings_naming_a_missing_template_or_advisor_are_refused(client, auth_headers, database):
    h = auth_headers("admin", fresh=True)
    with database.unit_of_work() as s:
        advisor = s.scalar(select(StaffUser.username).where(StaffUser.role == "admin"))
    settings = client.get("/api/v1/service/settings", headers=h).json()
    schedule = {**settings["nps_schedule"], "enabled": True, "template": "no-such-survey"}
    r = client.put(
        "/api/v1/service/settings", json={**settings, "nps_schedule": schedule}, headers=h
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "nps_template_not_found"
    r = client.put(
        "/api/v1/service/settings", json={**settings, "vip_advisor": "nobody"}, headers=h
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "vip_advisor_not_found")
    # nothing was saved
    assert client.get("/api/v1/service/settings", headers=h).json() == settings
    tpl = {"name": "NPS", "texts": {"zh-CN": {"subject": "调查", "body": "请评分"}}}
    assert client.put("/api/v1/message-templates/survey", json=tpl, headers=h).status_code == 200
    schedule["template"] = "survey"
    r = client.put(
        "/api/v1/service/settings",
        json={**settings, "nps_schedule": schedule, "vip_advisor": advisor},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/service/settings", headers=h).json()["vip_advisor"] == advisor
