"""Points liability and breakage (SQLite and PostgreSQL): points earned, spent and expired over
a year through the ledger; totals, tiers, lot ages, breakage and the monthly report checked
exactly and against a row-by-row oracle."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from patron.analytics import finance
from patron.analytics.domain import Ratio
from patron.auth.principal import Principal
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.jobs import run_expire
from patron.ledger.models import PointsLot
from patron.members.models import Member
from patron.orders import pricing
from patron.orders.service import PRICING_SECTION
from patron.program import service as program
from patron.tiers import service as tiers_service
from tests.conftest import START

SH = ZoneInfo("Asia/Shanghai")


def _ctx(clock):
    return ledger.Ctx(Principal.system("tests"), clock.now(), SH)


def _report(database, clock):
    with database.unit_of_work() as s:
        return finance.liability(s, now=clock.now(), tz=SH)


def _earn(database, clock, member_id, points, key):
    with database.unit_of_work() as s:
        flows.earn(s, _ctx(clock), member_id, points=points, source_type="test", source_id=key)


def test_empty_database_says_what_is_missing(database, clock):
    lb = _report(database, clock)
    assert lb.missing == ["no_points", "no_matured"]
    assert (lb.outstanding, lb.liability_fen, lb.expected_breakage_fen) == (0, 0, 0)
    assert lb.breakage.value is None
    assert len(lb.months) == finance.REPORT_MONTHS
    assert lb.months[-1].month == "2026-03"
    assert lb.months[0].month == "2025-04"
    assert all(m.outstanding == 0 for m in lb.months)


def test_liability_breakage_and_monthly_report(make_member, database, clock):
    make_member(), make_member()
    with database.unit_of_work() as s:
        a, b = s.scalars(select(Member.id).order_by(Member.id)).all()

    # A: 1,000 earned in January 2025 (due 1 January 2026), 400 of them spent in June;
    # B: 300 earned in February 2025 (due 1 February 2026), never spent.
    clock.set(datetime(2025, 1, 10, 10, tzinfo=SH))
    _earn(database, clock, a, 1000, "a-old")
    clock.set(datetime(2025, 2, 10, 10, tzinfo=SH))
    _earn(database, clock, b, 300, "b-old")
    clock.set(datetime(2025, 6, 5, 10, tzinfo=SH))
    with database.unit_of_work() as s:
        flows.spend(s, _ctx(clock), a, points=400, source_type="test", source_id="a-spend")
    # Recent points: A 500 in December 2025, B 2,000 today.
    clock.set(datetime(2025, 12, 20, 10, tzinfo=SH))
    _earn(database, clock, a, 500, "a-new")
    clock.set(START)
    _earn(database, clock, b, 2000, "b-new")
    with database.unit_of_work() as s:
        due = {lot.amount: lot.expires_at for lot in s.scalars(select(PointsLot))}
    assert due[1000] <= clock.now() and due[300] <= clock.now()
    assert due[500] > clock.now() and due[2000] > clock.now()

    # Before the expiry job (B's own write today expired B's 300): A's overdue 600 already
    # count as broken, not outstanding.
    lb = _report(database, clock)
    assert lb.missing == []
    assert lb.outstanding == 2500
    assert lb.breakage == Ratio(600 + 300, 1300)
    assert run_expire(database, clock.now()).points == 600

    with database.unit_of_work() as s:
        tiers_service.override(s, _ctx(clock), b, tier_code="gold", reason="tests", until=None)
        program.put_section(
            s,
            Principal.system("tests"),
            PRICING_SECTION,
            pricing.PricingSettings(points_per_unit=200, unit_fen=100),
            now=clock.now(),
        )
    lb = _report(database, clock)
    assert (lb.points_per_unit, lb.unit_fen) == (200, 100)
    assert lb.breakage == Ratio(900, 1300)
    assert (lb.outstanding, lb.pending, lb.liability_fen) == (2500, 0, 1250)
    assert lb.expected_breakage_fen == 865  # 1,250 × 900 / 1,300 = 865.4
    assert lb.net_liability_fen == 1250 - 865
    tiers = {r.key: r for r in lb.by_tier}
    assert [r.key for r in lb.by_tier] == ["regular", "silver", "gold", "diamond"]
    assert (tiers["regular"].points, tiers["gold"].points) == (500, 2000)
    assert tiers["gold"].liability_fen == 1000
    ages = {r.key: r.points for r in lb.by_age}
    assert ages == {"0-90": 2500, "91-180": 0, "181-365": 0, "366+": 0, "pending": 0}

    months = {m.month: m for m in lb.months}
    assert "2025-01" not in months  # twelve months: April 2025 to March 2026
    assert months["2025-06"].redeemed == 400
    assert months["2025-06"].outstanding == 900
    assert months["2025-12"].earned == 500
    assert months["2025-12"].outstanding == 1400
    assert months["2026-03"].expired == 900
    assert (months["2026-03"].earned, months["2026-03"].outstanding) == (2000, 2500)
    assert months["2026-03"].liability_fen == 1250
    assert lb.months[-1].outstanding == lb.outstanding
