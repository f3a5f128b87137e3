"""The dashboard service on a small known dataset (SQLite and PostgreSQL): members registered on
two days, orders through the API (one partly and one fully returned), points granted, spent and
expired, a tier override and a custom points value — every KPI checked exactly."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.analytics import service as analytics
from patron.analytics.domain import Ratio
from patron.auth.principal import Principal
from patron.ledger import flows
from patron.ledger import queries as ledger_queries
from patron.ledger import service as ledger
from patron.ledger.jobs import run_expire
from patron.ledger.models import PointsPosting
from patron.members.models import Member
from patron.orders import pricing
from patron.orders.service import PRICING_SECTION
from patron.program import service as program
from patron.tiers import service as tiers_service
from tests.conftest import START
from tests.factories import order_body

SH = ZoneInfo("Asia/Shanghai")
FEB = date(2026, 2, 1)
MAR1 = date(2026, 3, 1)


def _ids(database, *numbers):
    with database.unit_of_work() as s:
        rows = {row.member_no: row.id for row in s.execute(select(Member.member_no, Member.id))}
    return [rows[n] for n in numbers]


def _ctx(clock):
    return ledger.Ctx(Principal.system("tests"), clock.now(), SH)


def _board(database, clock, start=FEB, end=MAR1):
    with database.unit_of_work() as s:
        return analytics.dashboard(s, start=start, end=end, now=clock.now(), tz=SH)


def _order(client, shop, member_no, ext, day, **over):
    body = order_body(member_no, ext=ext, ordered_at=f"{day}T09:00:00+08:00", **over)
    r = client.post("/api/v1/orders", json=body, headers=shop)
    assert r.status_code == 201, r.text
    return r.json()


def _issued_by_hand(database, since, until):
    # The definition, one posting at a time: earnings and positive adjustments.
    with database.unit_of_work() as s:
        total = 0
        for p in s.scalars(select(PointsPosting)):
            if since <= p.created_at < until and (
                p.kind == "earn" or (p.kind == "adjust" and p.available_delta > 0)
            ):
                total += p.available_delta + p.pending_delta
        return total


def test_dashboard_kpis_on_a_known_dataset(
    client, shop, make_member, auth_headers, database, clock
):
    # D registers on 15 February, A, B and C on 1 March (the test clock's day).
    clock.set(datetime(2026, 2, 15, 10, tzinfo=SH))
    d = make_member()
    clock.set(START)
    auth_headers("admin", fresh=True)
    a, b, c = make_member(), make_member(), make_member()
    a_id, b_id, d_id = _ids(database, a, b, d)

    # Orders of 21,900 fen each; B returns one fresh item (1,000 fen), C returns everything.
    _order(client, shop, a, "A1", "2026-02-10")
    _order(client, shop, a, "A2", "2026-03-01")
    _order(client, shop, b, "B1", "2026-02-20")
    _order(client, shop, c, "C1", "2026-02-25")
    # before the range and the active window (and the backdating window: history earns nothing)
    _order(client, shop, d, "D0", "2025-11-15", earn=False)
    for ext, lines in (("B1", [{"line_no": 2, "quantity": 1}]), ("C1", None)):
        body = {
            "external_id": f"R-{ext}",
            "returned_at": "2026-03-01T11:00:00+08:00",
            "lines": lines or [{"line_no": 1, "quantity": 1}, {"line_no": 2, "quantity": 2}],
        }
        r = client.post(f"/api/v1/orders/pos/{ext}/returns", json=body, headers=shop)
        assert r.status_code == 201, r.text
    assert r.json()["refund_fen"] == 21900

    # B: 300 points earned long ago, due on 1 February 2026 (no write of B has expired them
    # yet); D: 5,000 granted and 1,200 spent now.
    clock.set(datetime(2025, 2, 1, 10, tzinfo=SH))
    with database.unit_of_work() as s:
        flows.earn(s, _ctx(clock), b_id, points=300, source_type="test", source_id="old")
    clock.set(START)
    with database.unit_of_work() as s:
        flows.earn(s, _ctx(clock), d_id, points=5000, source_type="test", source_id="grant")
    with database.unit_of_work() as s:
        flows.spend(s, _ctx(clock), d_id, points=1200, source_type="test", source_id="spend")

    board = _board(database, clock)
    m, sales = board.members, board.sales
    assert (m.total, m.new_day, m.new_week, m.new_month, m.new_in_range) == (4, 3, 3, 3, 4)
    # Active: a purchase kept (not fully returned) since 2 December: A and B.
    assert board.active_from == date(2025, 12, 2)
    assert (m.active, m.active_rate) == (2, Ratio(2, 4))
    # In range: A twice, B once (C's order was returned in full).
    assert sales.orders == 3
    assert sales.net_sales_fen == 21900 + 21900 + 20900
    assert (sales.purchasing_members, sales.repeat_members) == (2, 1)
    assert sales.repurchase_rate == Ratio(1, 2)
    assert sales.average_order_fen == 21567  # 64,700 / 3 rounded to the fen
    assert sales.frequency == Ratio(3, 2)

    # Points: the spend and nothing expired yet; the overdue 300 are no longer outstanding.
    start_utc = datetime(2026, 2, 1, tzinfo=SH)
    end_utc = datetime(2026, 3, 2, tzinfo=SH)
    p = board.points
    assert p.issued == _issued_by_hand(database, start_utc, end_utc)
    assert p.issued >= 5000 + 4 * 219  # the grant and the orders' base points at least
    assert (p.redeemed, p.expired) == (1200, 0)
    with database.unit_of_work() as s:
        held = [ledger_queries.balance(s, i, clock.now()) for i in _ids(database, a, b, c, d)]
    outstanding = sum(x.available + x.pending for x in held)
    assert p.outstanding == outstanding
    assert p.pending == sum(x.pending for x in held)
    assert p.liability_fen == outstanding  # 100 points = 100 fen by default

    # Trend: daily over the 29 days of the range.
    t = board.trend
    assert (t.granularity, len(t.labels), t.labels[0], t.labels[-1]) == (
        "day",
        29,
        "2026-02-01",
        "2026-03-01",
    )
    day = {label: i for i, label in enumerate(t.labels)}
    assert t.new_members[day["2026-02-15"]] == 1
    assert t.new_members[day["2026-03-01"]] == 3
    assert sum(t.new_members) == 4
    assert t.net_sales_fen[day["2026-02-10"]] == 21900
    assert t.net_sales_fen[day["2026-02-20"]] == 20900
    assert t.net_sales_fen[day["2026-02-25"]] == 0
    assert t.net_sales_fen[day["2026-03-01"]] == 21900
    assert sum(t.orders) == 3
    assert t.points_redeemed[day["2026-03-01"]] == 1200
    assert sum(t.points_issued) == p.issued

    # The expiry job runs: 300 points expire today; A becomes gold by hand; points are worth
    # half a fen each from now on.
    assert run_expire(database, clock.now()).points == 300
    with database.unit_of_work() as s:
        tiers_service.override(s, _ctx(clock), a_id, tier_code="gold", reason="tests", until=None)
        program.put_section(
            s,
            Principal.system("tests"),
            PRICING_SECTION,
            pricing.PricingSettings(points_per_unit=200, unit_fen=100),
            now=clock.now(),
        )
    board = _board(database, clock)
    assert board.points.expired == 300
    assert board.trend.points_expired[-1] == 300
    assert board.points.outstanding == outstanding
    assert board.points.liability_fen == outstanding // 2
    tiers = {row.code: row for row in board.tiers}
    assert [row.code for row in board.tiers] == ["regular", "silver", "gold", "diamond"]
    assert (tiers["regular"].members, tiers["gold"].members, tiers["silver"].members) == (3, 1, 0)
    assert tiers["gold"].member_share == Ratio(1, 4)
    assert tiers["gold"].net_sales_fen == 43800
    assert tiers["regular"].net_sales_fen == 20900
    assert tiers["gold"].sales_share == Ratio(43800, 64700)
    assert tiers["diamond"].sales_share == Ratio(0, 64700)

    # A one-day range at the start of March: A's second order only.
    board = _board(database, clock, MAR1, MAR1)
    assert (board.sales.orders, board.sales.net_sales_fen, board.members.new_in_range) == (
        1,
        21900,
        3,
    )
    assert board.sales.repurchase_rate == Ratio(0, 1)


def test_empty_program_has_zero_kpis_and_no_rates(database, clock):
    board = _board(database, clock, date(2024, 3, 2), MAR1)
    assert board.members.total == 0
    assert board.members.active_rate.value is None
    assert board.sales.average_order_fen == 0
    assert board.sales.repurchase_rate.value is None
    assert board.trend.granularity == "week"
    assert sum(board.trend.points_issued) == 0
    assert [row.members for row in board.tiers] == [0, 0, 0, 0]
