"""CSV and Excel downloads from the console (SQLite and PostgreSQL): the member list with its
filters, a member's points history and the filtered audit log — in the viewer's language,
formula-safe, masked like the page, numbers as numbers."""

from __future__ import annotations

import csv
import io
import zipfile

from tests.web.test_members_pages import PHONE, member, staff  # noqa: F401


def _csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_member_list_exports_with_its_filters(staff, member, make_member):  # noqa: F811
    make_member(phone="13900001111", name="=HYPERLINK(1)")  # a name typed to attack a spreadsheet
    clerk = staff("clerk")
    everyone = clerk.get("/console/members/export", params={"format": "csv"})
    assert everyone.status_code == 200
    assert everyone.headers["content-type"].startswith("text/csv")
    assert 'filename="members.csv"' in everyone.headers["content-disposition"]
    rows = _csv(everyone.text)
    assert rows[0][:3] == ["Member number", "Name", "Phone"]
    names = [r[1] for r in rows[1:]]
    assert "'=HYPERLINK(1)" in names and "王小丽" in names and "李雷" in names
    assert rows[1][1] == "'=HYPERLINK(1)"  # newest first, as the list
    assert all("****" in r[2] for r in rows[1:])  # a clerk sees masked phone numbers
    gold = _csv(clerk.get("/console/members/export", params={"tier": "gold"}).text)
    assert [r[1] for r in gold[1:]] == ["王小丽"]
    assert gold[1][3] == "Gold"
    clerk.headers["Accept-Language"] = "zh-CN"
    zh = _csv(clerk.get("/console/members/export", params={"tier": "gold"}).text)
    assert zh[0][0] == "会员号" and zh[1][3] == "金卡会员"
    page = clerk.get("/console/members", params={"tier": "gold"}).text
    assert 'href="/console/members/export?tier=gold&amp;format=csv"' in page


def test_member_list_exports_in_the_order_the_list_was_sorted(staff, member, make_member):  # noqa: F811
    make_member(phone="13900001111", name="赵六")
    make_member(phone="13900002222", name="Anna")
    clerk = staff("clerk")

    def names(**params: str) -> list[str]:
        r = clerk.get("/console/members/export", params={"format": "csv", **params})
        assert r.status_code == 200
        return [row[1] for row in _csv(r.text)[1:]]

    newest = names()
    assert newest[0] == "Anna"  # newest first when nothing was clicked
    assert names(sort="name") == sorted(newest)
    assert names(sort="name", dir="desc") == sorted(newest, reverse=True)
    assert names(dir="asc") == list(reversed(newest))
    assert names(sort="nonsense") == newest
    page = clerk.get("/console/members", params={"sort": "name", "dir": "desc"}).text
    assert 'href="/console/members/export?sort=name&amp;dir=desc&amp;format=csv"' in page


def test_points_history_and_audit_log_export_as_csv_and_excel(staff, member):  # noqa: F811
    admin = staff("admin")
    r = admin.get(f"/console/members/{member}/points/export", params={"format": "csv"})
    assert r.status_code == 200
    rows = _csv(r.text)
    assert rows[0][1] == "What happened"
    assert rows[-1][1] == "Earned through the API (order A-1)" and rows[-1][3] == "1500"
    x = admin.get(f"/console/members/{member}/points/export", params={"format": "xlsx"})
    assert x.status_code == 200
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = zipfile.ZipFile(io.BytesIO(x.content))
    shared = (
        book.read("xl/sharedStrings.xml").decode()
        if "xl/sharedStrings.xml" in (book.namelist())
        else book.read("xl/worksheets/sheet1.xml").decode()
    )
    assert "Earned through the API (order A-1)" in shared
    audit = admin.get("/console/audit", params={"member": member, "format": "csv"})
    assert audit.status_code == 200
    records = _csv(audit.text)
    assert records[0] == ["Time", "Actor", "Action", "Entity", "Before", "After"]
    actions = {r[2] for r in records[1:]}
    assert {"Tag added", "Points earned"} <= actions
    assert not any("{" in cell for r in records for cell in r)
    assert "Download these records:" in admin.get("/console/audit").text


def test_exports_need_the_page_permission(staff, member):  # noqa: F811
    clerk = staff("clerk")
    assert clerk.get("/console/audit", params={"format": "csv"}).status_code == 403
