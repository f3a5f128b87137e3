"""Statement budget of rewarding an action inside a campaign with a budget, through the API."""

from __future__ import annotations

from tests.statements import count_statements

# Authentication, idempotency, the member's ledger lock and settling, the action and its
# campaign (audience, schedule), counts, the budget row lock, the earning (posting, lot,
# account, its event and audit), the reward, the budget charge, participation and two events.
BUDGET = {"sqlite": 27, "postgresql": 26}


def test_rewarding_an_action_stays_within_its_statement_budget(client, shop, make_member, database):
    client.post(
        "/api/v1/campaigns",
        json={
            "code": "spring",
            "name": "Spring",
            "schedule": {"kind": "one_off", "start": "2026-03-01", "end": "2026-03-31"},
            "budget_points": 10_000,
        },
        headers=shop,
    )
    client.post("/api/v1/campaigns/spring/status", json={"status": "active"}, headers=shop)
    client.post(
        "/api/v1/campaigns/actions/",
        json={
            "code": "share",
            "kind": "share",
            "name": "Share",
            "points": 5,
            "daily_cap": 3,
            "campaign": "spring",
        },
        headers=shop,
    )
    warm = make_member()
    client.post(
        "/api/v1/campaigns/actions/share/done", json={"member_no": warm, "ref": "w"}, headers=shop
    )
    no = make_member()
    with count_statements(database.engine) as log:
        r = client.post(
            "/api/v1/campaigns/actions/share/done",
            json={"member_no": no, "ref": "s1"},
            headers=shop,
        )
    assert r.status_code == 200, r.text
    budget = BUDGET[database.dialect]
    assert log.count <= budget, f"{log.count} statements > {budget}\n{log.report()}"


# The same reward without a campaign, with a coupon: the template's lock, the member's
# eligibility, the quantity, the coupon with its history, event and audit record (7 of them).
COUPON_BUDGET = {"sqlite": 28, "postgresql": 27}


def test_an_action_with_a_coupon_stays_within_its_statement_budget(
    client, shop, make_member, database
):
    from tests.coupons.test_coupons_api import THRESHOLD, put_template

    put_template(client, shop, "THANKS", THRESHOLD)
    client.post(
        "/api/v1/campaigns/actions/",
        json={"code": "share", "kind": "share", "name": "Share", "points": 5, "coupon": "THANKS"},
        headers=shop,
    )
    warm = make_member()
    client.post(
        "/api/v1/campaigns/actions/share/done", json={"member_no": warm, "ref": "w"}, headers=shop
    )
    no = make_member()
    with count_statements(database.engine) as log:
        r = client.post(
            "/api/v1/campaigns/actions/share/done",
            json={"member_no": no, "ref": "s1"},
            headers=shop,
        )
    assert r.status_code == 200 and r.json()["coupon"], r.text
    budget = COUPON_BUDGET[database.dialect]
    assert log.count <= budget, f"{log.count} statements > {budget}\n{log.report()}"
