"""Recall packs: points (through the ledger) and a coupon for dormant members, once per member
within the recall window; the job's statements; `patron check` sees a broken window."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update

from patron.auth.principal import Principal
from patron.campaigns import recall
from patron.campaigns.models import RecallGrant
from patron.checks import run_all
from patron.context import build
from patron.coupons.models import Coupon
from patron.ledger.models import PointsAccount
from patron.members.models import Member
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.coupons.test_coupons_concurrency_pg import _run as _run_at_once
from tests.factories import order_body
from tests.statements import count_statements

SH = ZoneInfo("Asia/Shanghai")
RECALL = {
    "enabled": True,
    "points": 200,
    "coupon_template": "BACK",
    "window_days": 90,
    "stages": ["dormant"],
}


def _settings(client, h, **kw):
    r = client.put("/api/v1/recall/settings", json={**RECALL, **kw}, headers=h)
    assert r.status_code == 200, r.text


def _run(client, h):
    r = client.post("/api/v1/recall/run", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def _later(clock, auth_headers, days):
    """Move the clock on and sign in again (tokens expire): the operator's headers."""
    clock.advance(timedelta(days=days))
    auth_headers("admin", fresh=True)
    return auth_headers("operator", fresh=True)


def _ids(database, *nos):
    with database.unit_of_work() as s:
        got = dict(s.execute(select(Member.member_no, Member.id)).all())
    return [got[n] for n in nos]


def _balance(database, member_id):
    with database.unit_of_work() as s:
        return s.scalar(select(PointsAccount.available).where(PointsAccount.member_id == member_id))


def test_dormant_members_get_one_pack_per_window(
    client, shop, make_member, database, clock, auth_headers
):
    put_template(client, shop, "BACK", {**THRESHOLD, "total_quantity": None, "per_member_limit": 5})
    assert _run(client, shop) == {"members": 0, "points": 0, "coupons": 0}  # disabled
    r = client.put(
        "/api/v1/recall/settings",
        json={**RECALL, "points": 0, "coupon_template": None},
        headers=shop,
    )
    assert r.status_code == 422
    _settings(client, shop)
    sleeper, buyer = make_member(), make_member()
    shop = _later(clock, auth_headers, 100)
    r = client.post(
        "/api/v1/orders", json=order_body(buyer, ordered_at=clock.now().isoformat()), headers=shop
    )
    assert r.status_code == 201, r.text
    newcomer = make_member()
    a, b, c = _ids(database, sleeper, buyer, newcomer)
    before = _balance(database, b)
    # only the sleeper is dormant: the buyer bought today, the newcomer is new
    assert _run(client, shop) == {"members": 1, "points": 200, "coupons": 1}
    assert _balance(database, a) == 200
    assert _balance(database, c) in (0, None)
    assert _run(client, shop) == {"members": 0, "points": 0, "coupons": 0}
    shop = _later(clock, auth_headers, 30)  # inside the window: nothing again
    assert _run(client, shop)["members"] == 0
    shop = _later(clock, auth_headers, 61)  # 91 days after the pack
    _settings(client, shop, stages=["dormant", "churned"])
    # the sleeper (churned now) gets a second pack; the buyer and the newcomer (dormant now)
    # a first one
    assert _run(client, shop) == {"members": 3, "points": 600, "coupons": 3}
    assert _balance(database, a) == 400
    assert _balance(database, b) == before + 200
    assert _balance(database, c) == 200
    with database.unit_of_work() as s:
        keys = sorted(s.scalars(select(Coupon.issue_key).where(Coupon.member_id == a)))
        assert len(keys) == 2 and all(k.startswith("recall:") for k in keys)
        assert run_all(s) == []


def test_check_reports_a_second_pack_within_the_window_and_a_wrong_posting(
    client, shop, make_member, database, clock, auth_headers
):
    put_template(client, shop, "BACK", {**THRESHOLD, "total_quantity": None})
    _settings(client, shop)
    no = make_member()
    shop = _later(clock, auth_headers, 100)
    assert _run(client, shop)["members"] == 1
    (mid,) = _ids(database, no)
    with database.unit_of_work() as s:
        assert run_all(s) == []
        grant = s.scalars(select(RecallGrant)).one()
        # a pack written behind the service, 10 days after the first
        s.execute(
            insert(RecallGrant).values(
                member_id=mid,
                granted_on=grant.granted_on + timedelta(days=10),
                window_days=90,
                points=0,
                created_at=grant.created_at,
            )
        )
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("second recall pack" in v for v in found), found
    with database.unit_of_work() as s:
        s.execute(
            update(RecallGrant).where(RecallGrant.points > 0).values(points=RecallGrant.points + 1)
        )
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any("does not match its points posting" in v for v in found), found


# The same for any number of members: authentication, settings, the due members, the claim,
# the ledger's batch earning (replay keys, accounts created and locked, due holds and lots,
# postings, lots, balances, events, audit), the postings' update (one executemany) and the
# set-based coupon issue.
BUDGET = {"sqlite": 30, "postgresql": 30}


def test_recall_run_statement_budget(client, shop, make_member, database, clock, auth_headers):
    put_template(client, shop, "BACK", {**THRESHOLD, "total_quantity": None})
    _settings(client, shop)
    counts = []
    for n in (5, 50):
        for _ in range(n):
            make_member()
        # the previous round's members are churned now: not due
        shop = _later(clock, auth_headers, 100)
        with count_statements(database.engine) as log:
            done = _run(client, shop)
        assert done["members"] == n
        assert done["points"] == 200 * n
        counts.append(log.count)
    assert counts[0] == counts[1], f"{counts}\n{log.report()}"
    assert counts[1] <= BUDGET[database.dialect], f"{counts}\n{log.report()}"
    with database.unit_of_work() as s:
        assert run_all(s) == []


def test_two_runs_at_once_give_each_member_one_pack(
    client, shop, make_member, database, clock, auth_headers
):
    if database.dialect != "postgresql":
        pytest.skip("real concurrency: PostgreSQL only (SQLite writes one at a time)")
    put_template(client, shop, "BACK", {**THRESHOLD, "total_quantity": None})
    _settings(client, shop)
    nos = [make_member() for _ in range(5)]
    _later(clock, auth_headers, 100)

    def run(_i):
        with database.unit_of_work() as s:
            return recall.run(s, build(s, Principal.system("t"), clock.now(), SH)).members

    results = _run_at_once(4, run)
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == len(nos)
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(RecallGrant)) == len(nos)
        assert s.scalar(select(func.count()).select_from(Coupon)) == len(nos)
        assert run_all(s) == []
