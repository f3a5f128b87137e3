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
