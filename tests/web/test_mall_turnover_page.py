"""The console's stock turnover: the monthly report from the movement ledger, its CSV and XLSX
downloads, each warehouse's alerts, the stock chart's data and a gift's price history."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import timedelta

from tests.mall.helpers import grant, setup_gift, store
from tests.web.test_mall_pages import _operator

API = "/api/v1/mall"


def test_turnover_report_exports_alerts_and_price_history(
    client, database, clock, auth_headers, api_key_headers, make_member
):
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage", "catalog:write")
    store(client, op)
    setup_gift(client, op, "MUG", points=10, stock={"east": 10, "north": 4})  # March 1st
    no = make_member()
    grant(database, clock, no, 1000)
    codes = []
    for _ in range(3):
        r = client.post(
            f"{API}/redemptions",
            json={"member_no": no, "gift_code": "MUG", "store_code": "SH001"},
            headers=op,
        )
        codes.append(r.json()["code"])
    for code in codes[:2]:
        r = client.post(
            f"{API}/verifications", json={"code": code, "store_code": "SH001"}, headers=op
        )
        assert r.status_code == 200
    body = {"gift_code": "MUG", "from_warehouse": "east", "to_warehouse": "north", "quantity": 2}
    assert client.post(f"{API}/stock/transfers", json=body, headers=op).status_code == 201
    adj = {"gift_code": "MUG", "warehouse": "north", "delta": -1, "reason": "count"}
    assert client.post(f"{API}/stock/adjustments", json=adj, headers=op).status_code == 201
    # April: a receipt; March's figures stay as they were
    clock.advance(timedelta(days=35))
    rec = {"gift_code": "MUG", "warehouse": "east", "quantity": 5}
    assert client.post(f"{API}/stock/receipts", json=rec, headers=op).status_code == 201
    body = {"code": "MUG", "name": "Gift MUG", "category": "home", "points": 12}
    assert client.put(f"{API}/gifts/MUG", json=body, headers=op).status_code == 200
    _operator(client, database, clock)
    page = client.get("/console/mall/turnover", params={"month": "2026-03"}).text
    # east: 10 in, 2 handed over, 2 moved out → 6 at the end; north: 4 + 2 − 1 = 5
    assert 'data-row="MUG:east" data-closing="6" data-issued="2"' in page
    assert 'data-row="MUG:north" data-closing="5" data-issued="0"' in page
    april = client.get("/console/mall/turnover", params={"month": "2026-04"}).text
    assert 'data-row="MUG:east" data-closing="11" data-issued="0"' in april
    chart = json.loads(re.search(r'id="stock-data">(.*?)</script>', page).group(1))
    # available now: east 11 − 1 reserved (the third code) = 10, north 5
    assert chart["gifts"] == ["MUG"]
    assert {s["name"]: s["data"] for s in chart["series"]} == {
        "North China": [5],
        "East China": [10],
        "South China": [0],
    }
    assert "/static/mall_stock.js" in page
    raw = client.get("/console/mall/turnover/export", params={"month": "2026-03"})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(raw.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Gift", "Name", "Warehouse"]
    east = next(r for r in rows if r[2] == "east")
    assert east[3:10] == ["0", "10", "-2", "0", "2", "6", "3"] and east[10] == "0.66"
    xlsx = client.get(
        "/console/mall/turnover/export", params={"month": "2026-03", "format": "xlsx"}
    )
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = zipfile.ZipFile(io.BytesIO(xlsx.content))
    text = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/"))
    assert "On hand at the end" in text and "north" in text
    assert client.get("/console/mall/turnover", params={"month": "2026-13"}).status_code == 422
    gift = client.get("/console/mall/gifts/MUG").text
    assert 'data-price-change="operator" data-new="12"' in gift and 'data-points="12"' in gift
    assert client.get("/console/mall/gifts/NOPE").status_code == 404


def test_a_gift_short_in_one_warehouse_is_flagged_there(
    client, database, clock, auth_headers, api_key_headers, make_member
):
    op = api_key_headers("mall:read", "mall:redeem", "mall:manage", "catalog:write")
    store(client, op)
    setup_gift(client, op, "MUG", points=1, stock={"east": 6, "north": 10})
    no = make_member()
    grant(database, clock, no, 100)
    body = {"member_no": no, "gift_code": "MUG", "store_code": "SH001", "quantity": 6}
    assert client.post(f"{API}/redemptions", json=body, headers=op).status_code == 201
    # all warehouses together are not short (10 available, 2 a month expected) …
    assert client.get(f"{API}/stock/alerts", headers=op).json()["items"] == []
    _operator(client, database, clock)
    page = client.get("/console/mall/turnover").text
    # … but East China, which served every redemption, is empty
    assert 'data-warehouse-alert="MUG:east"' in page
    assert 'data-warehouse-alert="MUG:north"' not in page
