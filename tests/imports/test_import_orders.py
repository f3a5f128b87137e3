"""Historical order import: lines grouped per order, earning by the rules or not at all."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from patron.auth.principal import Principal
from patron.imports.importers import OrderImporter
from patron.imports.runner import run_import
from patron.orders.models import Order

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
HEADER = "order_id,member_no,phone,store_code,ordered_at,sku,quantity,unit_price,discount\n"


def _importer(app, earn=True):
    return OrderImporter(
        app.state.cipher, Principal.system("t"), tz=ZoneInfo("Asia/Shanghai"), now=NOW, earn=earn
    )


def test_orders_import(app, database, client, shop, make_member, tmp_path):
    no = make_member("13800138000")
    rows = [
        f"A1,{no},,SH001,2026-02-01 10:00:00,BEA-1,1,199.00,",
        f"A1,{no},,SH001,2026-02-01 10:00:00,FRE-1,2,12.50,5",
        ",,13800138000,SH001,2026-02-02 11:00:00,BEA-1,1,199.00,",  # no order id
        "A3,,13800138000,SH001,2026-02-03 11:00:00,NOPE,1,1.00,",  # unknown SKU
        "A4,,13900000000,SH001,2026-02-03 11:00:00,BEA-1,1,1.00,",  # unknown phone
        "A5,,13800138000,SH001,2026-02-04 12:00:00,FRE-1,1,12.5x,",  # bad amount
        "A6,,13800138000,SH001,not a date,FRE-1,1,12.50,",  # bad date
        "A7,,13800138000,SH001,2026-02-05 12:00:00,FRE-1,3,12.50,",
    ]
    path = tmp_path / "orders.csv"
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode("gbk"))
    report = run_import(database, _importer(app), path, report_path=tmp_path / "e.csv")
    assert (report.rows, report.imported, report.rejected) == (8, 2, 5)
    with (tmp_path / "e.csv").open() as fh:
        fields = {int(r["row"]): r["field"] for r in csv.DictReader(fh)}
    assert fields == {3: "order_id", 4: "lines.0.sku", 5: "phone", 6: "unit_price", 7: "ordered_at"}
    orders = client.get(f"/api/v1/members/{no}/orders", headers=shop).json()
    assert orders["total"] == 2
    a1 = next(o for o in orders["items"] if o["external_id"] == "A1")
    assert a1["total_fen"] == 19900 + 2500 - 500
    assert a1["points_earned"] > 0
    # Running the same file again changes nothing.
    again = run_import(database, _importer(app), path, report_path=tmp_path / "e2.csv")
    assert again.imported == 2
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 2


def test_orders_import_without_points(app, database, client, shop, make_member, tmp_path):
    no = make_member()
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + f"B1,{no},,SH001,2025-12-01 10:00:00,BEA-1,1,199.00,\n")
    report = run_import(database, _importer(app, earn=False), path, report_path=tmp_path / "e.csv")
    assert report.imported == 1
    order = client.get("/api/v1/orders/import/B1", headers=shop).json()
    assert order["points_earned"] == 0
    assert order["growth_earned"] == 0


def _member_view(s, member_id):
    from patron.ledger import growth
    from patron.ledger.models import PointsAccount, PointsLot
    from patron.tiers.models import MemberTier

    acc = s.get(PointsAccount, member_id)
    tier = s.get(MemberTier, member_id)
    return {
        "orders": [
            (
                o.external_id,
                o.points_earned,
                o.growth_earned,
                o.welcome_bonus,
                o.first_purchase,
                o.total_fen,
                o.paid_fen,
                o.rules_trace,
                o.business_date,
            )
            for o in s.scalars(
                select(Order).where(Order.member_id == member_id).order_by(Order.external_id)
            )
        ],
        "account": acc
        and (acc.available, acc.pending, acc.debt, acc.lifetime_earned, acc.lifetime_redeemed),
        "lots": [
            (lot.amount, lot.remaining, lot.expires_at)
            for lot in s.scalars(
                select(PointsLot).where(PointsLot.member_id == member_id).order_by(PointsLot.id)
            )
        ],
        "growth": growth.balance(s, member_id),
        "tier": tier and tier.tier_code,
    }


def test_bulk_import_gives_the_same_ledger_as_order_by_order(
    app, database, client, shop, make_member, tmp_path
):
    """The batch planner and the per-order path (one writer, both dated at the order), on the
    same rows for twin members."""
    from patron.ledger import flows
    from patron.ledger.check import run_check
    from patron.ledger.service import Ctx
    from patron.members.models import Member
    from patron.program import service as program
    from patron.rules.definitions import EarningRules

    actor = Principal.system("t")
    with database.unit_of_work() as s:
        program.put_section(
            s,
            actor,
            "earning",
            EarningRules(daily_cap_points=3_000, category_coefficients={"beauty": 15_000}),
            now=NOW,
        )
    twins = {
        side: [make_member(f"13{'7' if side == 'a' else '6'}0000000{i}") for i in range(3)]
        for side in "ab"
    }
    # the third member of each side owes points: that member's orders take the per-order path
    with database.unit_of_work() as s:
        for side in "ab":
            mid = s.scalar(select(Member.id).where(Member.member_no == twins[side][2]))
            ctx = Ctx(actor, NOW, ZoneInfo("Asia/Shanghai"))
            flows.earn(s, ctx, mid, points=100, source_type="seed", source_id=f"{side}1")
            flows.spend(s, ctx, mid, points=100, source_type="seed", source_id=f"{side}2")
            flows.refund(
                s,
                ctx,
                mid,
                source_type="seed",
                source_id=f"{side}1",
                refund_id="r",
                order_total_fen=100,
                refund_amount_fen=100,
            )
    plan = [  # (order, member index, day, sku, quantity)
        ("H1", 0, "2026-02-01 10:00:00", "BEA-1", 1),
        ("H2", 0, "2026-02-01 18:00:00", "BEA-1", 12),  # daily cap; crosses silver
        ("H3", 1, "2026-02-02 09:00:00", "FRE-1", 3),
        ("H4", 0, "2026-02-03 10:00:00", "BEA-1", 20),  # silver multiplier; crosses gold
        ("H5", 0, "2026-02-04 10:00:00", "FRE-1", 1),  # gold multiplier
        ("H6", 2, "2026-02-04 11:00:00", "BEA-1", 2),  # member in debt
        ("H7", 1, "2026-02-05 11:00:00", "NOPE", 1),  # unknown SKU
        ("H3", 1, "2026-02-06 09:00:00", "FRE-1", 3),  # the same order id again, later
        ("H8", 1, "2026-02-07 09:00:00", "FRE-1", 4),
    ]
    reports = {}
    for side, bulk in (("a", False), ("b", True)):
        path = tmp_path / f"{side}.csv"
        price = {"BEA-1": "199.00", "FRE-1": "12.50", "NOPE": "1.00"}
        path.write_text(
            HEADER
            + "".join(
                f"{o},{twins[side][m]},,SH001,{at},{sku},{q},{price[sku]},\n"
                for o, m, at, sku, q in plan
            )
        )
        importer = OrderImporter(
            app.state.cipher,
            actor,
            tz=ZoneInfo("Asia/Shanghai"),
            now=NOW,
            source=f"hist-{side}",
            bulk=bulk,
        )
        r = run_import(database, importer, path, report_path=tmp_path / f"{side}.err")
        errors = (tmp_path / f"{side}.err").read_text().replace(f"hist-{side}", "hist")
        reports[side] = (r.rows, r.imported, r.rejected, errors)
    assert reports["a"] == reports["b"]
    assert reports["a"][:3] == (9, 7, 2)
    with database.unit_of_work() as s:
        for i in range(3):
            ids = {
                side: s.scalar(select(Member.id).where(Member.member_no == twins[side][i]))
                for side in "ab"
            }
            a, b = _member_view(s, ids["a"]), _member_view(s, ids["b"])
            assert a == b, i
        a0 = _member_view(s, s.scalar(select(Member.id).where(Member.member_no == twins["a"][0])))
        assert a0["tier"] == "gold"
        assert a0["orders"][1][1] < a0["orders"][2][1]  # the multiplier moved mid-file
        assert run_check(s, now=NOW) == []
        from patron.audit.models import AuditRecord

        batches = s.scalars(select(AuditRecord).where(AuditRecord.action == "orders.import_batch"))
        assert [e.after["orders"] for e in batches] == [6]  # H6 and the repeated H3: one by one
