"""Catalogue API: stores, categories, products with member prices."""

from __future__ import annotations


def _setup(client, h):
    assert (
        client.put(
            "/api/v1/categories/beauty", json={"code": "beauty", "name": "Beauty"}, headers=h
        ).status_code
        == 200
    )


def test_store_upsert_and_list(client, auth_headers):
    h = auth_headers("operator")
    body = {"code": "SH001", "name": "上海店", "region": "East China", "city": "上海"}
    r = client.put("/api/v1/stores/SH001", json=body, headers=h)
    assert r.status_code == 200, r.text
    r = client.put("/api/v1/stores/SH001", json={**body, "name": "上海一店"}, headers=h)
    assert r.json()["name"] == "上海一店"
    stores = client.get("/api/v1/stores?region=East China", headers=auth_headers("analyst")).json()
    assert [s["code"] for s in stores] == ["SH001"]
    audit = client.get("/api/v1/audit?entity_type=store", headers=auth_headers("admin")).json()
    assert [a["action"] for a in audit["items"]] == ["store.update", "store.create"]


def test_product_with_member_prices(client, auth_headers):
    h = auth_headers("operator")
    _setup(client, h)
    body = {
        "sku": "BEA-1",
        "name": "Cream",
        "category_code": "beauty",
        "price_fen": 19900,
        "member_prices": {"gold": 17900},
    }
    r = client.put("/api/v1/products/BEA-1", json=body, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["member_prices"] == {"gold": 17900}
    body["member_prices"] = {"diamond": 16900}
    r = client.put("/api/v1/products/BEA-1", json=body, headers=h)
    assert r.json()["member_prices"] == {"diamond": 16900}
    got = client.get("/api/v1/products/BEA-1", headers=auth_headers("clerk")).json()
    assert got["price_fen"] == 19900


def test_product_bad_input_changes_nothing(client, auth_headers):
    h = auth_headers("operator")
    _setup(client, h)
    base = {"sku": "X-1", "name": "X", "category_code": "beauty", "price_fen": 1000}
    cases = [
        ({**base, "category_code": "nope"}, "category_not_found"),
        ({**base, "member_prices": {"gold": 2000}}, "member_price_above_price"),
        ({**base, "price_fen": -1}, "validation_error"),
        ({**base, "price_fen": 10**12}, "validation_error"),
        ({**base, "price_fen": 10.5}, "validation_error"),
        ({**base, "sku": "X-2"}, "sku_mismatch"),
    ]
    for body, code in cases:
        r = client.put("/api/v1/products/X-1", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"] == code
    assert client.get("/api/v1/products/X-1", headers=h).status_code == 404


def test_clerk_cannot_edit_catalogue(client, auth_headers):
    r = client.put(
        "/api/v1/categories/home",
        json={"code": "home", "name": "Home"},
        headers=auth_headers("clerk"),
    )
    assert r.status_code == 403
