"""The dashboard's key figures and points panel as a download (SQLite and PostgreSQL): the
page's figures for its range and filters, in the viewer's language, a clerk's held to their
store, programme-wide figures left out of a store's view as on the page."""

from __future__ import annotations

import csv
import io
import zipfile

from tests.analytics.test_dashboard_scope import _client, _make_staff, stores  # noqa: F401

SPAN = {"from": "2026-02-01", "to": "2026-03-01"}


def _rows(response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text[1:])))
    return {r[0]: r[1] for r in rows[1:]} | {"__header__": ",".join(rows[0])}


def test_key_figures_download_with_the_page_filters(app, database, clock, stores):  # noqa: F811
    name, _ = _make_staff(database, clock, "admin")
    admin = _client(app, name)
    page = admin.get("/console/", params=SPAN).text
    assert (
        'href="/console/dashboard/export/kpis?from=2026-02-01&amp;to=2026-03-01&amp;format=csv"'
        in page
    )
    everything = _rows(
        admin.get("/console/dashboard/export/kpis", params={**SPAN, "format": "csv"})
    )
    assert everything["__header__"] == "Figure,Value"
    assert everything["Number of orders"] == "4"
    assert everything["Net sales (¥)"] == "876.0"
    assert everything["Members in total"] == "3"
    assert "Points liability (¥)" in everything and "Outstanding now" in everything
    north = _rows(
        admin.get(
            "/console/dashboard/export/kpis",
            params={**SPAN, "region": "North China", "format": "csv"},
        )
    )
    assert north["Number of orders"] == "1"
    # a region's view has no programme-wide balances, as on the page
    assert "Points liability (¥)" not in north and "Outstanding now" not in north

    clerk_name, _ = _make_staff(database, clock, "clerk", "SH001")
    clerk = _client(app, clerk_name)
    clerk.headers["Accept-Language"] = "zh-CN"
    mine = _rows(
        clerk.get(
            "/console/dashboard/export/kpis",
            params={**SPAN, "store": "BJ001", "format": "csv"},  # asks for another store
        )
    )
    assert mine["__header__"] == "指标,数值"
    assert mine["订单数"] == "2"  # the clerk's own store, whatever the address asks
    x = clerk.get("/console/dashboard/export/kpis", params={**SPAN, "format": "xlsx"})
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = zipfile.ZipFile(io.BytesIO(x.content))
    text = "".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))
    assert "客单价（元）" in text
