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


def test_points_history_and_audit_log_export_as_csv_and_excel(staff, member, database):  # noqa: F811
    from tests.statements import count_statements

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
    with count_statements(database.engine) as log:
        audit = admin.get("/console/audit", params={"member": member, "format": "csv"})
    assert audit.status_code == 200
    # The download does not count the log once per batch, as the page does to show the total.
    assert not [s for s in log.statements if "count(" in s and "audit_log" in s]
    records = _csv(audit.text)
    assert records[0] == ["Time", "Actor", "Action", "Entity", "Before", "After"]
    actions = {r[2] for r in records[1:]}
    assert {"Tag added", "Points earned"} <= actions
    assert not any("{" in cell for r in records for cell in r)
    assert "Download these records:" in admin.get("/console/audit").text


def test_exports_need_the_page_permission(staff, member):  # noqa: F811
    clerk = staff("clerk")
    assert clerk.get("/console/audit", params={"format": "csv"}).status_code == 403


def test_member_export_seeks_through_the_list_in_its_order(
    staff,  # noqa: F811
    make_member,
    database,
    monkeypatch,
):
    """Batches of two over names with ties and blanks: every member once, in the list's order
    (blank names last going up, first going down), and no batch reads past an OFFSET."""
    from patron.web.console import exports
    from tests.statements import count_statements

    monkeypatch.setattr(exports, "BATCH", 2)
    names = ["Bo", None, "Al", "Bo", None, "Cy", "Al"]
    nos = [make_member(**({"name": n} if n else {})) for n in names]
    by_no = dict(zip(nos, names, strict=True))
    clerk = staff("clerk")
    joined = {no: i for i, no in enumerate(nos)}  # ties go by the id: the order they joined
    up = sorted(nos, key=lambda no: (by_no[no] is None, by_no[no] or "", joined[no]))
    for params, expected in [
        ({"sort": "name", "dir": "asc"}, up),
        ({"sort": "name", "dir": "desc"}, up[::-1]),
        ({}, nos[::-1]),  # newest first
        ({"sort": "member_no", "dir": "asc"}, sorted(nos)),
    ]:
        with count_statements(database.engine) as log:
            got = _csv(clerk.get("/console/members/export", params=params).text)
        assert [r[0] for r in got[1:]] == expected, params
        reads = [s for s in log.statements if "FROM members" in s and "ORDER BY" in s]
        # a batch of two at a time, and one more read where the blank names start or end
        assert len(reads) <= len(nos) // 2 + 2, log.report()
        # each batch after the first starts past the last row of the one before, or where
        # the blank names or the names start ...
        seeks = ("members.id <", "members.id >", "members.name IS NULL", "name IS NOT NULL")
        assert all(any(k in s for k in seeks) for s in reads[1:]), log.report()
        if database.engine.dialect.name == "postgresql":  # ... not after an OFFSET (SQLite
            assert not [s for s in reads if "OFFSET" in s], log.report()  # always writes one)
        page = clerk.get("/console/members", params=params).text
        positions = [page.index(no) for no in expected]
        assert positions == sorted(positions), params  # the page lists them in the same order


def test_the_audit_download_seeks_in_time_order_and_pages_the_other_sorts(
    staff,  # noqa: F811
    member,  # noqa: F811
    database,
    monkeypatch,
):
    """Batches of two give the same rows as one batch, in every sort; in the time order (the
    default) each batch after the first starts past the last record's id."""
    from patron.web.console import exports
    from tests.statements import count_statements

    admin = staff("admin")
    for sort in ("time", "actor", "action"):
        params = {"format": "csv", "sort": sort}
        whole = _csv(admin.get("/console/audit", params=params).text)
        assert len(whole) > 4, whole  # several batches of two
        monkeypatch.setattr(exports, "BATCH", 2)
        with count_statements(database.engine) as log:
            batched = _csv(admin.get("/console/audit", params=params).text)
        monkeypatch.setattr(exports, "BATCH", 1000)
        assert batched == whole, sort
        reads = [s for s in log.statements if "FROM audit_log" in s and "ORDER BY" in s]
        assert len(reads) >= (len(whole) - 1) // 2, log.report()
        seeking = [s for s in reads[1:] if "audit_log.id <" in s]
        assert len(seeking) == (len(reads) - 1 if sort == "time" else 0), log.report()


def test_a_download_stops_at_its_row_limit_exactly(staff, make_member, monkeypatch):  # noqa: F811
    """Batches of two with a limit of five rows: five members come out of seven, even where a
    batch ends between the named and the blank ones."""
    from patron.web.console import exports

    monkeypatch.setattr(exports, "BATCH", 2)
    monkeypatch.setattr(exports, "MAX_ROWS", 5)
    for n in ("Al", None, "Bo", None, "Cy", "Di", None):
        make_member(**({"name": n} if n else {}))
    clerk = staff("clerk")
    for params in ({"sort": "name", "dir": "asc"}, {"sort": "name", "dir": "desc"}, {}):
        got = _csv(clerk.get("/console/members/export", params=params).text)
        assert len(got) == 1 + 5, params
