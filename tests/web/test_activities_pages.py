"""Portal activities (SQLite and PostgreSQL): the member's campaigns, events with a waiting
list, and their referral code."""

from __future__ import annotations

from tests.web.test_portal_pages import _csrf, portal_sign_in

EVENT = {
    "code": "salon",
    "name": "VIP salon",
    "starts_at": "2026-03-08T10:00:00+08:00",
    "capacity": 1,
}


def test_a_member_sees_campaigns_joins_an_event_and_has_a_code(client, app, shop, make_member):
    client.post(
        "/api/v1/campaigns",
        json={
            "code": "thursday",
            "name": "Thursday member day",
            "schedule": {"kind": "weekly", "weekdays": [4]},
            "multiplier_bp": 20_000,
            "budget_points": 1_000,
        },
        headers=shop,
    )
    client.post("/api/v1/campaigns/thursday/status", json={"status": "active"}, headers=shop)
    client.post("/api/v1/member-events", json=EVENT, headers=shop)
    other = make_member("13911112222")
    client.post(
        "/api/v1/member-events/salon/registrations", json={"member_no": other}, headers=shop
    )
    make_member("13955556666")
    portal_sign_in(client, app, "13955556666")
    page = client.get("/portal/activities")
    assert page.status_code == 200
    assert 'data-campaign="thursday"' in page.text and "2026-03-05" in page.text
    assert "data-referral-code" in page.text and "<svg" in page.text
    token = _csrf(page.text)
    r = client.post("/portal/activities/events/salon/register", data={"csrf_token": token})
    assert r.status_code == 200
    assert 'data-registration="waitlisted"' in client.get("/portal/activities").text
    gone = client.post("/portal/activities/events/nosuch/register", data={"csrf_token": token})
    assert gone.status_code == 404


def test_a_member_sees_what_a_referral_gives(client, app, shop, make_member):
    from tests.coupons.test_coupons_api import THRESHOLD, put_template

    make_member("13955556666")
    portal_sign_in(client, app, "13955556666")
    client.headers["Accept-Language"] = "en"  # the English sentences are asserted
    plain = client.get("/portal/activities").text
    assert "You get 500 points." in plain and "Your friend gets 200 points." in plain
    assert "coupon" not in plain.split("data-referral-offer")[1].split("</ul>")[0]
    put_template(client, shop, "REF-A", {**THRESHOLD, "name": "推荐礼券"})
    body = {"referrer_points": 0, "referee_coupon": "REF-A", "referrer_tier_up": True}
    assert client.put("/api/v1/referrals/settings", json=body, headers=shop).status_code == 200
    page = client.get("/portal/activities").text
    offer = page.split("data-referral-offer")[1].split("</ul>")[0]
    assert "You get" not in offer.replace("You get the", "")  # no points line for 0 points
    assert "You move up to the next membership tier." in offer
    assert "Your friend gets the coupon 推荐礼券." in offer
    off = {"enabled": False}
    assert client.put("/api/v1/referrals/settings", json=off, headers=shop).status_code == 200
    assert "data-referral-offer" not in client.get("/portal/activities").text
