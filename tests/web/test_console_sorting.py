"""Sortable console lists (SQLite and PostgreSQL): a column header sorts the list, clicked
again the other way, ties in a stable order so that pages never overlap; the sort stays in
the address, in the pager's links and in the list's download."""

from __future__ import annotations

import csv
import io
import re

from patron.audit import service as audit_service
from tests.web.test_dash_pages import _admin


def _actions(html: str) -> list[str]:
    return re.findall(r'<td data-action="([^"]+)">', html)


def test_audit_search_sorts_by_each_column_with_ties_by_id(client, database, clock, make_member):
    _admin(client, database, clock)
    make_member()
    make_member()
    with database.unit_of_work() as s:
        everything, total = audit_service.search(s, limit=100)
        assert total == len(everything) >= 3
        ids = [r.id for r in everything]
        assert ids == sorted(ids, reverse=True)  # newest first by default
        oldest, _ = audit_service.search(s, limit=100, descending=False)
        assert [r.id for r in oldest] == sorted(ids)
        for column, key in (
            ("action", lambda r: (r.action, r.id)),
            ("actor", lambda r: (r.actor_type, r.actor_label, r.id)),
            ("entity", lambda r: (r.entity_type, r.entity_id, r.id)),
        ):
            up, _ = audit_service.search(s, limit=100, sort=column, descending=False)
            assert [r.id for r in up] == [r.id for r in sorted(everything, key=key)], column
            down, _ = audit_service.search(s, limit=100, sort=column)
            assert [r.id for r in down] == [r.id for r in up][::-1], column
            # pages of one record each cover the list once, in the same order
            paged = [
                audit_service.search(s, limit=1, offset=i, sort=column)[0][0].id
                for i in range(total)
            ]
            assert paged == [r.id for r in down], column


def test_audit_page_sorts_by_a_header_and_keeps_the_sort(
    client, database, clock, make_member, auth_headers
):
    _admin(client, database, clock)
    no = make_member()
    make_member()
    h = auth_headers("admin")
    assert client.post(f"/api/v1/members/{no}/tags", json={"tag": "VIP"}, headers=h).is_success
    page = client.get("/console/audit").text
    assert re.search(
        r'aria-sort="descending"><a href="/console/audit\?dir=asc" data-sort="time"', page
    )
    assert 'href="/console/audit?sort=action" data-sort="action"' in page
    default = _actions(page)
    assert default != sorted(default)
    by_action = client.get("/console/audit?sort=action").text
    assert re.search(
        r'aria-sort="ascending"><a href="/console/audit\?sort=action&amp;dir=desc"', by_action
    )
    assert _actions(by_action) == sorted(default)
    backwards = _actions(client.get("/console/audit?sort=action&dir=desc").text)
    assert backwards == sorted(default, reverse=True)
    # filters and sort travel together, into the download too
    filtered = client.get("/console/audit?entity_type=member&sort=action&dir=desc").text
    assert (
        'href="/console/audit?entity_type=member&amp;sort=action&amp;dir=desc&amp;format=csv"'
        in filtered
    )
    r = client.get("/console/audit?sort=action&format=csv")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text[1:])))[1:]
    labels = [row[2] for row in rows]
    # the download is in the page's order (labels of the actions sorted by their codes)
    page_labels = re.findall(r'<td data-action="[^"]+">([^<]+)</td>', by_action)
    assert len(set(page_labels)) >= 2
    assert labels[: len(page_labels)] == [x.strip() for x in page_labels]
    # an unknown column or direction is the default, never an error
    assert _actions(client.get("/console/audit?sort=planet&dir=up").text) == default
