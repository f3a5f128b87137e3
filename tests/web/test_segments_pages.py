"""Segment console pages without a browser (SQLite and PostgreSQL): the builder adds and removes
conditions and groups, counts as it goes, saves a segment (versions) and a rule tag; static
lists are imported from a file; a segment downloads as CSV and Excel."""

from __future__ import annotations

import io
import zipfile

from tests.web.test_config_pages import _csrf, operator  # noqa: F401 - the fixture


def _post(client, token, data):
    return client.post("/console/segments/build", data={"csrf_token": token, **data})


def test_builder_counts_adds_removes_and_saves(client, operator, make_member):  # noqa: F811
    nos = sorted(make_member() for _ in range(3))
    page = client.get("/console/segments/build")
    assert page.status_code == 200 and "data-problem" in page.text  # a tier without codes yet
    base = {"r:op": "and", "r.0:field": "registered", "r.0:on_or_after": "2000-01-01"}
    counted = _post(client, operator, base)
    assert "Members matching the conditions: 3." in counted.text
    assert all(no in counted.text for no in nos)
    added = _post(client, operator, {**base, "action": "add:r"})
    assert 'name="r.1:field"' in added.text
    grouped = _post(client, operator, {**base, "action": "group:r"})
    assert 'name="r.1:op"' in grouped.text and 'name="r.1.0:field"' in grouped.text
    # an incomplete condition is named, nothing breaks
    incomplete = _post(client, operator, {**base, "r.1:field": "points_balance"})
    assert 'aria-invalid="true"' in incomplete.text and "data-problem" in incomplete.text
    removed = _post(client, operator, {**base, "r.1:field": "tier", "action": "remove:r.1"})
    assert (
        'name="r.1:field"' not in removed.text
        and "Members matching the conditions: 3." in removed.text
    )
    bad_number = _post(client, operator, {**base, "r.1:field": "order_count", "r.1:min": "x"})
    assert bad_number.status_code == 200 and 'aria-invalid="true"' in bad_number.text
    assert 'name="r.1:min" value="x"' in bad_number.text  # kept as typed
    saved = _post(
        client,
        operator,
        {**base, "action": "save_segment", "target_code": "all", "target_name": "Everyone"},
    )
    assert saved.status_code == 200 and "Everyone" in saved.text  # followed to the detail
    again = _post(
        client,
        operator,
        {**base, "r:op": "or", "action": "save_segment", "target_code": "all",
         "target_name": "Everyone again"},
    )  # fmt: skip
    assert 'data-version="2"' in again.text and 'data-version="1"' in again.text
    tag = _post(
        client,
        operator,
        {"r:op": "and", "r.0:field": "spend_fen", "r.0:min": "100", "action": "save_tag",
         "target_name": "big spender", "target_description": "¥100 or more"},
    )  # fmt: skip
    assert tag.status_code == 200 and "big spender" in tag.text
    assert 'data-members="0"' in tag.text
    listing = client.get("/console/segments")
    assert 'data-segment="all"' in listing.text
    reopened = client.get("/console/segments/build?segment=all")
    assert 'name="target_code" value="all"' in reopened.text
    persona = client.get("/console/segments/build?persona=high_frequency")
    assert 'value="6"' in persona.text


def test_static_list_import_and_exports(client, operator, make_member):  # noqa: F811
    a, b = make_member(), make_member()
    done = client.post(
        "/console/segments/lists",
        data={"csrf_token": operator, "code": "fair", "name": "Trade fair"},
        files={"file": ("fair.csv", f"member_no\n{a}\n{b}\n".encode(), "text/csv")},
    )
    assert done.status_code == 200 and 'data-list="fair"' in done.text
    empty = client.post(
        "/console/segments/lists",
        data={"csrf_token": operator, "code": "x", "name": "X"},
        files={"file": ("x.csv", b"phone\n", "text/csv")},
    )
    assert empty.status_code == 422
    _post(
        client,
        operator,
        {"r:op": "and", "r.0:field": "list", "r.0:values": "fair", "action": "save_segment",
         "target_code": "fair", "target_name": "Fair"},
    )  # fmt: skip
    csv = client.get("/console/segments/fair/export?format=csv")
    assert csv.status_code == 200
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("Member number") and len(lines) == 3
    assert {ln.split(",")[0] for ln in lines[1:]} == {a, b}
    xlsx = client.get("/console/segments/fair/export?format=xlsx")
    book = zipfile.ZipFile(io.BytesIO(xlsx.content))
    cells = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/"))
    assert "Member number" in cells and a in cells and b in cells


def test_pages_read_in_chinese(client, operator):  # noqa: F811
    client.headers["Accept-Language"] = "zh-CN"
    index = client.get("/console/segments")
    assert index.status_code == 200
    assert "高频购买会员" in index.text and "促销敏感会员" in index.text and "60%" in index.text
    build = client.get("/console/segments/build?persona=promotion_sensitive")
    assert build.status_code == 200 and "有折扣的购买占比" in build.text
    assert client.get("/console/segments/tags").status_code == 200
