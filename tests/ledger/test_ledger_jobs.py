"""The expiry job split over several connections (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from patron.auth.principal import Principal
from patron.kit.crypto import FieldCipher
from patron.ledger import flows, jobs, queries, service
from patron.ledger.check import run_check
from patron.members import service as members
from patron.members.schemas import MemberCreate

TZ = ZoneInfo("Asia/Shanghai")
ACTOR = Principal.system("jobs-test")


def test_expiry_over_three_connections_expires_each_due_lot_once(database, clock):
    t0 = clock.now()
    ids = []
    with database.unit_of_work() as s:
        for i in range(10):
            m = members.register(
                s,
                ACTOR,
                FieldCipher(b"d" * 32, b"i" * 32),
                MemberCreate(phone=f"1350000{i:04d}", channel="web"),
                now=t0,
                tz=TZ,
            )
            ids.append(m.id)
    for k, (at, points) in enumerate(((t0, 300), (t0 + timedelta(days=200), 50))):
        with database.unit_of_work() as s:
            for mid in ids[: 9 if k == 0 else 10]:  # the last member has nothing due
                flows.earn(
                    s,
                    service.Ctx(ACTOR, at, TZ),
                    mid,
                    points=points,
                    source_type="t",
                    source_id=f"{k}-{mid}",
                )
    now = t0 + timedelta(days=400)
    report = jobs.run_expire(database, now, batch_members=2, workers=3)
    assert (report.members, report.lots, report.points) == (9, 9, 2_700)
    assert jobs.run_expire(database, now, workers=3).lots == 0
    with database.unit_of_work() as s:
        for mid in ids:
            b = queries.balance(s, mid, now)
            assert (b.available, b.lifetime_expired) == (50, 300 if mid != ids[-1] else 0)
        assert run_check(s, now=now) == []
    assert jobs.run_expire(database, now + timedelta(days=1000), workers=4).lots == 10


#: per batch: the due members, their account locks, the webhook subscriptions, then on
#: PostgreSQL one statement (postings, allocations, balances, lots, events and deliveries); on
#: SQLite (with its BEGIN IMMEDIATE) one per table and the events
EXPIRE_BATCH_BUDGET = {"postgresql": 4, "sqlite": 11}


def test_an_expiry_batch_costs_the_same_statements_for_5_members_as_for_50(database, clock):
    from sqlalchemy import func, select

    from patron.webhooks.models import WebhookEvent
    from tests.statements import count_statements

    t0 = clock.now()
    cipher = FieldCipher(b"d" * 32, b"i" * 32)
    counts = []
    now = t0 + timedelta(days=400)
    for n, base in ((5, 0), (50, 100)):
        with database.unit_of_work() as s:
            ids = [
                members.register(
                    s,
                    ACTOR,
                    cipher,
                    MemberCreate(phone=f"1351000{base + i:04d}", channel="web"),
                    now=t0,
                    tz=TZ,
                ).id
                for i in range(n)
            ]
            for mid in ids:
                for k in range(2):  # two lots each, both due
                    flows.earn(
                        s,
                        service.Ctx(ACTOR, t0, TZ),
                        mid,
                        points=100,
                        source_type="t",
                        source_id=f"b{k}-{mid}",
                    )
        with count_statements(database.engine) as log, database.unit_of_work() as s:
            done = jobs.expire_batch(s, now, ids[0] - 1, 1_000, ids[-1])
        assert done is not None and done[1:] == (n, 2 * n, 200 * n)
        counts.append(log.count)
        with database.unit_of_work() as s:
            assert run_check(s, now=now) == []
            expired = s.scalar(
                select(func.count()).where(WebhookEvent.event_type == "points.expired")
            )
            assert expired == (5 if n == 5 else 55)
    assert counts[0] == counts[1], log.report()
    assert counts[1] <= EXPIRE_BATCH_BUDGET[database.dialect], log.report()
