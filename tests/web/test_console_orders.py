"""The console's order list (SQLite and PostgreSQL): filters, sortable columns, downloads, and a
clerk who sees only their store's orders whatever the address asks for."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from tests.analytics.test_dashboard_scope import _client, _make_staff, stores  # noqa: F401


def _orders(html: str) -> list[str]:
    return re.findall(r'data-order="([^"]+)"', html)


def test_order_list_filters_and_sorts(app, database, clock, stores):  # noqa: F811
    name, _ = _make_staff(database, clock, "operator")
    c = _client(app, name)
    page = c.get("/console/orders")
    assert page.status_code == 200
    # newest first by default
    assert _orders(page.text) == ["SH-2", "WEB-1", "BJ-1", "SH-1", "SH-0", "BJ-Y", "SH-Y"]
    assert 'data-nav="orders"' in page.text
    assert _orders(c.get("/console/orders", params={"store": "BJ001"}).text) == ["BJ-1", "BJ-Y"]
    north = c.get("/console/orders", params={"region": "North China", "from": "2026-01-01"})
    assert _orders(north.text) == ["BJ-1"]
    assert _orders(c.get("/console/orders", params={"channel": "online"}).text) == ["WEB-1"]
    assert _orders(c.get("/console/orders", params={"q": stores["b"]}).text) == ["BJ-1", "BJ-Y"]
    assert _orders(c.get("/console/orders", params={"q": "SH-1"}).text) == ["SH-1"]
    # Sorting by a column: its header links to the other direction.
    oldest = c.get("/console/orders", params={"sort": "date", "dir": "asc"})
    assert _orders(oldest.text)[0] == "SH-Y"
    assert 'aria-sort="ascending"' in oldest.text
    newest = c.get("/console/orders", params={"sort": "date"})
    assert re.search(r'href="/console/orders\?sort=date&amp;dir=asc" data-sort="date"', newest.text)
    for params, field in (
        ({"from": "yesterday"}, "from"),
        ({"store": "XX999"}, "store"),
        ({"status": "lost"}, "status"),
        ({"channel": "fax"}, "channel"),
    ):
        bad = c.get("/console/orders", params=params)
        assert bad.status_code == 422, params
        assert f'data-error-for="{field}"' in bad.text, params


def test_a_clerk_sees_only_their_stores_orders(app, database, clock, stores):  # noqa: F811
    name, _ = _make_staff(database, clock, "clerk", "SH001")
    c = _client(app, name)
    page = c.get("/console/orders", params={"store": "BJ001", "region": "North China"})
    assert page.status_code == 200
    assert _orders(page.text) == ["SH-2", "SH-1", "SH-0", "SH-Y"]
    assert "You see the orders of your store, 上海店." in page.text
    assert 'id="f-store"' not in page.text
    out = c.get("/console/orders/export", params={"store": "BJ001", "format": "csv"})
    rows = list(csv.reader(io.StringIO(out.text[1:])))
    assert rows[0][:4] == ["Order number", "Ordered", "Business day", "Member number"]
    assert [r[0] for r in rows[1:]] == ["SH-2", "SH-1", "SH-0", "SH-Y"]
    assert {r[4] for r in rows[1:]} == {"上海店"}
    nobody, _ = _make_staff(database, clock, "clerk")
    empty = _client(app, nobody).get("/console/orders")
    assert _orders(empty.text) == [] and 'data-scope="none"' in empty.text


def test_orders_download_as_csv_and_excel_in_the_viewers_language(
    app,
    database,
    clock,
    stores,  # noqa: F811
):
    name, _ = _make_staff(database, clock, "admin")
    c = _client(app, name)
    c.headers["Accept-Language"] = "zh-CN"
    out = c.get("/console/orders/export", params={"sort": "total", "dir": "asc", "format": "csv"})
    assert out.status_code == 200
    assert 'filename="orders.csv"' in out.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(out.text[1:])))
    assert rows[0][0] == "订单号"
    assert len(rows) == 1 + 7
    assert rows[1][7] == "219.0" and rows[1][6] == "已完成"
    x = c.get("/console/orders/export", params={"channel": "online", "format": "xlsx"})
    book = zipfile.ZipFile(io.BytesIO(x.content))
    text = "".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))
    assert "WEB-1" in text and "SH-1" not in text
    assert c.get("/console/orders/export", params={"from": "x"}).status_code == 422
    assert c.get("/console/orders/export", params={"store": "XX9"}).status_code == 422


def test_the_order_list_needs_orders_read(app, database, clock):
    from patron.auth import permissions as perm

    assert perm.ORDERS_READ in perm.ROLE_PERMISSIONS["clerk"]
    nobody = [r for r, p in perm.ROLE_PERMISSIONS.items() if perm.ORDERS_READ not in p]
    for role in nobody:
        name, _ = _make_staff(database, clock, role)
        assert _client(app, name).get("/console/orders").status_code == 403


def test_the_download_seeks_batch_by_batch_in_the_lists_order(
    app,
    database,
    clock,
    stores,  # noqa: F811
    monkeypatch,
):
    """Batches of two, every sortable column both ways (the online order has no store: it is
    last going up, first going down): the download lists what the page lists, in its order."""
    from patron.web.console import orders as orders_page

    monkeypatch.setattr(orders_page, "BATCH", 2)
    name, _ = _make_staff(database, clock, "admin")
    c = _client(app, name)
    for sort in ("date", "total", "paid", "points", "store"):
        for direction in ("asc", "desc"):
            params = {"sort": sort, "dir": direction}
            shown = _orders(c.get("/console/orders", params=params).text)
            out = c.get("/console/orders/export", params={**params, "format": "csv"})
            rows = list(csv.reader(io.StringIO(out.text[1:])))
            assert [r[0] for r in rows[1:]] == shown, params
            assert len(shown) == 7
    by_store = _orders(c.get("/console/orders", params={"sort": "store", "dir": "asc"}).text)
    assert by_store[-1] == "WEB-1"
