"""Members through the API: registration, bad input, masking, consent, tags, search."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.members.models import ConsentEvent, Member

URL = "/api/v1/members"


def _counts(database):
    with database.unit_of_work() as s:
        return (
            s.scalar(select(func.count()).select_from(Member)),
            s.scalar(select(func.count()).select_from(AuditRecord)),
        )


@pytest.mark.parametrize("channel", ["store", "kiosk", "web", "app", "mini_program", "partner"])
def test_register_from_every_channel(client, auth_headers, channel):
    body = {"phone": "13800138000", "channel": channel, "store_code": "SH001"}
    r = client.post(URL, json=body, headers=auth_headers("clerk"))
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["registration"]["channel"] == channel
    assert m["registration"]["store_code"] == "SH001"
    assert len(m["member_no"]) == 10
    assert m["status"] == "active"


def test_referrers_are_recorded_and_checked(client, auth_headers, make_member):
    referrer = make_member("13900139000")
    h = auth_headers("clerk")
    r = client.post(
        URL,
        json={"phone": "13800138000", "channel": "web", "referrer_member_no": referrer},
        headers=h,
    )
    assert r.status_code == 201
    assert r.json()["registration"]["referrer_member_no"] == referrer
    r = client.post(
        URL,
        json={"phone": "13700137000", "channel": "web", "referrer_member_no": "1234567897"},
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "referrer_not_found"
    me = client.get("/api/v1/auth/me", headers=h).json()
    r = client.post(
        URL,
        json={
            "phone": "13600136000",
            "channel": "store",
            "store_code": "SH001",
            "referrer_staff_id": me["id"],
        },
        headers=h,
    )
    assert r.json()["registration"]["referrer_staff_id"] == me["id"]


@pytest.mark.parametrize("spelling", ["+86 138 0013 8000", "008613800138000", "13800138000"])
def test_duplicate_phone_in_any_spelling_names_the_member_not_the_person(
    client, auth_headers, make_member, database, spelling
):
    existing = make_member("13800138000", name="张伟")
    h = auth_headers("clerk")
    before = _counts(database)
    r = client.post(URL, json={"phone": spelling, "channel": "web"}, headers=h)
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "member_exists"
    assert existing in err["message"]
    assert err["details"] == {"member_no": existing}
    assert "张伟" not in r.text
    assert "8000" not in err["message"].replace(existing, "")
    assert _counts(database) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phone": "12345", "channel": "web"}, "invalid_phone"),
        ({"phone": "13800138000", "channel": "fax"}, "validation_error"),
        (
            {"phone": "13800138000", "channel": "web", "birthday": "2099-01-01"},
            "birthday_in_future",
        ),
        (
            {"phone": "13800138000", "channel": "web", "birthday": "1850-01-01"},
            "birthday_out_of_range",
        ),
        ({"phone": "13800138000", "channel": "store"}, "store_required"),
        ({"phone": "13800138000", "channel": "web", "name": "x" * 101}, "validation_error"),
        ({"phone": "1" * 40, "channel": "web"}, "validation_error"),
        (
            {"phone": "13800138000", "channel": "web", "referrer_staff_id": 2**40},
            "validation_error",
        ),
        ({"phone": "13800138000", "channel": "web", "email": "not-an-email"}, "validation_error"),
        ({"phone": "13800138000", "channel": "web", "tier": "diamond"}, "validation_error"),
        ({"phone": "13800138000", "channel": "web", "points": 100000}, "validation_error"),
        ({"phone": "13800138000", "channel": "web", "status": "vip"}, "validation_error"),
        ({"phone": "13800138000", "channel": "web", "member_no": "1111111116"}, "validation_error"),
        ({"channel": "web"}, "validation_error"),
        ({"phone": "13800138000", "channel": "web", "name": "Li\u0000Na"}, "invalid_character"),
    ],
)
def test_bad_registrations_change_nothing(client, auth_headers, database, body, code):
    h = auth_headers("clerk")
    before = _counts(database)
    r = client.post(URL, json=body, headers=h)
    assert 400 <= r.status_code < 500
    assert r.json()["error"]["code"] == code
    assert _counts(database) == before


def test_mass_assignment_names_the_field(client, auth_headers):
    r = client.post(
        URL,
        json={"phone": "13800138000", "channel": "web", "tier": "gold"},
        headers=auth_headers("clerk"),
    )
    assert "tier" in r.json()["error"]["message"]


def test_masking_depends_on_the_caller(client, auth_headers, api_key_headers, make_member):
    no = make_member("13800138000", email="zhang.wei@example.com")
    for role in ("clerk", "operator", "analyst"):
        m = client.get(f"{URL}/{no}", headers=auth_headers(role)).json()
        assert m["phone"] == "138****8000"
        assert m["email"] == "z***@example.com"
    full = client.get(f"{URL}/{no}", headers=auth_headers("admin")).json()
    assert full["phone"] == "13800138000"
    assert full["email"] == "zhang.wei@example.com"
    pii = client.get(f"{URL}/{no}", headers=api_key_headers("members:read", "members:pii")).json()
    assert pii["phone"] == "13800138000"
    masked = client.get(f"{URL}/{no}", headers=api_key_headers("members:read")).json()
    assert masked["phone"] == "138****8000"
    listed = client.get(f"{URL}?q=13800138000", headers=auth_headers("clerk")).json()
    assert listed["items"][0]["phone"] == "138****8000"


def test_profile_edit_and_protected_fields(client, auth_headers, make_member, database):
    no = make_member()
    h = auth_headers("clerk")
    r = client.patch(
        f"{URL}/{no}",
        json={
            "name": "李娜",
            "city": "杭州",
            "gender": "female",
            "email": "li.na@example.com",
            "birthday": "1992-02-29",
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    m = r.json()
    assert (m["name"], m["city"], m["birthday"]) == ("李娜", "杭州", "1992-02-29")
    assert m["profile_complete"] is True
    before = _counts(database)
    for field, value in (("status", "frozen"), ("tier", "gold"), ("points", 1), ("member_no", "1")):
        r = client.patch(f"{URL}/{no}", json={field: value}, headers=h)
        assert r.status_code == 422, field
    r = client.patch(f"{URL}/{no}", json={"birthday": "2099-01-01"}, headers=h)
    assert r.json()["error"]["code"] == "birthday_in_future"
    assert _counts(database) == before
    # Moving to a phone number another member holds is refused.
    other = make_member("13900139000")
    r = client.patch(
        f"{URL}/{no}",
        json={"phone": "+86 139 0013 9000", "reason": "typo at registration"},
        headers=auth_headers("admin"),
    )
    assert r.status_code == 409
    assert r.json()["error"]["details"]["member_no"] == other


def test_consent_per_channel_with_timestamps_and_history(
    client, auth_headers, make_member, database, clock
):
    no = make_member(consents={"sms": True, "email": False})
    h = auth_headers("clerk")
    m = client.get(f"{URL}/{no}", headers=h).json()
    assert {c["channel"]: c["granted"] for c in m["consents"]} == {"email": False, "sms": True}
    clock.advance(timedelta(days=3))
    h = auth_headers("operator")  # a fresh sign-in: tokens last 30 minutes
    r = client.put(f"{URL}/{no}/consents", json={"sms": False, "wechat": True}, headers=h)
    assert r.status_code == 200
    consents = {c["channel"]: c for c in r.json()["consents"]}
    assert consents["sms"]["granted"] is False
    assert consents["wechat"]["granted"] is True
    assert consents["sms"]["updated_at"].startswith("2026-03-04")
    assert consents["email"]["updated_at"].startswith("2026-03-01")
    with database.unit_of_work() as s:
        events = s.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        assert [(e.channel, e.granted) for e in events] == [
            ("sms", True),
            ("email", False),
            ("sms", False),
            ("wechat", True),
        ]
    r = client.put(f"{URL}/{no}/consents", json={"fax": True}, headers=h)
    assert r.status_code == 422


def test_tags_and_search(client, auth_headers, make_member):
    h = auth_headers("clerk")
    a = make_member("13800138000", name="张伟")
    b = make_member("13900139000", name="张敏")
    make_member("13700137000", name="王芳")
    assert client.post(f"{URL}/{a}/tags", json={"tag": "VIP沙龙"}, headers=h).json()["tags"] == [
        "VIP沙龙"
    ]
    assert client.post(f"{URL}/{a}/tags", json={"tag": "<script>"}, headers=h).status_code == 422

    def found(query):
        return [m["member_no"] for m in client.get(f"{URL}?{query}", headers=h).json()["items"]]

    assert found("q=%2B86%20138%200013%208000") == [a]
    assert found("phone=008613800138000") == [a]
    assert found(f"q={b}") == [b]
    assert sorted(found("q=张")) == sorted([a, b])
    assert found("tag=VIP沙龙") == [a]
    page = client.get(f"{URL}?limit=2&offset=0", headers=h).json()
    assert (page["total"], len(page["items"])) == (3, 2)
    assert client.delete(f"{URL}/{a}/tags/VIP沙龙", headers=h).json()["tags"] == []
    assert client.delete(f"{URL}/{a}/tags/VIP沙龙", headers=h).status_code == 404
    assert client.get(f"{URL}/1234567897", headers=h).status_code == 404


def test_a_phone_change_needs_members_pii_and_a_reason_in_the_audit(
    client, auth_headers, api_key_headers, make_member, database
):
    """The phone number is the member's portal sign-in: a clerk or a POS key that could change
    it could take the account over (and export the member's data)."""
    no = make_member("13900001234")
    admin = auth_headers("admin")
    audits = _count_audits(database)
    r = client.patch(f"{URL}/{no}", json={"phone": "13700007777"}, headers=auth_headers("clerk"))
    assert r.status_code == 403, r.text
    for headers in (
        auth_headers("clerk"),
        auth_headers("operator"),
        api_key_headers("members:read", "members:write"),
    ):
        r = client.patch(
            f"{URL}/{no}",
            json={"phone": "13700007777", "reason": "asked by phone"},
            headers=headers,
        )
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
        assert r.json()["error"]["details"] == {"permission": "members:pii", "field": "phone"}
    pii_key = api_key_headers("members:read", "members:write", "members:pii")
    for body, code in (
        ({"phone": "13700007777"}, "reason_required"),
        ({"phone": "13700007777", "reason": "   "}, "validation_error"),
    ):
        r = client.patch(f"{URL}/{no}", json=body, headers=pii_key)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == code
    assert client.get(f"{URL}/{no}", headers=admin).json()["phone"] == "13900001234"
    assert _count_audits(database) == audits
    # the same number in another spelling is no change: no proof needed, and a clerk may still
    # edit the rest of the profile
    r = client.patch(
        f"{URL}/{no}",
        json={"phone": "+86 139 0000 1234", "city": "杭州"},
        headers=auth_headers("clerk"),
    )
    assert r.status_code == 200, r.text
    r = client.patch(
        f"{URL}/{no}",
        json={"phone": "13911111234", "reason": "new SIM; ID checked at SH001"},
        headers=pii_key,
    )
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "13911111234"
    with database.unit_of_work() as s:
        rec = s.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "member.update", AuditRecord.entity_id == no)
            .order_by(AuditRecord.id.desc())
        ).first()
        assert rec is not None and rec.actor_type == "apikey"
        # one mask for both numbers: the record still says the phone changed, and why
        assert rec.before["phone"] == rec.after["phone"] == "139****1234"
        assert rec.after["phone_changed"] is True
        assert rec.after["reason"] == "new SIM; ID checked at SH001"


def _count_audits(database) -> int:
    with database.unit_of_work() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.action == "member.update")
            )
            or 0
        )


def test_replacing_an_email_needs_members_pii(client, auth_headers, api_key_headers, make_member):
    """A clerk may fill in a missing email; replacing one (where receipts and notices go) needs
    the permission that may see it, and a refused change writes nothing."""
    no = make_member("13900005678")
    clerk = auth_headers("clerk")
    r = client.patch(f"{URL}/{no}", json={"email": "Wang@Example.com"}, headers=clerk)
    assert r.status_code == 200, r.text
    # the same address in another case is no change
    r = client.patch(
        f"{URL}/{no}", json={"email": "wang@example.com", "city": "杭州"}, headers=clerk
    )
    assert r.status_code == 200, r.text
    for headers in (clerk, api_key_headers("members:read", "members:write")):
        for email in ("thief@example.com", None):
            r = client.patch(f"{URL}/{no}", json={"email": email}, headers=headers)
            assert r.status_code == 403, r.text
            assert r.json()["error"]["details"] == {"permission": "members:pii", "field": "email"}
    pii = api_key_headers("members:read", "members:write", "members:pii")
    assert client.get(f"{URL}/{no}", headers=pii).json()["email"] == "wang@example.com"
    r = client.patch(f"{URL}/{no}", json={"email": "new@example.com"}, headers=pii)
    assert r.status_code == 200, r.text
    assert client.get(f"{URL}/{no}", headers=pii).json()["email"] == "new@example.com"
