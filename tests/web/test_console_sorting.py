"""Sortable console lists (SQLite and PostgreSQL): a column header sorts the list, clicked
again the other way, ties in a stable order so that pages never overlap; the sort stays in
the address, in the pager's links and in the list's download."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import timedelta

from patron.audit import service as audit_service
from patron.service import tickets
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
            ("action", lambda r: (r.action, r.actor_type, r.actor_id or 0, r.at, r.id)),
            ("actor", lambda r: (r.actor_type, r.actor_id or 0, r.id)),
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


# ---- the service desk's queue ------------------------------------------------------------------


def _tickets(client, auth_headers, make_member, clock) -> dict[str, str]:
    """Four open tickets, a minute apart: name → ticket number."""
    h = auth_headers("operator")
    no = make_member()
    out = {}
    for name, over in (
        ("low", {"priority": "low", "category": "benefit"}),
        ("urgent", {"priority": "urgent", "category": "other"}),
        ("normal", {"category": "complaint"}),
        ("high", {"priority": "high", "category": "benefit"}),
    ):
        body = {"member_no": no, "subject": f"{name} one", "body": "…", **over}
        body.setdefault("category", "other")
        r = client.post("/api/v1/service/tickets", json=body, headers=h)
        assert r.status_code == 201, r.text
        out[name] = r.json()["ticket_no"]
        clock.advance(timedelta(minutes=1))
    admin = auth_headers("admin")
    username = client.get("/api/v1/auth/me", headers=admin)
    assert username.status_code == 200, username.text
    r = client.post(
        f"/api/v1/service/tickets/{out['normal']}/assign",
        json={"assignee": username.json()["label"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    return out


def _queue(html: str) -> list[str]:
    return re.findall(r'<tr data-ticket="(T\d+)"', html)


def test_ticket_queue_sorts_by_priority_opened_category_and_assignee(
    client, database, clock, make_member, auth_headers
):
    t = _tickets(client, auth_headers, make_member, clock)
    f = tickets.QueueFilter()
    with database.unit_of_work() as s:

        def order(sort: str, descending: bool) -> list[str]:
            rows, total = tickets.queue(s, f, limit=10, offset=0, sort=sort, descending=descending)
            assert total == 4
            return [r.ticket_no for r in rows]

        names = {v: k for k, v in t.items()}
        assert [names[n] for n in order("priority", True)] == ["urgent", "high", "normal", "low"]
        assert [names[n] for n in order("priority", False)] == ["low", "normal", "high", "urgent"]
        assert [names[n] for n in order("opened", True)] == ["high", "normal", "urgent", "low"]
        # same category: the older ticket first (ties by the order they were opened in)
        assert [names[n] for n in order("category", False)] == ["low", "high", "normal", "urgent"]
        # tickets nobody took come after the assigned one, on both databases
        assert names[order("assignee", False)[0]] == "normal"
        assert names[order("assignee", True)[-1]] == "normal"
        # most pressing first by default: nothing is late yet, so due soonest first
        pressing = order("pressing", False)
        assert pressing == order("due", False) == order("due", True)[::-1]
        assert pressing != order("opened", False)

    _admin(client, database, clock)
    page = client.get("/console/service").text
    assert _queue(page) == pressing
    assert 'href="/console/service?view=all&amp;sort=priority" data-sort="priority"' in page
    by_priority = client.get("/console/service?sort=priority").text
    assert [t[n] for n in ("urgent", "high", "normal", "low")] == _queue(by_priority)
    flip = 'href="/console/service?view=all&amp;sort=priority&amp;dir=asc"'
    assert f'aria-sort="descending"><a {flip}' in by_priority
    # the queue's tabs keep the sort
    assert 'href="/console/service?sort=priority&amp;view=vip"' in by_priority
    low_first = client.get("/console/service?sort=priority&dir=asc").text
    assert _queue(low_first) == _queue(by_priority)[::-1]
    assert _queue(client.get("/console/service?sort=planet&dir=up").text) == pressing


def test_ticket_queue_downloads_in_the_page_order(
    client, database, clock, make_member, auth_headers
):
    t = _tickets(client, auth_headers, make_member, clock)
    _admin(client, database, clock)
    page = client.get("/console/service?sort=priority").text
    link = 'href="/console/service/export?view=all&amp;sort=priority&amp;format=csv"'
    assert link in page
    r = client.get("/console/service/export", params={"sort": "priority", "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text[1:])))
    assert rows[0][:5] == ["Ticket", "Subject", "Member number", "Category", "Priority"]
    assert [row[0] for row in rows[1:]] == _queue(page)
    assert [row[4] for row in rows[1:]] == ["Urgent", "High", "Normal", "Low"]
    assert rows[1][0] == t["urgent"] and len(rows[1][2]) == 10
    client.headers["Accept-Language"] = "zh-CN"
    x = client.get("/console/service/export", params={"view": "resolved", "format": "xlsx"})
    assert x.status_code == 200
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="tickets-resolved.xlsx"' in x.headers["content-disposition"]
    book = zipfile.ZipFile(io.BytesIO(x.content))
    text = "".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))
    assert "工单" in text and t["urgent"] not in text  # nothing resolved yet: the header only
    assert client.get("/console/service/export", params={"view": "planet"}).status_code == 422
