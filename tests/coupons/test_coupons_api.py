"""Coupons through the API: templates, issues (idempotent, limited), the wallet, exchange for
points, checkout with coupons (quote explains, commit redeems, bad input writes nothing),
returns giving coupons back, voids, expiry, and `patron check`."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from patron.auth.principal import Principal
from patron.checks import run_all
from patron.coupons import redemption
from patron.coupons.models import Coupon, CouponHistory
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.members.models import Member
from patron.orders.models import Order
from patron.webhooks.models import WebhookEvent

SH = ZoneInfo("Asia/Shanghai")

THRESHOLD = {
    "name": "满 200 减 30",
    "rules": {
        "kind": "threshold",
        "amount_fen": 3000,
        "min_spend_fen": 20000,
        "valid_days": 30,
        "categories": ["beauty"],
    },
    "total_quantity": 100,
}


def put_template(client, h, code, body):
    r = client.put(f"/api/v1/coupon-templates/{code}", json=body, headers=h)
    assert r.status_code in (200, 201), r.text
    return r.json()


def issue(client, h, code, *nos, ref="B1"):
    r = client.post(
        f"/api/v1/coupon-templates/{code}/issues",
        json={"member_nos": list(nos), "reason": "manual", "ref": ref},
        headers=h,
    )
    assert r.status_code == 200, r.text
    return r.json()


def basket(no, *lines, **extra):
    return {
        "member_no": no,
        "store_code": "SH001",
        "channel": "store",
        "lines": [{"sku": s, "quantity": q} for s, q in lines],
        **extra,
    }


def quote(client, h, body):
    return client.post("/api/v1/checkout/quote", json=body, headers=h)


def commit(client, h, body, ext="C-1"):
    q = quote(client, h, body)
    assert q.status_code == 200, q.text
    r = client.post(
        "/api/v1/checkout/commit",
        json={
            **body,
            "external_id": ext,
            "expected_total_fen": q.json()["total_fen"],
            "expected_points_earned": q.json()["points_earned"],
        },
        headers=h,
    )
    return q.json(), r


def _count(database, model, *where):
    with database.unit_of_work() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_templates_are_created_changed_and_validated(client, shop):
    r = client.put("/api/v1/coupon-templates/T200", json=THRESHOLD, headers=shop)
    assert r.status_code == 201, r.text
    assert r.json()["rules"]["min_spend_fen"] == 20000
    r = client.put("/api/v1/coupon-templates/T200", json={**THRESHOLD, "name": "new"}, headers=shop)
    assert r.status_code == 200 and r.json()["name"] == "new"
    bad = {**THRESHOLD, "rules": {**THRESHOLD["rules"], "min_spend_fen": 1000}}
    r = client.put("/api/v1/coupon-templates/T201", json=bad, headers=shop)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_coupon_template"
    assert client.get("/api/v1/coupon-templates/T201", headers=shop).status_code == 404
    assert [t["code"] for t in client.get("/api/v1/coupon-templates", headers=shop).json()] == [
        "T200"
    ]


def test_issues_are_idempotent_and_held_to_their_quantities(client, shop, make_member, database):
    put_template(client, shop, "T2", {**THRESHOLD, "total_quantity": 2, "per_member_limit": 1})
    a, b, c = make_member(), make_member(), make_member()
    first = issue(client, shop, "T2", a)
    assert first["issued"] == 1 and set(first["codes"]) == {a}
    again = issue(client, shop, "T2", a)
    assert again == {"issued": 0, "already_held": 1, "refused": {}, "codes": {}}
    assert issue(client, shop, "T2", a, ref="B2")["refused"] == {a: "over_member_limit"}
    both = issue(client, shop, "T2", b, c, ref="B3")
    assert both["issued"] == 1 and both["refused"] == {c: "sold_out"}
    r = client.post(
        "/api/v1/coupon-templates/T2/issues",
        json={"member_nos": ["1234567897"], "reason": "manual", "ref": "x"},
        headers=shop,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_member"
    assert _count(database, Coupon) == 2
    assert _count(database, WebhookEvent, WebhookEvent.event_type == "coupon.issued") == 2
    wallet = client.get(f"/api/v1/members/{a}/coupons", headers=shop).json()
    assert [w["code"] for w in wallet] == [first["codes"][a]]
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_checkout_applies_the_best_coupon_and_commit_redeems_it(
    client, shop, make_member, database
):
    put_template(client, shop, "T200", THRESHOLD)
    put_template(
        client,
        shop,
        "P10",
        {
            "name": "9 折",
            "rules": {
                "kind": "percent_off",
                "percent_off_bp": 1000,
                "cap_fen": 2000,
                "valid_days": 7,
            },
        },
    )
    no = make_member()
    t200 = issue(client, shop, "T200", no)["codes"][no]
    p10 = issue(client, shop, "P10", no)["codes"][no]
    # below the threshold: only ¥199 of beauty
    r = quote(client, shop, basket(no, ("BEA-1", 1), ("FRE-1", 2), coupon_codes=[t200]))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "coupon_below_threshold"
    assert r.json()["error"]["details"]["field"] == "coupon_codes.0"
    body = basket(no, ("BEA-1", 2), ("FRE-1", 2), coupon_codes=[t200, p10])
    q, r = commit(client, shop, body)
    assert r.status_code == 201, r.text
    # 10 % of 42300 = 4230 → capped 2000, then 3000 on the beauty line
    assert q["coupon_discount_fen"] == 5000
    assert [c["code"] for c in q["coupons"]] == [p10, t200]
    assert q["total_fen"] == 39800 + 2500 - 5000
    assert q["lines"][1]["coupon_discount_fen"] > 0  # the percent coupon spreads to fresh
    order = r.json()
    assert order["total_fen"] == q["total_fen"]
    with database.unit_of_work() as s:
        rows = s.execute(
            select(Coupon.code, Coupon.status, Coupon.order_id, Coupon.discount_fen)
        ).all()
        oid = s.scalar(select(Order.id).where(Order.external_id == "C-1"))
        assert sorted(rows) == sorted([(p10, "redeemed", oid, 2000), (t200, "redeemed", oid, 3000)])
        assert run_all(s) == []
    assert client.get(f"/api/v1/members/{no}/coupons", headers=shop).json() == []
    detail = client.get(f"/api/v1/coupons/{t200}", headers=shop).json()
    assert [h["status"] for h in detail["history"]] == ["issued", "redeemed"]
    # the same coupon on another order: 409 at the quote, nothing written at the commit
    orders = _count(database, Order)
    r = quote(client, shop, basket(no, ("BEA-1", 2), coupon_codes=[t200]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "coupon_used"
    r = client.post(
        "/api/v1/checkout/commit",
        json={
            **basket(no, ("BEA-1", 2), coupon_codes=[t200]),
            "external_id": "C-2",
            "expected_total_fen": 1,
            "expected_points_earned": 0,
        },
        headers=shop,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "coupon_used"
    assert _count(database, Order) == orders


def test_bad_coupons_are_refused_with_their_reason(client, shop, make_member, clock, auth_headers):
    put_template(client, shop, "T200", THRESHOLD)
    put_template(
        client,
        shop,
        "BJ",
        {
            "name": "BJ",
            "rules": {
                "kind": "amount_off",
                "amount_fen": 500,
                "valid_days": 3,
                "stores": ["BJ001"],
            },
        },
    )
    put_template(
        client,
        shop,
        "FR",
        {
            "name": "fresh",
            "rules": {
                "kind": "amount_off",
                "amount_fen": 500,
                "valid_days": 3,
                "categories": ["fresh"],
            },
        },
    )
    no, other = make_member(), make_member()
    mine = issue(client, shop, "T200", no)["codes"][no]
    theirs = issue(client, shop, "T200", other)["codes"][other]
    bj = issue(client, shop, "BJ", no)["codes"][no]
    fr = issue(client, shop, "FR", no)["codes"][no]

    def code_of(codes):
        r = quote(client, shop, basket(no, ("BEA-1", 2), coupon_codes=codes))
        assert 400 <= r.status_code < 500, r.text
        return r.json()["error"]["code"]

    assert code_of([theirs]) == "coupon_not_member"
    assert code_of([bj]) == "coupon_wrong_store"
    assert code_of([fr]) == "coupon_not_applicable"
    assert code_of(["NOSUCHCODE"]) == "unknown_coupon"
    clock.advance(timedelta(days=31))
    shop.update(auth_headers("operator", fresh=True))
    assert code_of([mine]) == "coupon_expired"


def test_wallet_mode_picks_without_codes_and_explains(client, shop, make_member):
    put_template(client, shop, "T200", THRESHOLD)
    put_template(
        client,
        shop,
        "A5",
        {
            "name": "5",
            "rules": {
                "kind": "amount_off",
                "amount_fen": 500,
                "valid_days": 3,
                "stacking": {"exclusive": True},
            },
        },
    )
    no = make_member()
    t200 = issue(client, shop, "T200", no)["codes"][no]
    a5 = issue(client, shop, "A5", no)["codes"][no]
    r = quote(client, shop, basket(no, ("BEA-1", 2), best_coupons=True))
    assert r.status_code == 200, r.text
    q = r.json()
    assert [c["code"] for c in q["coupons"]] == [t200]
    assert [(c["code"], c["reason"]) for c in q["coupons_left_out"]] == [(a5, "coupon_not_chosen")]


def test_a_full_return_gives_the_coupon_back_a_partial_one_does_not(
    client, shop, make_member, database
):
    put_template(client, shop, "T200", THRESHOLD)
    no = make_member()
    code = issue(client, shop, "T200", no)["codes"][no]
    _, r = commit(client, shop, basket(no, ("BEA-1", 2), ("FRE-1", 1), coupon_codes=[code]))
    assert r.status_code == 201, r.text
    beauty = r.json()["lines"][0]
    # the coupon sits on the beauty line only: the refund of one unit is net of its share
    ret = {
        "external_id": "R-1",
        "returned_at": "2026-03-01T12:00:00+08:00",
        "lines": [{"line_no": 1, "quantity": 1}],
    }
    r = client.post("/api/v1/orders/checkout/C-1/returns", json=ret, headers=shop)
    assert r.status_code == 201, r.text
    assert r.json()["refund_fen"] == beauty["paid_fen"] // 2 == (39800 - 3000) // 2
    assert client.get(f"/api/v1/coupons/{code}", headers=shop).json()["status"] == "redeemed"
    ret = {**ret, "external_id": "R-2"}
    r = client.post("/api/v1/orders/checkout/C-1/returns", json=ret, headers=shop)
    assert r.status_code == 201, r.text
    detail = client.get(f"/api/v1/coupons/{code}", headers=shop).json()
    assert detail["status"] == "issued" and detail["order_id"] is None
    assert [h["event"] for h in detail["history"]] == ["issued", "redeemed", "restored"]
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_void_exchange_and_expiry(client, shop, make_member, database, clock, auth_headers):
    put_template(client, shop, "T200", {**THRESHOLD, "points_price": 800, "per_member_limit": 2})
    no = make_member()
    code = issue(client, shop, "T200", no)["codes"][no]
    r = client.post(f"/api/v1/coupons/{code}/void", json={"note": "wrong member"}, headers=shop)
    assert r.status_code == 200 and r.json()["status"] == "voided"
    r = client.post(f"/api/v1/coupons/{code}/void", json={"note": "again"}, headers=shop)
    assert r.status_code == 409 and r.json()["error"]["code"] == "coupon_not_voidable"
    ex = {"template": "T200", "ref": "MALL-1"}
    r = client.post(f"/api/v1/members/{no}/coupons/exchange", json=ex, headers=shop)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    with database.unit_of_work() as s:
        mid = s.scalar(select(Member.id).where(Member.member_no == no))
        ctx = ledger.Ctx(Principal.system("t"), clock.now(), SH)
        flows.earn(s, ctx, mid, points=1000, source_type="test", source_id="g")
    r = client.post(f"/api/v1/members/{no}/coupons/exchange", json=ex, headers=shop)
    assert r.status_code == 201, r.text
    again = client.post(f"/api/v1/members/{no}/coupons/exchange", json=ex, headers=shop)
    assert again.status_code == 200 and again.json()["code"] == r.json()["code"]
    assert client.get(f"/api/v1/members/{no}/points", headers=shop).json()["available"] == 200
    clock.advance(timedelta(days=40))
    with database.unit_of_work() as s:
        assert redemption.expire_due(s, clock.now()) == 1
        assert redemption.expire_due(s, clock.now()) == 0
    shop.update(auth_headers("operator", fresh=True))
    assert (
        client.get(f"/api/v1/coupons/{r.json()['code']}", headers=shop).json()["status"]
        == "expired"
    )
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_check_reports_coupons_corrupted_behind_the_service(client, shop, make_member, database):
    put_template(client, shop, "T200", {**THRESHOLD, "total_quantity": 1})
    no = make_member()
    issue(client, shop, "T200", no)
    with database.unit_of_work() as s:
        s.execute(update(Coupon).values(status="expired"))
        s.execute(update(CouponHistory).values(status="issued"))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("history ends with issued" in v for v in found), found


def test_the_general_path_redeems_coupons_too(client, shop, make_member, database, auth_headers):
    """With a return window every order takes the general path (ledger settled first)."""
    admin = auth_headers("admin")
    current = client.get("/api/v1/points/settings", headers=admin).json()
    r = client.put(
        "/api/v1/points/settings", json={**current, "default_pending_days": 7}, headers=admin
    )
    assert r.status_code == 200, r.text
    put_template(client, shop, "T200", THRESHOLD)
    no = make_member()
    code = issue(client, shop, "T200", no)["codes"][no]
    q, r = commit(client, shop, basket(no, ("BEA-1", 2), coupon_codes=[code]))
    assert r.status_code == 201, r.text
    assert q["coupon_discount_fen"] == 3000
    assert r.json()["total_fen"] == 39800 - 3000
    assert client.get(f"/api/v1/coupons/{code}", headers=shop).json()["status"] == "redeemed"
    with database.unit_of_work() as s:
        assert run_all(s) == []
