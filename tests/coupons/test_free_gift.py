"""A free-gift coupon hands its gift over as a zero-price line of the quote and the order."""

from __future__ import annotations

from sqlalchemy import select, update

from patron.checks import run_all
from patron.coupons.models import Coupon
from patron.orders.models import OrderLine
from tests.coupons.test_coupons_api import basket, commit, issue, put_template

GIFT = {
    "name": "满 100 送小样",
    "rules": {
        "kind": "free_gift",
        "gift_sku": "FRE-1",
        "value_fen": 1250,
        "min_spend_fen": 10000,
        "valid_days": 30,
    },
}


def test_the_gift_is_a_zero_price_line_of_the_quote_and_the_order(
    client, shop, make_member, database
):
    put_template(client, shop, "G1", GIFT)
    put_template(
        client,
        shop,
        "G2",
        {"name": "礼品", "rules": {**GIFT["rules"], "gift_sku": "NOT-IN-CATALOGUE"}},
    )
    no = make_member()
    g1 = issue(client, shop, "G1", no)["codes"][no]
    q, r = commit(client, shop, basket(no, ("BEA-1", 1), coupon_codes=[g1]))
    assert r.status_code == 201, r.text
    assert [c["gift_sku"] for c in q["coupons"]] == ["FRE-1"]
    assert q["total_fen"] == 19900 and q["coupon_discount_fen"] == 0
    gift = q["lines"][1]
    assert (gift["sku"], gift["category"], gift["quantity"], gift["gift_coupon"]) == (
        "FRE-1",
        "fresh",
        1,
        g1,
    )
    assert gift["unit_price_fen"] == gift["net_fen"] == gift["paid_fen"] == 0
    order = r.json()
    assert [(ln["line_no"], ln["sku"], ln["net_fen"]) for ln in order["lines"]] == [
        (1, "BEA-1", 19900),
        (2, "FRE-1", 0),
    ]
    assert order["total_fen"] == 19900
    with database.unit_of_work() as s:
        coupon = s.scalar(select(Coupon).where(Coupon.code == g1))
        assert coupon.status == "redeemed" and coupon.allocation == {"2": 0}
        assert s.scalar(select(OrderLine.unit_price_fen).where(OrderLine.sku == "FRE-1")) == 0
        assert run_all(s) == []
    # returning the paid line alone keeps the coupon used; returning the gift brings it back
    ret = {"returned_at": "2026-03-01T12:00:00+08:00"}
    r = client.post(
        "/api/v1/orders/checkout/C-1/returns",
        json={**ret, "external_id": "R-1", "lines": [{"line_no": 1, "quantity": 1}]},
        headers=shop,
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/api/v1/coupons/{g1}", headers=shop).json()["status"] == "redeemed"
    r = client.post(
        "/api/v1/orders/checkout/C-1/returns",
        json={**ret, "external_id": "R-2", "lines": [{"line_no": 2, "quantity": 1}]},
        headers=shop,
    )
    assert r.status_code == 201, r.text
    assert r.json()["refund_fen"] == 0
    assert client.get(f"/api/v1/coupons/{g1}", headers=shop).json()["status"] == "issued"
    # a gift whose SKU is not in the catalogue still goes out, under the category "gift"
    no2 = make_member()
    g2 = issue(client, shop, "G2", no2)["codes"][no2]
    q, r = commit(client, shop, basket(no2, ("BEA-1", 1), coupon_codes=[g2]), ext="C-2")
    assert r.status_code == 201, r.text
    assert (q["lines"][1]["sku"], q["lines"][1]["category"]) == ("NOT-IN-CATALOGUE", "gift")
    assert [ln["sku"] for ln in r.json()["lines"]] == ["BEA-1", "NOT-IN-CATALOGUE"]


def test_a_basket_below_the_gift_threshold_gets_no_gift(client, shop, make_member):
    put_template(client, shop, "G1", GIFT)
    no = make_member()
    issue(client, shop, "G1", no)
    r = client.post(
        "/api/v1/checkout/quote", json=basket(no, ("FRE-1", 1), best_coupons=True), headers=shop
    )
    assert r.status_code == 200, r.text
    assert [ln["sku"] for ln in r.json()["lines"]] == ["FRE-1"]
    assert r.json()["coupons"] == []


def test_check_reports_a_gift_line_changed_behind_the_service(client, shop, make_member, database):
    put_template(client, shop, "G1", GIFT)
    no = make_member()
    g1 = issue(client, shop, "G1", no)["codes"][no]
    _, r = commit(client, shop, basket(no, ("BEA-1", 1), coupon_codes=[g1]))
    assert r.status_code == 201, r.text
    with database.unit_of_work() as s:
        assert run_all(s) == []
        s.execute(update(OrderLine).where(OrderLine.line_no == 2).values(sku="BEA-1"))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any(f"coupon {g1} gave FRE-1" in v for v in found), found
