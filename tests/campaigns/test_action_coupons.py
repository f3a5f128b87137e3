"""An action that earns may also give a coupon with each reward: once per (action, member,
ref) like its points, refused coupons leave the points given, a missing template is refused
when the action is created (nothing written), and the console's form offers the templates."""

from __future__ import annotations

from sqlalchemy import func, select, update

from patron.campaigns.models import CampaignAction
from patron.checks import run_all
from patron.coupons.models import Coupon
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.web.test_config_pages import operator  # noqa: F401 - the fixture

ACTION = {"code": "review", "kind": "review", "name": "Review", "points": 10, "daily_cap": 5}


def _done(client, h, no, ref):
    r = client.post(
        "/api/v1/campaigns/actions/review/done", json={"member_no": no, "ref": ref}, headers=h
    )
    assert r.status_code == 200, r.text
    return r.json()


def _coupons(database):
    with database.unit_of_work() as s:
        return s.execute(
            select(Coupon.member_id, Coupon.reason, Coupon.issue_key).order_by(Coupon.id)
        ).all()


def test_each_reward_gives_a_coupon_once(client, shop, make_member, database):
    put_template(client, shop, "THANKS", {**THRESHOLD, "per_member_limit": 5})
    r = client.post("/api/v1/campaigns/actions/", json={**ACTION, "coupon": "THANKS"}, headers=shop)
    assert r.status_code == 201 and r.json()["coupon"] == "THANKS"
    no = make_member()
    first = _done(client, shop, no, "r1")
    assert first["points"] == 10 and first["coupon"] and first["coupon_refused"] is None
    replay = _done(client, shop, no, "r1")
    assert replay["replayed"] is True and replay["coupon"] == first["coupon"]
    second = _done(client, shop, no, "r2")
    assert second["coupon"] not in (None, first["coupon"])
    coupons = _coupons(database)
    assert [(reason, key.split(":")[0], key.split(":")[-1]) for _, reason, key in coupons] == [
        ("action", "action", "r1"),
        ("action", "action", "r2"),
    ]
    wallet = client.get(f"/api/v1/members/{no}/coupons", headers=shop).json()
    assert sorted(c["code"] for c in wallet) == sorted([first["coupon"], second["coupon"]])
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_a_refused_coupon_leaves_the_points(client, shop, make_member, database):
    put_template(client, shop, "ONCE", THRESHOLD)  # one per member
    client.post("/api/v1/campaigns/actions/", json={**ACTION, "coupon": "ONCE"}, headers=shop)
    no = make_member()
    assert _done(client, shop, no, "r1")["coupon"]
    second = _done(client, shop, no, "r2")
    assert second["points"] == 10 and second["coupon"] is None
    assert second["coupon_refused"] == "over_member_limit"
    balance = client.get(f"/api/v1/members/{no}/points", headers=shop).json()
    assert balance["available"] == 20
    assert len(_coupons(database)) == 1


def test_an_unknown_template_is_refused_and_nothing_written(client, shop, database):
    r = client.post("/api/v1/campaigns/actions/", json={**ACTION, "coupon": "NOPE"}, headers=shop)
    assert r.status_code == 404 and r.json()["error"]["code"] == "coupon_template_not_found"
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(CampaignAction)) == 0


def test_the_console_form_sets_the_coupon(client, auth_headers, database, operator):  # noqa: F811
    put_template(client, auth_headers("operator"), "THANKS", {**THRESHOLD, "name": "感谢券"})
    page = client.get("/console/campaign-actions")
    assert '<option value="THANKS">感谢券</option>' in page.text
    form = {
        "code": "share",
        "kind": "share",
        "name": "Share",
        "points": "5",
        "daily_cap": "1",
        "total_cap": "",
        "campaign": "",
        "coupon": "THANKS",
        "csrf_token": operator,
    }
    missing = client.post("/console/campaign-actions", data={**form, "coupon": "NOPE"})
    assert missing.status_code == 404
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(CampaignAction)) == 0
    saved = client.post("/console/campaign-actions", data=form, follow_redirects=False)
    assert saved.status_code == 303
    with database.unit_of_work() as s:
        assert s.scalar(select(CampaignAction.coupon_template)) == "THANKS"
    assert "THANKS" in client.get("/console/campaign-actions").text


def test_check_reports_an_action_coupon_without_its_reward(client, shop, make_member, database):
    put_template(client, shop, "THANKS", THRESHOLD)
    client.post("/api/v1/campaigns/actions/", json={**ACTION, "coupon": "THANKS"}, headers=shop)
    no = make_member()
    _done(client, shop, no, "r1")
    with database.unit_of_work() as s:
        assert run_all(s) == []
        s.execute(update(Coupon).values(issue_key="action:1:never"))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("given for an action it was not rewarded" in v for v in found), found
