"""The console's member page reads a bounded number of statements, whatever the member's
history: a member with many orders, postings, tickets and messages costs what one with a few
does (no query per row), on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.factories import order_body
from tests.statements import count_statements
from tests.web.test_pages import _sign_in, _staff

# Statements of one GET of the member page (session, permissions, member, account, tier,
# history tables, consent history, scores card …). A change that adds one fails here with
# the list of them.
BUDGET = {"sqlite": 18, "postgresql": 17}


def _member_with_history(client, shop, make_member, orders: int) -> str:
    no = make_member()
    for i in range(orders):
        r = client.post("/api/v1/orders", json=order_body(no, ext=f"{no}-{i}"), headers=shop)
        assert r.status_code == 201, r.text
    for i in range(min(orders, 3)):
        r = client.post(f"/api/v1/members/{no}/tags", json={"tag": f"t{i}"}, headers=shop)
        assert r.status_code in (200, 201), r.text
    return no


def _page_statements(client, database, no: str) -> tuple[int, str]:
    with count_statements(database.engine) as log:
        page = client.get(f"/console/members/{no}")
    assert page.status_code == 200, page.text[:300]
    return log.count, log.report()


def test_the_member_page_costs_the_same_for_a_long_history(
    client, shop, make_member, database, clock
):
    few = _member_with_history(client, shop, make_member, orders=2)
    many = _member_with_history(client, shop, make_member, orders=12)
    user = _staff(database, clock, "admin")
    assert _sign_in(client, user).status_code == 303
    _page_statements(client, database, few)  # the first page of the process warms its caches
    small, _ = _page_statements(client, database, few)
    large, report = _page_statements(client, database, many)
    assert large == small, report
    budget = BUDGET[database.dialect]
    assert large <= budget, f"{large} statements > {budget}\n{report}"
