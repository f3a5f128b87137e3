"""Suppliers (R5): agreements with a validity, quotes per gift and the monthly comparison, a
preferred and a backup supplier; purchase requests go to the preferred supplier, to the
backup when the preferred agreement lapsed, and become stock receipts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from patron import checks
from patron.audit.models import AuditRecord
from patron.mall import domain
from patron.mall.models import PurchaseRequest, SupplierAgreement
from tests.mall.helpers import grant, setup_gift

API = "/api/v1/mall"


def _supplier(client, op, code: str, first: str | None, last: str | None) -> None:
    r = client.put(f"{API}/suppliers/{code}", json={"name": f"Supplier {code}"}, headers=op)
    assert r.status_code == 200, r.text
    if first:
        body = {"ref": f"{code}-1", "valid_from": first, "valid_to": last, "terms": "net 30"}
        r = client.post(f"{API}/suppliers/{code}/agreements", json=body, headers=op)
        assert r.status_code == 201, r.text


def _quote(client, op, code: str, fen: int, on: str, gift: str = "MUG") -> None:
    body = {"gift_code": gift, "unit_cost_fen": fen, "quoted_on": on}
    r = client.post(f"{API}/suppliers/{code}/quotes", json=body, headers=op)
    assert r.status_code == 201, r.text


def test_pick_supplier_rule():
    assert domain.pick_supplier(1, 2, {1, 2}) == (1, "preferred")
    assert domain.pick_supplier(1, 2, {2}) == (2, "backup")
    assert domain.pick_supplier(1, None, set()) == (None, None)
    assert domain.pick_supplier(1, 2, set()) == (None, None)
    assert domain.month_bounds("2024-02")[1].day == 29
    assert domain.month_bounds("2026-12")[1].isoformat() == "2026-12-31"


def test_comparison_and_requests_follow_the_preferred_then_the_backup(
    client, database, clock, api_key_headers, make_member
):
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage")
    setup_gift(client, op, "MUG", points=1, stock={"east": 10})
    _supplier(client, op, "ACME", "2026-01-01", "2026-03-01")  # lapses after today
    _supplier(client, op, "BETA", "2026-01-01", "2026-12-31")
    _supplier(client, op, "GAMMA", None, None)
    _quote(client, op, "ACME", 1200, "2026-03-01")
    _quote(client, op, "BETA", 1500, "2026-03-01")
    _quote(client, op, "ACME", 1100, "2026-02-10")  # last month: not in March's comparison
    march = {"month": "2026-03"}
    (mug,) = client.get(f"{API}/quotes/comparison", params=march, headers=op).json()["items"]
    assert not mug["complete"] and [q["supplier_code"] for q in mug["quotes"]] == ["ACME", "BETA"]
    _quote(client, op, "GAMMA", 1000, "2026-03-01")
    _quote(client, op, "BETA", 900, "2026-03-01")  # BETA's latest quote of the month counts
    r = client.put(
        f"{API}/gifts/MUG/suppliers", json={"preferred": "ACME", "backup": "BETA"}, headers=op
    )
    assert r.status_code == 200, r.text
    got = client.get(f"{API}/quotes/comparison", params={**march, "gift_code": "MUG"}, headers=op)
    (mug,) = got.json()["items"]
    assert mug["complete"]
    assert [(q["supplier_code"], q["unit_cost_fen"], q["role"]) for q in mug["quotes"]] == [
        ("BETA", 900, "backup"),
        ("GAMMA", 1000, None),
        ("ACME", 1200, "preferred"),
    ]
    assert [q["cheapest"] for q in mug["quotes"]] == [True, False, False]
    assert [q["agreement_in_force"] for q in mug["quotes"]] == [True, False, True]
    # redeeming every unit makes the gift short: the request goes to the preferred supplier
    no = make_member()
    grant(database, clock, no, 100)
    body = {"member_no": no, "gift_code": "MUG", "quantity": 10}
    assert client.post(f"{API}/redemptions", json=body, headers=op).status_code == 201
    [req] = client.post(f"{API}/purchase-requests", headers=op).json()["items"]
    assert (req["supplier_code"], req["unit_cost_fen"], req["quantity"]) == ("ACME", 1200, 4)
    done = client.post(f"{API}/purchase-requests/{req['id']}/receive", json={}, headers=op)
    assert done.status_code == 200 and done.json()["supplier_code"] == "ACME"
    [receipt] = client.get(
        f"{API}/stock/movements", params={"gift_code": "MUG", "limit": 1}, headers=op
    ).json()["items"]
    assert receipt["kind"] == "receipt" and receipt["on_hand_delta"] == 4
    assert "ACME" in receipt["reason"]
    # the next day ACME's agreement has lapsed: the next request goes to the backup
    clock.advance(timedelta(days=1))
    body["quantity"] = 4
    assert client.post(f"{API}/redemptions", json=body, headers=op).status_code == 201
    [req] = client.post(f"{API}/purchase-requests", headers=op).json()["items"]
    assert (req["supplier_code"], req["unit_cost_fen"]) == ("BETA", 900)
    listed = client.get(f"{API}/suppliers", headers=op).json()["items"]
    assert {s["code"]: s["in_force"] for s in listed} == {
        "ACME": False,
        "BETA": True,
        "GAMMA": False,
    }
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(PurchaseRequest)) == 2
        actions = set(s.scalars(select(AuditRecord.action)))
        assert {
            "mall.supplier_put",
            "mall.supplier_agreement",
            "mall.supplier_quote",
            "mall.gift_suppliers",
        } <= actions
        assert checks.run_all(s) == []


def test_bad_supplier_input_writes_nothing(client, database, clock, auth_headers):
    op = auth_headers("operator")
    setup_gift(client, op, "MUG")
    _supplier(client, op, "ACME", "2026-01-01", "2026-12-31")
    audits = _count(database, AuditRecord)
    bad = [
        (
            "post",
            f"{API}/suppliers/ACME/agreements",
            {"ref": "X", "valid_from": "2026-05-01", "valid_to": "2026-04-01"},
            422,
            "invalid_window",
        ),
        (
            "post",
            f"{API}/suppliers/ACME/agreements",
            {"ref": "ACME-1", "valid_from": "2026-05-01", "valid_to": "2026-06-01"},
            422,
            "agreement_exists",
        ),
        (
            "post",
            f"{API}/suppliers/NOPE/quotes",
            {"gift_code": "MUG", "unit_cost_fen": 5},
            404,
            "supplier_not_found",
        ),
        (
            "post",
            f"{API}/suppliers/ACME/quotes",
            {"gift_code": "NOPE", "unit_cost_fen": 5},
            404,
            "gift_not_found",
        ),
        (
            "post",
            f"{API}/suppliers/ACME/quotes",
            {"gift_code": "MUG", "unit_cost_fen": 0},
            422,
            "validation_error",
        ),
        (
            "put",
            f"{API}/gifts/MUG/suppliers",
            {"preferred": "ACME", "backup": "ACME"},
            422,
            "same_supplier",
        ),
        ("put", f"{API}/gifts/MUG/suppliers", {"preferred": "NOPE"}, 404, "supplier_not_found"),
    ]
    for verb, url, body, status, code in bad:
        r = getattr(client, verb)(url, json=body, headers=op)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (url, body)
    r = client.get(f"{API}/quotes/comparison", params={"month": "2026-13"}, headers=op)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_month"
    assert _count(database, AuditRecord) == audits
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(SupplierAgreement)) == 1


def _count(database, model) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)
