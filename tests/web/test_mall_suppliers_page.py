"""The console's suppliers page: an operator adds suppliers, agreements and quotes, chooses a
gift's preferred and backup supplier and reads the month's comparison; refusals in words."""

from __future__ import annotations

from sqlalchemy import func, select

from patron.mall.models import GiftSuppliers, Supplier, SupplierAgreement, SupplierQuote
from tests.mall.helpers import setup_gift
from tests.web.test_mall_pages import _operator

PAGE = "/console/mall/suppliers"


def _n(database, model) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_operator_manages_suppliers_and_compares_quotes(client, database, clock, auth_headers):
    setup_gift(client, auth_headers("operator"), "MUG")
    token = _operator(client, database, clock)
    assert "No suppliers yet." in client.get(PAGE).text
    for code in ("ACME", "BETA", "GAMMA"):
        r = client.post(
            PAGE,
            data={"csrf_token": token, "code": code, "name": f"{code} Ltd", "contact": "021-1"},
            follow_redirects=False,
        )
        assert r.status_code == 303
    agreement = {
        "csrf_token": token,
        "supplier": "ACME",
        "ref": "A-2026",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "terms": "Delivery to the east warehouse, net 30.",
    }
    r = client.post(PAGE + "/agreements", data=agreement, follow_redirects=False)
    assert r.status_code == 303
    for supplier, cost in (("ACME", "12.5"), ("BETA", "9.90"), ("GAMMA", "11")):
        r = client.post(
            PAGE + "/quotes",
            data={
                "csrf_token": token,
                "supplier": supplier,
                "gift_code": "MUG",
                "unit_cost": cost,
                "min_quantity": "10",
                "lead_days": "5",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    r = client.post(
        PAGE + "/gifts",
        data={"csrf_token": token, "gift_code": "MUG", "preferred": "ACME", "backup": "BETA"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(PAGE, params={"month": "2026-03"}).text
    assert 'data-supplier="ACME" data-in-force="yes"' in page
    assert 'data-supplier="BETA" data-in-force="no"' in page
    assert 'data-comparison="MUG" data-complete="yes"' in page
    assert 'data-quote="BETA" data-cost="990" data-cheapest' in page
    assert "¥12.50" in page and 'data-preferred="ACME" data-backup="BETA"' in page
    assert "No quotes in this month." in client.get(PAGE, params={"month": "2026-04"}).text
    counts = [_n(database, m) for m in (Supplier, SupplierAgreement, SupplierQuote, GiftSuppliers)]
    assert counts == [3, 1, 3, 1]
    for url, bad, words in (
        (PAGE + "/agreements", {**agreement, "ref": "A-2"}, None),
        (
            PAGE + "/agreements",
            {**agreement, "valid_to": "2025-12-31", "ref": "A-3"},
            "An agreement must end on or after the day it starts.",
        ),
        (PAGE + "/agreements", {**agreement}, "already has an agreement with that reference"),
        (
            PAGE + "/agreements",
            {**agreement, "valid_from": "soon", "ref": "A-4"},
            "first and last day",
        ),
        (
            PAGE + "/quotes",
            {"csrf_token": token, "supplier": "ACME", "gift_code": "MUG", "unit_cost": "12.345"},
            "unit cost in yuan",
        ),
        (
            PAGE + "/quotes",
            {"csrf_token": token, "supplier": "NOPE", "gift_code": "MUG", "unit_cost": "1"},
            "Choose one of the suppliers.",
        ),
        (
            PAGE + "/gifts",
            {"csrf_token": token, "gift_code": "MUG", "preferred": "ACME", "backup": "ACME"},
            "must differ from the preferred one",
        ),
        (PAGE, {"csrf_token": token, "code": "bad code", "name": "x"}, "letters and digits"),
    ):
        r = client.post(url, data=bad, follow_redirects=False)
        if words is None:
            assert r.status_code == 303  # a second agreement under its own reference
            continue
        assert r.status_code in (404, 422) and 'data-error-for="form"' in r.text, bad
        assert words in r.text, bad
    counts = [_n(database, m) for m in (Supplier, SupplierAgreement, SupplierQuote, GiftSuppliers)]
    assert counts == [3, 2, 3, 1]
