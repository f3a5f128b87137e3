"""The approval queue's "balance now" (SQLite and PostgreSQL): read for every member on the page
in a fixed number of statements, and counted as the ledger counts spendable points — lots past
their expiry are not there to give up."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from patron.ledger import growth, queries
from patron.members.models import Member
from tests.statements import count_statements
from tests.web.test_members_pages import staff  # noqa: F401


def _queue(client: Any, h: dict[str, str], admin_h: dict[str, str], no: str, n: int) -> None:
    r = client.post(
        f"/api/v1/members/{no}/points/earn",
        json={"points": 300, "source_type": "order", "source_id": f"Q-{n}"},
        headers=admin_h,
    )
    assert r.status_code in (200, 201), r.text
    for ledger in ("points", "growth"):
        r = client.post(
            f"/api/v1/members/{no}/points/adjustments",
            json={"ledger": ledger, "amount": -200, "reason": "queue"},
            headers=h,
        )
        assert r.status_code == 201 and r.json()["status"] == "pending_approval", r.text


def test_the_queue_reads_balances_in_statements_that_do_not_grow_with_members(
    staff,  # noqa: F811
    make_member: Any,
    client: Any,
    auth_headers: Any,
    database: Any,
    clock: Any,
) -> None:
    h = auth_headers("operator")
    admin_h = auth_headers("admin")
    limits = client.get("/api/v1/points/settings", headers=admin_h).json()
    r = client.put(
        "/api/v1/points/settings",
        json={**limits, "adjustment_approval_limit": 100},
        headers=admin_h,
    )
    assert r.status_code == 200, r.text
    nos = [make_member() for _ in range(4)]
    # growth to remove: 500 each, applied at once (within the limits)
    for no in nos:
        for _ in range(5):
            r = client.post(
                f"/api/v1/members/{no}/points/adjustments",
                json={"ledger": "growth", "amount": 100, "reason": "seed"},
                headers=admin_h,
            )
            assert r.json()["status"] == "applied", r.text
    admin = staff("admin")
    _queue(client, h, admin_h, nos[0], 0)
    with count_statements(database.engine) as one:
        assert admin.get("/console/approvals").status_code == 200
    for n, no in enumerate(nos[1:], 1):
        _queue(client, h, admin_h, no, n)
    with count_statements(database.engine) as four:
        page = admin.get("/console/approvals").text
    assert four.count == one.count, four.report()
    shown = re.findall(r'data-balance="(-?[0-9]+)"', page)
    assert sorted(shown) == ["300"] * 4 + ["500"] * 4

    # Years later every lot has expired, though no expiry run has removed it yet: not there
    # to give up, as the ledger counts it.
    later = clock.advance(timedelta(days=365 * 6))
    with database.unit_of_work() as s:
        ids = [s.query(Member.id).filter_by(member_no=no).scalar() for no in nos]
        held = queries.held_now(s, ids, later)
        for mid in ids:
            assert held[(mid, "points")] == queries.balance(s, mid, later).available == 0
            assert held[(mid, "growth")] == growth.balance(s, mid)[0] == 500
        assert queries.held_now(s, [], later) == {}
