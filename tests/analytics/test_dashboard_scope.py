"""The dashboard by store, region and channel, compared with earlier periods, and a clerk held
to their own store by the service (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from patron.analytics import domain
from patron.analytics import scope as scoping
from patron.analytics import service as analytics
from patron.analytics.domain import Ratio
from patron.auth import service as auth_service
from patron.auth.principal import Principal
from patron.errors import Invalid
from tests.factories import order_body
from tests.web.test_pages import PASSWORD, _csrf

SH = ZoneInfo("Asia/Shanghai")
FEB = date(2026, 2, 1)
MAR1 = date(2026, 3, 1)


def _order(client, shop, member_no, ext, day, earn=True, **over):
    body = order_body(member_no, ext=ext, ordered_at=f"{day}T09:00:00+08:00", **over)
    if not earn:
        body["earn"] = False
    r = client.post("/api/v1/orders", json=body, headers=shop)
    assert r.status_code == 201, r.text


@pytest.fixture
def stores(client, shop, make_member, auth_headers):
    """SH001 (East China) and BJ001 (North China); orders in both, online and a year ago."""
    r = client.put(
        "/api/v1/stores/BJ001",
        json={"code": "BJ001", "name": "北京店", "region": "North China"},
        headers=shop,
    )
    assert r.status_code in (200, 201), r.text
    a = make_member(channel="store", store_code="SH001")
    b = make_member(channel="store", store_code="BJ001")
    c = make_member(channel="web")
    _order(client, shop, a, "SH-1", "2026-02-10")
    _order(client, shop, a, "SH-2", "2026-02-20")
    _order(client, shop, b, "BJ-1", "2026-02-12", store_code="BJ001")
    _order(client, shop, c, "WEB-1", "2026-02-14", channel="online", store_code=None)
    # the previous period (3 to 31 January) and the same period last year
    _order(client, shop, a, "SH-0", "2026-01-20", earn=False)
    _order(client, shop, a, "SH-Y", "2025-02-15", earn=False)
    _order(client, shop, b, "BJ-Y", "2025-02-16", earn=False, store_code="BJ001")
    return {"a": a, "b": b, "c": c}


def _board(database, clock, scope=scoping.EVERYTHING, start=FEB, end=MAR1):
    with database.unit_of_work() as s:
        return analytics.dashboard(s, start=start, end=end, now=clock.now(), tz=SH, scope=scope)


def _scope(database, principal, **filters):
    with database.unit_of_work() as s:
        return scoping.resolve(s, principal, **filters)


def _make_staff(database, clock, role, store_code=None):
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    admin = Principal.system("tests")
    with database.unit_of_work() as s:
        user = auth_service.create_staff(
            s, admin, username=name, display_name=role, role=role, password=PASSWORD,
            now=clock.now(),
        )  # fmt: skip
        if store_code:
            auth_service.update_staff(
                s, admin, user.id, changes={"store_code": store_code}, now=clock.now()
            )
        principal = Principal(kind="staff", id=user.id, label=name, role=role)
    return name, principal


def test_filters_narrow_orders_members_and_points(database, clock, stores):
    admin = Principal.system("tests")
    everything = _board(database, clock)
    assert everything.sales.orders == 4
    sh = _board(database, clock, _scope(database, admin, store="SH001"))
    assert (sh.sales.orders, sh.sales.purchasing_members) == (2, 1)
    assert sh.sales.net_sales_fen == 2 * 21900
    assert sh.members.total == 1  # registered at SH001
    assert not sh.points.program_wide
    assert sh.points.issued > 0 and sh.points.liability_fen == 0
    north = _board(database, clock, _scope(database, admin, region="North China"))
    assert (north.sales.orders, north.members.total) == (1, 1)
    online = _board(database, clock, _scope(database, admin, channel="online"))
    assert (online.sales.orders, online.members.total) == (1, 1)  # registered on the web
    # A store outside the chosen region: nothing matches both.
    none = _board(database, clock, _scope(database, admin, store="SH001", region="North China"))
    assert none.sales.orders == 0
    # The trend of a filtered view adds up to its figures.
    assert sum(sh.trend.orders) == 2
    assert sum(sh.trend.points_issued) == sh.points.issued


def test_comparisons_with_previous_period_and_last_year(database, clock, stores):
    board = _board(database, clock)
    # 1 February to 1 March is 29 days: the previous period is 3 to 31 January.
    assert (board.previous.start, board.previous.end) == (date(2026, 1, 3), date(2026, 1, 31))
    assert (board.last_year.start, board.last_year.end) == (date(2025, 2, 1), date(2025, 3, 1))
    assert (board.current.orders, board.previous.orders, board.last_year.orders) == (4, 1, 2)
    assert board.current.net_sales_fen == board.sales.net_sales_fen
    assert board.current.new_members == board.members.new_in_range
    assert board.current.points_issued == board.points.issued
    # The comparison figures of another period equal that period's own dashboard.
    with database.unit_of_work() as s:
        again = analytics.period_figures(s, FEB, MAR1, tz=SH)
    assert again == board.current
    admin = Principal.system("tests")
    bj = _board(database, clock, _scope(database, admin, store="BJ001"))
    assert (bj.current.orders, bj.previous.orders, bj.last_year.orders) == (1, 0, 1)
    assert domain.change(bj.current.orders, bj.last_year.orders) == Ratio(0, 1)
    assert domain.change(4, 2) == Ratio(2, 2)
    assert domain.change(1, 0) is None


def test_a_clerk_sees_only_their_store_whatever_they_ask(database, clock, stores):
    _, clerk = _make_staff(database, clock, "clerk", "SH001")
    scope = _scope(database, clerk, store="BJ001", region="North China")
    assert scope.locked and scope.stores == ("SH001",) and scope.store == "SH001"
    assert _board(database, clock, scope).sales.orders == 2
    # A channel narrows a clerk's view; it never widens it.
    assert _scope(database, clerk, channel="online").stores == ("SH001",)
    _, unassigned = _make_staff(database, clock, "clerk")
    nothing = _scope(database, unassigned, store="SH001")
    assert nothing.locked and nothing.stores == ()
    board = _board(database, clock, nothing)
    assert (board.sales.orders, board.members.total, board.previous.orders) == (0, 0, 0)
    # Other roles choose freely; unknown choices are refused with a code.
    _, operator = _make_staff(database, clock, "operator", "SH001")
    assert _scope(database, operator, store="BJ001").stores == ("BJ001",)
    for filters, code in (
        ({"store": "XX999"}, "unknown_store"),
        ({"region": "Atlantis"}, "unknown_region"),
        ({"channel": "fax"}, "unknown_channel"),
    ):
        with pytest.raises(Invalid) as err:
            _scope(database, operator, **filters)
        assert err.value.code == code


def _client(app, username) -> TestClient:
    c = TestClient(app, headers={"Accept-Language": "en"})
    form = c.get("/console/login")
    r = c.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf_token": _csrf(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return c


def _cell(html: str, figure: str, col: str) -> str:
    import re

    row = re.search(rf'data-figure="{figure}">(.*?)</tr>', html, re.S)
    assert row, figure
    found = re.search(rf'data-col="{col}">([^<]*)<', row.group(1))
    assert found, (figure, col)
    return found.group(1).strip()


def test_dashboard_page_presets_filters_and_clerk_scope(app, database, clock, stores):
    admin_name, _ = _make_staff(database, clock, "admin")
    admin = _client(app, admin_name)
    page = admin.get("/console/", params={"from": "2026-02-01", "to": "2026-03-01"})
    assert page.status_code == 200
    assert _cell(page.text, "orders", "current") == "4"
    assert _cell(page.text, "orders", "previous") == "1"
    assert _cell(page.text, "orders", "vs_previous") == "+300.0%"
    assert _cell(page.text, "orders", "vs_last_year") == "+100.0%"
    assert _cell(page.text, "net_sales_fen", "current") == "¥876.00"
    north = admin.get("/console/", params={"from": "2026-02-01", "to": "2026-03-01",
                                           "region": "North China"})  # fmt: skip
    assert _cell(north.text, "orders", "current") == "1"
    for params, field in (({"store": "XX999"}, "store"), ({"channel": "fax"}, "channel")):
        bad = admin.get("/console/", params=params)
        assert bad.status_code == 422
        assert f'data-error-for="{field}"' in bad.text
        assert "dash-data" not in bad.text
    # Presets in the business timezone (the test clock is 1 March 2026).
    last_month = admin.get("/console/", params={"preset": "last_month"})
    assert 'value="2026-02-01"' in last_month.text and 'value="2026-02-28"' in last_month.text
    assert 'data-preset="last_month"' in last_month.text
    assert admin.get("/console/", params={"preset": "yesterday"}).text.count('"2026-02-28"') >= 2
    assert admin.get("/console/", params={"preset": "fortnight"}).status_code == 422

    clerk_name, _ = _make_staff(database, clock, "clerk", "SH001")
    clerk = _client(app, clerk_name)
    mine = clerk.get("/console/", params={"from": "2026-02-01", "to": "2026-03-01",
                                          "store": "BJ001"})  # fmt: skip
    assert mine.status_code == 200
    assert _cell(mine.text, "orders", "current") == "2"
    assert "You see the figures of your store, 上海店." in mine.text
    assert 'id="f-store"' not in mine.text
    # Its exports are held to the store too.
    figures = clerk.get(
        "/console/dashboard/export/figures",
        params={"from": "2026-02-01", "to": "2026-03-01", "store": "BJ001", "format": "csv"},
    )
    rows = list(csv.reader(io.StringIO(figures.text[1:])))
    assert rows[0][:3] == ["Figure", "This period", "Previous period"]
    orders = next(r for r in rows if r[0] == "Orders")
    assert orders[1] == "2"


def test_dashboard_tables_download_as_csv_and_excel(app, database, clock, stores):
    name, _ = _make_staff(database, clock, "admin")
    admin = _client(app, name)
    admin.headers["Accept-Language"] = "zh-CN"
    span = {"from": "2026-02-01", "to": "2026-03-01"}
    trend = admin.get("/console/dashboard/export/trend", params={**span, "format": "csv"})
    assert trend.status_code == 200
    assert (
        'filename="dashboard-trend-2026-02-01-2026-03-01.csv"'
        in (trend.headers["content-disposition"])
    )
    rows = list(csv.reader(io.StringIO(trend.text[1:])))
    assert len(rows) == 1 + 29
    assert sum(int(r[2]) for r in rows[1:]) == 4
    tiers = admin.get("/console/dashboard/export/tiers", params={**span, "format": "xlsx"})
    assert tiers.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = zipfile.ZipFile(io.BytesIO(tiers.content))
    text = "".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))
    assert "普通会员" in text or "Regular" in text
    assert admin.get("/console/dashboard/export/nothing").status_code == 404
    bad = admin.get("/console/dashboard/export/figures", params={"from": "2026-03-01",
                                                                 "to": "2026-02-01"})  # fmt: skip
    assert bad.status_code == 422


def test_an_admin_sets_a_clerks_store_on_the_staff_page(app, database, clock, stores):
    from sqlalchemy import select

    from patron.audit.models import AuditRecord
    from patron.auth.models import StaffUser

    admin_name, _ = _make_staff(database, clock, "admin")
    _, clerk = _make_staff(database, clock, "clerk")
    admin = _client(app, admin_name)
    page = admin.get("/console/admin/staff")
    assert f'id="store-{clerk.id}"' in page.text
    assert "A clerk sees figures and orders once a store is set." in page.text
    token = _csrf(page.text)
    url = f"/console/admin/staff/{clerk.id}/store"
    bad = admin.post(url, data={"store_code": "XX999", "csrf_token": token})
    assert bad.status_code == 422
    assert 'data-error-for="store">Choose a store from the list.<' in bad.text
    ok = admin.post(url, data={"store_code": "BJ001", "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303
    with database.unit_of_work() as s:
        assert s.get(StaffUser, clerk.id).store_code == "BJ001"
        record = s.scalars(
            select(AuditRecord)
            .where(AuditRecord.action == "staff.update", AuditRecord.entity_id == str(clerk.id))
            .order_by(AuditRecord.id.desc())
        ).first()
        assert record.before["store_code"] is None and record.after["store_code"] == "BJ001"
    assert _scope(database, clerk, store="SH001").stores == ("BJ001",)
