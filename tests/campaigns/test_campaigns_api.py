"""Campaigns through the API: multipliers in the earning rules, audience, control group,
budget cap and alert, actions with caps, results, ``patron check``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from patron.campaigns import check, experiment
from patron.campaigns import service as campaigns
from patron.campaigns.models import CampaignActionGrant
from patron.checks import run_all
from patron.members.models import Member
from patron.orders.models import RuleBudgetUsage
from patron.webhooks.models import WebhookEvent
from tests.factories import order_body

WEEK = {"kind": "one_off", "start": "2026-03-01", "end": "2026-03-07"}
BASE_POINTS = 219  # order_body pays ¥219: 1 point per ¥1
BONUS = BASE_POINTS // 10 + 1_000  # a first purchase (+10 %) in the welcome months (1,000)


def _campaign(client, h, code="double", **over):
    body = {
        "code": code,
        "name": "Double points week",
        "schedule": WEEK,
        "multiplier_bp": 20_000,
        "budget_points": 10_000,
        **over,
    }
    r = client.post("/api/v1/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/campaigns/{code}/status", json={"status": "active"}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def _order(client, shop, no, ext="O-1"):
    r = client.post("/api/v1/orders", json=order_body(no, ext=ext), headers=shop)
    assert r.status_code == 201, r.text
    return r.json()["points_earned"]


def _member_id(database, no):
    with database.unit_of_work() as s:
        return s.scalar(select(Member.id).where(Member.member_no == no))


def _events(database, kind):
    with database.unit_of_work() as s:
        return s.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.event_type == kind)
        )


def test_a_double_points_week_doubles_orders_and_counts_its_budget(client, shop, make_member):
    no = make_member()
    _campaign(client, shop)
    # the first purchase bonus (+10 %) stays; the window doubles the base
    earned = _order(client, shop, no)
    assert earned == 2 * BASE_POINTS + BONUS
    got = client.get("/api/v1/campaigns/double", headers=shop).json()
    assert (got["points_used"], got["points_cap"]) == (BASE_POINTS, 9_500)
    # paused: the window is gone
    client.post("/api/v1/campaigns/double/status", json={"status": "paused"}, headers=shop)
    assert _order(client, shop, no, "O-2") == BASE_POINTS


def test_audience_by_tier_and_invalid_input(client, shop, make_member):
    no = make_member()
    _campaign(client, shop, audience={"tiers": ["gold"]})
    assert _order(client, shop, no) == BASE_POINTS + BONUS
    bad = client.post(
        "/api/v1/campaigns",
        json={"code": "x", "name": "x", "schedule": WEEK, "multiplier_bp": 20_000},
        headers=shop,
    )
    assert bad.status_code == 422  # a multiplier needs a budget
    again = client.post("/api/v1/campaigns/double/status", json={"status": "active"}, headers=shop)
    assert again.status_code == 409 and again.json()["error"]["code"] == "campaign_status_invalid"


def test_the_control_group_earns_without_the_multiplier(client, shop, make_member, database):
    _campaign(client, shop, control_bp=5_000)
    seen = set()
    for i in range(12):
        no = make_member()
        group = experiment.group_of("campaign:double", _member_id(database, no), 5_000)
        earned = _order(client, shop, no, f"O-{i}")
        expected = (2 if group == "treatment" else 1) * BASE_POINTS + BONUS
        assert earned == expected, group
        seen.add(group)
    assert seen == {"treatment", "control"}
    r = client.get("/api/v1/campaigns/double/results", headers=shop).json()
    assert r["treatment"]["members"] + r["control"]["members"] == 12
    assert r["treatment"]["orders"] == r["treatment"]["members"] == r["participants"]
    assert r["points"] == BASE_POINTS * r["treatment"]["members"]
    assert r["cost_fen"] == r["points"]  # 100 points = ¥1
    assert r["incremental_sales_fen"] == 0  # everyone bought the same basket


def test_the_budget_stops_at_its_cap_and_alerts_once(client, shop, make_member, database, clock):
    _campaign(client, shop, budget_points=300)  # cap: 285
    extra = [_order(client, shop, make_member(), f"O-{i}") - BASE_POINTS - BONUS for i in range(3)]
    assert extra == [219, 66, 0]
    assert _events(database, "campaign.budget_reached") == 0
    with database.unit_of_work() as s:
        assert campaigns.run_budget_alerts(s, campaigns_actor(), now=clock.now()) == 1
    with database.unit_of_work() as s:
        assert campaigns.run_budget_alerts(s, campaigns_actor(), now=clock.now()) == 0
    assert _events(database, "campaign.budget_reached") == 1
    with database.unit_of_work() as s:
        assert check.run_check(s) == []


def campaigns_actor():
    from patron.auth.principal import Principal

    return Principal.system("campaign-budgets")


def test_actions_earn_within_daily_and_total_caps(
    client, shop, make_member, clock, database, auth_headers
):
    no = make_member()
    r = client.post(
        "/api/v1/campaigns/actions/",
        json={
            "code": "review",
            "kind": "review",
            "name": "Review",
            "points": 10,
            "daily_cap": 1,
            "total_cap": 2,
        },
        headers=shop,
    )
    assert r.status_code == 201, r.text

    def done(ref):
        return client.post(
            "/api/v1/campaigns/actions/review/done",
            json={"member_no": no, "ref": ref},
            headers=auth_headers("operator", fresh=True),
        )

    first = done("r1")
    assert first.status_code == 200 and first.json()["points"] == 10
    replay = done("r1")
    assert replay.json()["replayed"] is True
    capped = done("r2")
    assert capped.status_code == 409 and capped.json()["error"]["code"] == "action_daily_cap"
    clock.advance(timedelta(days=1))
    assert done("r2").status_code == 200
    clock.advance(timedelta(days=1))
    over = done("r3")
    assert over.json()["error"]["code"] == "action_total_cap"
    balance = client.get(
        f"/api/v1/members/{no}/points", headers=auth_headers("operator", fresh=True)
    ).json()
    assert balance["available"] == 20
    assert _events(database, "campaign.action_rewarded") == 2
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_a_campaign_action_charges_the_budget_and_refuses_past_it(client, shop, make_member):
    _campaign(client, shop, multiplier_bp=None, budget_points=20)  # cap 19
    client.post(
        "/api/v1/campaigns/actions/",
        json={
            "code": "share",
            "kind": "share",
            "name": "Share",
            "points": 10,
            "campaign": "double",
        },
        headers=shop,
    )
    no = make_member()
    ok = client.post(
        "/api/v1/campaigns/actions/share/done", json={"member_no": no, "ref": "a"}, headers=shop
    )
    assert ok.status_code == 200, ok.text
    over = client.post(
        "/api/v1/campaigns/actions/share/done", json={"member_no": no, "ref": "b"}, headers=shop
    )
    assert over.json()["error"]["code"] == "campaign_budget_exhausted"
    got = client.get("/api/v1/campaigns/double", headers=shop).json()
    assert got["points_used"] == 10
    results = client.get("/api/v1/campaigns/double/results", headers=shop).json()
    assert results["participants"] == 1


def test_preview_reach_and_maximum_cost(client, shop, make_member):
    for _ in range(3):
        make_member()
    body = {
        "code": "p",
        "name": "p",
        "schedule": {"kind": "weekly", "weekdays": [4]},
        "multiplier_bp": 20_000,
        "budget_fen": 100_000,
        "control_bp": 1_000,
    }
    r = client.post("/api/v1/campaigns/preview", json=body, headers=shop)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["reach"] == 3 and p["points_cap"] == 95_000 and p["max_cost_fen"] == 95_000
    assert p["next_days"][0] == "2026-03-05"


def test_check_reports_corrupted_budgets_and_rewards(client, shop, make_member, database):
    _campaign(client, shop, multiplier_bp=None, budget_points=100)
    client.post(
        "/api/v1/campaigns/actions/",
        json={"code": "quiz", "kind": "quiz", "name": "Quiz", "points": 10, "campaign": "double"},
        headers=shop,
    )
    no = make_member()
    client.post(
        "/api/v1/campaigns/actions/quiz/done", json={"member_no": no, "ref": "q"}, headers=shop
    )
    with database.unit_of_work() as s:
        assert check.run_check(s) == []
        s.execute(update(RuleBudgetUsage).values(points_used=500))
        s.execute(update(CampaignActionGrant).values(posting_id=None))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("more than its cap of 95" in v for v in found), found
    assert any("has no matching posting" in v for v in found), found


def test_results_count_the_campaigns_redeemed_coupons_in_its_cost(client, shop, make_member):
    """Coupons the campaign gave and members redeemed cost their discount; a coupon of the
    same template given otherwise (a manual issue) is not the campaign's."""
    from tests.coupons.test_coupons_api import basket, commit, issue, put_template

    five = {
        "name": "¥5 off",
        "rules": {"kind": "amount_off", "amount_fen": 500, "valid_days": 30},
        "per_member_limit": 2,
    }
    put_template(client, shop, "FIVE", five)
    buyer, other, idle = make_member(), make_member(), make_member()
    _campaign(client, shop)
    r = client.post(
        "/api/v1/campaigns/double/coupon-issues", json={"template": "FIVE"}, headers=shop
    )
    assert r.status_code == 200 and r.json()["issued"] == 3, r.text
    wallet = client.get(f"/api/v1/members/{buyer}/coupons", headers=shop).json()
    q, c = commit(client, shop, basket(buyer, ("BEA-1", 1), coupon_codes=[wallet[0]["code"]]))
    assert c.status_code == 201 and q["coupon_discount_fen"] == 500, c.text
    manual = issue(client, shop, "FIVE", other, ref="apology")["codes"][other]
    q, c = commit(client, shop, basket(other, ("BEA-1", 1), coupon_codes=[manual]), ext="C-2")
    assert [x["code"] for x in q["coupons"]] == [manual]
    assert c.status_code == 201 and q["coupon_discount_fen"] == 500, c.text
    r = client.get("/api/v1/campaigns/double/results", headers=shop).json()
    assert (r["coupons_redeemed"], r["coupon_cost_fen"]) == (1, 500)
    assert r["points"] > 0 and r["cost_fen"] == r["points"] + 500  # 100 points = ¥1
    # a coupon given with the reward of one of the campaign's actions is the campaign's too
    action = {"code": "share", "kind": "share", "name": "Share", "points": 10}
    r = client.post(
        "/api/v1/campaigns/actions/",
        json={**action, "campaign": "double", "coupon": "FIVE"},
        headers=shop,
    )
    assert r.status_code == 201, r.text
    done = client.post(
        "/api/v1/campaigns/actions/share/done", json={"member_no": idle, "ref": "s1"}, headers=shop
    ).json()
    q, c = commit(client, shop, basket(idle, ("BEA-1", 1), coupon_codes=[done["coupon"]]), "C-3")
    assert c.status_code == 201 and q["coupon_discount_fen"] == 500, c.text
    r = client.get("/api/v1/campaigns/double/results", headers=shop).json()
    assert (r["coupons_redeemed"], r["coupon_cost_fen"]) == (2, 1_000)
    assert r["cost_fen"] == r["points"] + 1_000
