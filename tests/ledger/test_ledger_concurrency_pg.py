"""The ledger under real concurrency on PostgreSQL: threads released together by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.app import create_app
from patron.auth import service as auth
from patron.auth.principal import Principal
from patron.kit.crypto import FieldCipher
from patron.ledger import flows, jobs, queries, service
from patron.ledger.check import run_check
from patron.ledger.domain import InsufficientPoints
from patron.ledger.models import PointsAllocation, PointsLot, PointsPosting
from patron.members import service as members
from patron.members.schemas import MemberCreate
from tests.conftest import make_settings

pytestmark = pytest.mark.postgres_only

TZ = ZoneInfo("Asia/Shanghai")
ACTOR = Principal.system("concurrency-test")
CIPHER = FieldCipher(b"d" * 32, b"i" * 32)
T = TypeVar("T")


def run_together(n: int, fn: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``fn(0..n-1)`` in ``n`` threads that start at the same instant."""
    barrier = threading.Barrier(n)
    results: list[T | BaseException] = [RuntimeError("not run")] * n

    def go(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # the test inspects every outcome
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def new_member(db: Any, now: Any, phone: str) -> int:
    with db.unit_of_work() as s:
        m = members.register(
            s, ACTOR, CIPHER, MemberCreate(phone=phone, channel="web"), now=now, tz=TZ
        )
        return m.id


def ctx(now: Any) -> service.Ctx:
    return service.Ctx(ACTOR, now, TZ)


def earn(db: Any, member_id: int, points: int, source: str, now: Any) -> None:
    with db.unit_of_work() as s:
        flows.earn(s, ctx(now), member_id, points=points, source_type="t", source_id=source)


def test_200_concurrent_spends_of_100_on_1000_points_exactly_10_succeed(pg_database, clock):
    now = clock.now()
    mid = new_member(pg_database, now, "13800138000")
    earn(pg_database, mid, 1_000, "seed", now)

    def spend(i: int) -> int:
        with pg_database.unit_of_work() as s:
            return flows.spend(
                s, ctx(now), mid, points=100, source_type="mall", source_id=f"s{i}"
            ).posting_id

    results = run_together(200, spend)
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if not isinstance(r, int)]
    assert len(won) == 10
    assert all(isinstance(r, InsufficientPoints) for r in lost), {type(r) for r in lost}
    with pg_database.unit_of_work() as s:
        b = queries.balance(s, mid, now)
        assert (b.available, b.lifetime_redeemed) == (0, 1_000)
        assert (
            s.scalar(select(func.sum(PointsLot.remaining)).where(PointsLot.member_id == mid)) == 0
        )
        assert run_check(s, now=now) == []


def test_expiry_job_racing_spends_expires_only_remainders_and_spends_only_live_points(
    pg_database, clock
):
    t0 = clock.now()
    ids = [new_member(pg_database, t0, f"1380013{i:04d}") for i in range(24)]
    for mid in ids:
        earn(pg_database, mid, 500, f"old-{mid}", t0)  # expires after 365 days
        earn(pg_database, mid, 500, f"new-{mid}", t0 + timedelta(days=200))
    now = t0 + timedelta(days=400)  # the first lot of everyone is due, the second is live

    def work(i: int) -> object:
        if i < 2:  # two expiry runs race each other and the spends
            return jobs.run_expire(pg_database, now, batch_members=5, workers=1 + i)
        mid = ids[i - 2] if i - 2 < len(ids) else ids[(i - 2) % len(ids)]
        with pg_database.unit_of_work() as s:
            return flows.spend(
                s, ctx(now), mid, points=300, source_type="mall", source_id=f"s{i}"
            ).posting_id

    results = run_together(2 + 2 * len(ids), work)
    spends = results[2:]
    for r in results[:2]:
        assert isinstance(r, jobs.ExpireReport), r
    # each member: one 300-point spend fits in the 500 live points, the second does not
    assert sum(isinstance(r, int) for r in spends) == len(ids)
    assert all(isinstance(r, (int, InsufficientPoints)) for r in spends)
    with pg_database.unit_of_work() as s:
        for mid in ids:
            b = queries.balance(s, mid, now)
            assert (b.available, b.lifetime_expired, b.lifetime_redeemed) == (200, 500, 300)
        # no lot gave out more than it held, and no spend touched a lot past its expiry
        over = s.execute(
            select(PointsAllocation.lot_id)
            .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
            .group_by(PointsAllocation.lot_id, PointsLot.amount)
            .having(func.sum(PointsAllocation.amount) > PointsLot.amount)
        ).all()
        assert over == []
        stale_spends = s.scalar(
            select(func.count())
            .select_from(PointsAllocation)
            .join(PointsPosting, PointsPosting.id == PointsAllocation.posting_id)
            .join(PointsLot, PointsLot.id == PointsAllocation.lot_id)
            .where(PointsPosting.kind == "redeem", PointsLot.expires_at <= PointsPosting.created_at)
        )
        assert stale_spends == 0
        assert run_check(s, now=now) == []


def test_50_identical_requests_with_one_idempotency_key_have_one_effect(pg_database, clock):
    app = create_app(make_settings(pg_database), pg_database, clock)
    with pg_database.unit_of_work() as s:
        user = auth.create_staff(
            s,
            ACTOR,
            username="op-pg",
            display_name="op",
            role="admin",  # free-form earning needs points:grant
            password="test-password-123",
            now=clock.now(),
        )
        token = auth.issue_token(user, app.state.keys["token_key"], 30, clock.now())
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "earn-once-0001"}
    with TestClient(app) as c:
        no = c.post(
            "/api/v1/members",
            json={"phone": "13800138000", "channel": "web"},
            headers=headers | {"Idempotency-Key": "register-0001"},
        ).json()["member_no"]
    body = {"points": 250, "source_type": "campaign", "source_id": "spring", "reason": "gift"}

    def post(_i: int) -> tuple[int, dict[str, Any]]:
        with TestClient(app) as c:
            r = c.post(f"/api/v1/members/{no}/points/earn", json=body, headers=headers)
            return r.status_code, r.json()

    results = run_together(50, post)
    codes = [r[0] for r in results if isinstance(r, tuple)]
    assert len(codes) == 50
    assert set(codes) <= {201, 409}, codes
    firsts = {r[1]["posting"]["id"] for r in results if isinstance(r, tuple) and r[0] == 201}
    assert len(firsts) == 1  # every success is the same response
    conflicts = [r[1] for r in results if isinstance(r, tuple) and r[0] == 409]
    assert all(c["error"]["code"] == "idempotency_key_in_use" for c in conflicts), conflicts
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(PointsPosting)) == 1
        b = queries.balance(s, 1, clock.now())
        assert b.available == 250
        assert run_check(s, now=clock.now()) == []


def test_adjustments_at_once_by_one_person_respect_the_daily_limit(pg_database, clock):
    """Ten adjustments of exactly the approval limit, on ten members, all at once by one staff
    member: the daily limit (20,000) lets exactly two through without a second approver."""
    staff = Principal(kind="staff", id=42, label="op", role="operator")
    ids = [new_member(pg_database, clock.now(), f"1370000{i:04d}") for i in range(10)]

    def adjust(i: int) -> str:
        with pg_database.unit_of_work() as s:
            ctx = service.Ctx(staff, clock.now(), TZ, service.get_points_settings(s))
            row = flows.request_adjustment(
                s, ctx, ids[i], ledger="points", amount=10_000, reason="at once"
            )
            return row.status

    statuses = run_together(10, adjust)
    assert sorted(map(str, statuses)) == ["applied"] * 2 + ["pending_approval"] * 8
    with pg_database.unit_of_work() as s:
        total = sum(queries.balance(s, mid, clock.now()).available for mid in ids)
        assert total == 20_000
        assert run_check(s, now=clock.now()) == []
