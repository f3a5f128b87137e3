"""`patron import` end to end: encodings, bad rows reported, good rows imported whole."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from patron.auth.principal import Principal
from patron.imports.importers import MemberImporter, ProductImporter, StoreImporter
from patron.imports.runner import RowProblem, run_import
from patron.kit.crypto import FieldCipher
from patron.members import service as members
from patron.members.models import Member, MemberConsent

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
HEADER = "phone,name,channel,store_code,birthday,registered_at,sms,email,member_type\n"


def _importer(app):
    return MemberImporter(
        app.state.cipher, Principal.system("test"), tz=ZoneInfo("Asia/Shanghai"), now=NOW
    )


def _errors(path):
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_members_import_gbk_with_bad_rows(app, database, tmp_path):
    rows = [
        "13800138000,张伟,store,SH001,1990-05-20,2024-01-02 10:00:00,是,zw@example.com,vip",
        "+86 138 0013 8000,重复,web,,,,,,",  # same person as row 1
        "12345,坏号码,web,,,,,,",  # invalid phone
        "13900139000,李娜,store,,,,,,",  # store channel without store
        "13700137000,王芳,web,,2099-01-01,,,,",  # birthday in the future
        "13600136000,赵敏,app,,1985/12/01,,否,,student",
        "13500135000,错日期,web,,,2024-02-30,,,",  # impossible date
        "13400134000,未知渠道,fax,,,,,,",  # unknown channel
    ]
    path = tmp_path / "members.csv"
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode("gbk"))
    report = run_import(
        database, _importer(app), path, report_path=tmp_path / "err.csv", batch_size=3
    )
    assert report.encoding == "gb18030"
    assert (report.rows, report.imported, report.rejected) == (8, 2, 6)
    errors = {int(e["row"]): e for e in _errors(tmp_path / "err.csv")}
    assert set(errors) == {2, 3, 4, 5, 7, 8}
    assert errors[2]["field"] == "phone" and "row 1" in errors[2]["reason"]
    assert errors[4]["field"] == "store_code"
    assert errors[5]["field"] == "birthday"
    assert errors[7]["field"] == "registered_at"
    assert errors[8]["field"] == "channel"
    cipher: FieldCipher = app.state.cipher
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == 2
        zw = members.find_by_phone(s, cipher, "13800138000")
        assert zw is not None and zw.name == "张伟" and zw.member_type == "vip"
        assert zw.created_at == datetime(2024, 1, 2, 2, 0, tzinfo=UTC)
        consents = s.scalars(select(MemberConsent).where(MemberConsent.member_id == zw.id)).all()
        assert [(c.channel, c.granted) for c in consents] == [("sms", True)]
        assert members.decrypt_email(zw, cipher) == "zw@example.com"


def test_members_import_utf8_bom_and_rerun_reports_existing(app, database, tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "13800138000,张伟,web,,,,,,\n").encode("utf-8"))
    first = run_import(database, _importer(app), path, report_path=tmp_path / "e1.csv")
    assert first.encoding == "utf-8-sig" and first.imported == 1
    second = run_import(database, _importer(app), path, report_path=tmp_path / "e2.csv")
    assert (second.imported, second.rejected) == (0, 1)
    assert "already a member" in _errors(tmp_path / "e2.csv")[0]["reason"]


def test_undecodable_row_is_reported_not_garbled(app, database, tmp_path):
    path = tmp_path / "m.csv"
    good = "13800138000,张伟,web,,,,,,\n".encode()
    bad = b"13900139000,\xff\xfe\xfa,web,,,,,,\n"
    path.write_bytes(HEADER.encode() + good + bad)
    report = run_import(database, _importer(app), path, report_path=tmp_path / "e.csv")
    assert (report.imported, report.rejected) == (1, 1)


def test_stores_and_products_import(app, database, tmp_path):
    stores = tmp_path / "stores.csv"
    stores.write_text("code,name,region,city\nSH001,上海店,East China,上海\nbad code,x,y,z\n")
    r = run_import(
        database,
        StoreImporter(Principal.system("t"), now=NOW),
        stores,
        report_path=tmp_path / "se.csv",
    )
    assert (r.imported, r.rejected) == (1, 1)
    with database.unit_of_work() as s:
        from patron.catalog.service import ensure_default_categories

        ensure_default_categories(s, Principal.system("t"), now=NOW)
    products = tmp_path / "products.csv"
    products.write_text(
        "sku,name,category_code,price,member_price_gold\n"
        "BEA-1,面霜,beauty,199.00,179.00\n"
        "BEA-2,贵,beauty,10.00,12.00\n"
        "BEA-3,无类,nothing,10.00,\n"
        "BEA-4,小数,beauty,10.001,\n"
    )
    r = run_import(
        database,
        ProductImporter(Principal.system("t"), now=NOW),
        products,
        report_path=tmp_path / "pe.csv",
    )
    assert (r.imported, r.rejected) == (1, 3)
    fields = {int(e["row"]): e["field"] for e in _errors(tmp_path / "pe.csv")}
    assert fields == {2: "member_prices", 3: "category_code", 4: "price"}


class _EchoingImporter:
    """Refuses every row, quoting the row's own cells (as reasons may, e.g. a parse error)."""

    kind = "echo"

    def parse(self, row):
        raise RowProblem(row.values["field"], row.values["reason"])

    def write_batch(self, session, batch):  # pragma: no cover - parse refuses every row
        return []


def test_error_report_neutralises_formula_cells(database, tmp_path):
    """Whatever a reason quotes from the file, the report never opens as a formula."""
    path = tmp_path / "echo.csv"
    path.write_text(
        "field,reason\n=cmd|' /C calc'!A0,+1+1\n@SUM(A1),-2+3\nphone,\tplain\n",
        encoding="utf-8",
    )
    report = run_import(database, _EchoingImporter(), path, report_path=tmp_path / "err.csv")
    assert report.rejected == 3
    with (tmp_path / "err.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["row", "field", "reason"],
        ["1", "'=cmd|' /C calc'!A0", "'+1+1"],
        ["2", "'@SUM(A1)", "'-2+3"],
        ["3", "phone", "plain"],  # the reader trims cells
    ]


def test_out_of_range_registration_is_a_row_error_not_a_crash(app, database, tmp_path):
    rows = [
        "13800138000,张伟,web,,,0001-01-01 00:00:00,,,",  # overflowed converting to UTC
        "13900139000,李娜,web,,,1900-01-01,,,",
        "13600136000,赵敏,web,,,2025-06-01 09:00:00,,,",
    ]
    path = tmp_path / "members.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    report = run_import(database, _importer(app), path, report_path=tmp_path / "err.csv")
    assert (report.rows, report.imported, report.rejected) == (3, 1, 2)
    errors = {int(e["row"]): e for e in _errors(tmp_path / "err.csv")}
    assert {r: e["field"] for r, e in errors.items()} == {1: "registered_at", 2: "registered_at"}
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == 1
