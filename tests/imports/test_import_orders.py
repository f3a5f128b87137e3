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
