"""Console pages around campaigns, without a browser (SQLite and PostgreSQL): the referral review
queue (approve / refuse, audited, a second decision refused), member events (places, waiting
list, the check-in list, check-in by code, closing marks no-shows) and issuing a coupon to a
campaign's audience."""

from __future__ import annotations

import re

from sqlalchemy import func, insert, select

from patron.audit.models import AuditRecord
from patron.campaigns.models import EventRegistration, Referral
from patron.coupons.models import Coupon
from patron.members.models import Member
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.web.test_config_pages import _csrf, operator  # noqa: F401 - the fixture

EVENT = {
    "code": "salon",
    "name": "VIP salon",
    "starts_at": "2026-03-08T10:00:00+08:00",
    "capacity": 1,
    "points_cost": 0,
}


def _ids(database):
    with database.unit_of_work() as s:
        return dict(s.execute(select(Member.member_no, Member.id)).all())


def test_referral_review_queue(client, database, make_member, clock, operator):  # noqa: F811
    referrer, referee = make_member(), make_member()
    ids = _ids(database)
    with database.unit_of_work() as s:
        for status in ("held", "pending"):
            s.execute(
                insert(Referral).values(
                    referrer_id=ids[referrer],
                    referee_id=ids[referee] if status == "held" else ids[referrer],
                    status=status,
                    reason="phone_prefix_burst" if status == "held" else None,
                    phone_prefix="8613900",
                    created_at=clock.now(),
                )
            )
        held = s.scalar(select(Referral.id).where(Referral.status == "held"))
    page = client.get("/console/referrals")
    assert page.status_code == 200
    assert f'data-referral="{held}"' in page.text and referee in page.text
    assert "Many sign-ups from similar phone numbers in a short time" in page.text
    assert page.text.count("data-referral=") == 1  # only held referrals wait for review
    done = client.post(
        f"/console/referrals/{held}/decision",
        data={"decision": "approve", "csrf_token": operator},
        follow_redirects=False,
    )
    assert done.status_code == 303
    with database.unit_of_work() as s:
        assert s.scalar(select(Referral.status).where(Referral.id == held)) == "pending"
        assert s.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.entity_id == str(held))
        )
    assert "No referral is waiting for review." in client.get("/console/referrals").text
    again = client.post(
        f"/console/referrals/{held}/decision", data={"decision": "refuse", "csrf_token": operator}
    )
    assert again.status_code == 409 and "This referral was already decided." in again.text
    bad = client.post(
        f"/console/referrals/{held}/decision", data={"decision": "maybe", "csrf_token": operator}
    )
    assert bad.status_code == 422


def test_member_event_pages(client, database, make_member, auth_headers, operator):  # noqa: F811
    shop = auth_headers("operator")
    assert client.post("/api/v1/member-events", json=EVENT, headers=shop).status_code == 201
    first, second = make_member(), make_member()
    regs = [
        client.post(
            "/api/v1/member-events/salon/registrations", json={"member_no": no}, headers=shop
        ).json()
        for no in (first, second)
    ]
    listing = client.get("/console/member-events")
    assert listing.status_code == 200 and 'data-event="salon"' in listing.text
    page = client.get("/console/member-events/salon")
    assert "1 of 1 places taken, 1 on the waiting list." in page.text
    assert page.text.index(first) < page.text.index(second)  # places first, then waiting
    assert "On the waiting list" in page.text
    wrong = client.post(
        "/console/member-events/salon/checkin",
        data={"checkin_code": "NOPE1234", "csrf_token": operator},
    )
    assert wrong.status_code == 404
    assert "No place at this event has that check-in code." in wrong.text
    ok = client.post(
        "/console/member-events/salon/checkin",
        data={"checkin_code": regs[0]["checkin_code"], "csrf_token": operator},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    closed = client.post(
        "/console/member-events/salon/close", data={"csrf_token": operator}, follow_redirects=False
    )
    assert closed.status_code == 303
    with database.unit_of_work() as s:
        statuses = sorted(s.scalars(select(EventRegistration.status)))
    assert statuses == ["attended", "waitlisted"]
    page = client.get("/console/member-events/salon")
    assert "Attended" in page.text and "Closed on" in page.text
    assert 'action="/console/member-events/salon/close"' not in page.text


def test_campaign_page_issues_a_coupon_to_its_audience(
    client,
    database,
    make_member,
    auth_headers,
    operator,  # noqa: F811
):
    shop = auth_headers("operator")
    nos = [make_member() for _ in range(3)]
    put_template(client, shop, "T", {**THRESHOLD, "total_quantity": None})
    r = client.post(
        "/api/v1/campaigns",
        json={
            "code": "spring",
            "name": "Spring",
            "schedule": {"kind": "one_off", "start": "2026-03-01", "end": "2026-03-31"},
        },
        headers=shop,
    )
    assert r.status_code == 201, r.text
    assert "data-coupon-issue" not in client.get("/console/campaigns/spring").text  # a draft
    client.post("/api/v1/campaigns/spring/status", json={"status": "active"}, headers=shop)
    page = client.get("/console/campaigns/spring")
    assert "data-coupon-issue" in page.text and "(3 members now)" in page.text
    for _ in range(2):  # the second time gives nobody a second coupon
        done = client.post(
            "/console/campaigns/spring/coupons",
            data={"template": "T", "csrf_token": _csrf(page.text)},
            follow_redirects=False,
        )
        assert done.status_code == 303
    with database.unit_of_work() as s:
        held = s.scalar(select(func.count()).select_from(Coupon))
    assert held == len(nos)


def test_campaign_form_previews_a_segment_audience(
    client,
    database,
    make_member,
    auth_headers,
    operator,  # noqa: F811
):
    for _ in range(3):
        make_member()
    rule = {"op": "and", "rules": [{"field": "registered", "on_or_after": "2000-01-01"}]}
    r = client.post(
        "/api/v1/segments",
        json={"code": "everyone", "name": "Everyone", "rule": rule},
        headers=auth_headers("operator"),
    )
    assert r.status_code == 201, r.text
    page = client.get("/console/campaigns")
    assert '<option value="everyone"' in page.text
    form = {
        "code": "seg",
        "name": "Segment week",
        "kind": "one_off",
        "start": "2026-03-02",
        "end": "2026-03-08",
        "csrf_token": operator,
        "action": "preview",
    }
    shown = client.post("/console/campaigns", data={**form, "segment": "everyone"})
    assert shown.status_code == 200
    assert "This campaign reaches 3 members (0 held out as the control group)" in shown.text
    unknown = client.post("/console/campaigns", data={**form, "segment": "gone"})
    assert unknown.status_code == 422 and "Choose one of the saved segments." in unknown.text


def test_actions_that_earn_page(client, database, make_member, auth_headers, operator):  # noqa: F811
    empty = client.get("/console/campaign-actions")
    assert empty.status_code == 200 and "No actions that earn yet." in empty.text
    form = {
        "code": "share",
        "name": "Share a product",
        "kind": "share",
        "points": "5",
        "daily_cap": "2",
        "total_cap": "",
        "campaign": "",
        "csrf_token": operator,
    }
    bad = client.post("/console/campaign-actions", data={**form, "points": "0"})
    assert bad.status_code == 422 and "whole points of 1 or more" in bad.text
    saved = client.post("/console/campaign-actions", data=form, follow_redirects=False)
    assert saved.status_code == 303
    again = client.post("/console/campaign-actions", data=form)
    assert again.status_code == 409 and "Another action already uses this code." in again.text
    no = make_member()
    done = client.post(
        "/api/v1/campaigns/actions/share/done",
        json={"member_no": no, "ref": "s1"},
        headers=auth_headers("operator"),
    )
    assert done.status_code == 200, done.text
    page = client.get("/console/campaign-actions")
    row = page.text[page.text.index('data-action="share"') :]
    assert "Share a product" in row and "Always on" in row
    assert re.search(r'class="num">1</td>\s*<td class="num">5</td>', row), row[:600]


def test_recall_settings_page(client, database, auth_headers, operator):  # noqa: F811
    put_template(client, auth_headers("operator"), "BACK", THRESHOLD)
    page = client.get("/console/recall")
    assert page.status_code == 200 and "0 packs given so far, to 0 members." in page.text
    form = {
        "enabled": "1",
        "stages": ["dormant", "churned"],
        "points": "300",
        "coupon_template": "BACK",
        "window_days": "60",
        "batch": "500",
        "csrf_token": operator,
    }
    bad = client.post("/console/recall", data={**form, "points": "0", "coupon_template": ""})
    assert bad.status_code == 422 and "points or a coupon when the packs are on" in bad.text
    saved = client.post("/console/recall", data=form, follow_redirects=False)
    assert saved.status_code == 303
    got = client.get("/api/v1/recall/settings", headers=auth_headers("operator")).json()
    assert got == {
        "enabled": True,
        "stages": ["dormant", "churned"],
        "points": 300,
        "coupon_template": "BACK",
        "window_days": 60,
        "batch": 500,
    }
