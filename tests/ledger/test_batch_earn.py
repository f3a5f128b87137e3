"""The batch earning (``ledger.batch.earn_many``) against one ``flows.earn`` per credit.

Property: over random members — lots earned over the past months (some already past expiry),
pending points whose window has passed or not, debt from a refund larger than the balance,
sources already credited — crediting a random list of credits (a member may appear several
times, a source may repeat) leaves exactly the same ledger either way: postings, lots,
allocations, holds, accounts, events and audit records, member by member. Then: the batch costs
the same statements for 5 members as for 50, a rerun credits nothing twice, `patron check` is
clean.
"""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from patron.audit.models import AuditRecord
from patron.auth.principal import Principal
from patron.checks import run_all
from patron.kit.crypto import FieldCipher
from patron.ledger import batch, flows, service
from patron.ledger.domain import BatchCredit, ExpiryPolicy
from patron.ledger.models import (
    PointsAccount,
    PointsAllocation,
    PointsHold,
    PointsLot,
    PointsPosting,
)
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import MemberCreate
from patron.program import service as program
from patron.webhooks.models import WebhookEvent
from tests.statements import count_statements

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
ACTOR = Principal.system("batch-earn-test")
CIPHER = FieldCipher(b"b" * 32, b"j" * 32)
POLICY = ExpiryPolicy(kind="days_after", n=60)
_phones = itertools.count()
EXAMPLES = int(os.environ.get("PATRON_BATCH_EXAMPLES", "20"))

# one member's past: earnings (points, days before now, pending days), then maybe a refund
EARNINGS = st.lists(
    st.tuples(st.integers(1, 500), st.integers(1, 200), st.sampled_from([0, 0, 5, 40])),
    max_size=4,
)
MEMBER = st.tuples(EARNINGS, st.integers(0, 1_500), st.booleans())


def _register(s: Any, now: datetime) -> int:
    m = members.register(
        s,
        ACTOR,
        CIPHER,
        MemberCreate(phone=f"137{next(_phones):08d}", channel="web"),
        now=now,
        tz=TZ,
    )
    return int(m.id)


def _ctx(s: Any, now: datetime) -> service.Ctx:
    return service.Ctx(ACTOR, now, TZ, service.get_points_settings(s))


def _past(database: Any, mid: int, side: str, past: Any, tag: str, pair: int) -> None:
    """Give a member its history, in time order: the same for both sides of a pair."""
    earnings, refund, credited = past
    for j, (points, days, pending) in enumerate(sorted(earnings, key=lambda e: -e[1])):
        when = NOW - timedelta(days=days)
        with database.unit_of_work() as s:
            flows.earn(
                s,
                _ctx(s, when),
                mid,
                points=points,
                source_type="order",
                source_id=f"{tag}{side}-{pair}-past{j}",
                pending_days=pending,
            )
    when = NOW - timedelta(hours=12)
    if refund:
        # more than the balance: the rest becomes debt that new points repay
        with database.unit_of_work() as s:
            ctx = _ctx(s, when)
            service.begin(s, ctx, mid)
            service.clawback_points(
                s,
                ctx,
                mid,
                refund,
                source_type="order",
                source_id=f"{tag}{side}-{pair}-x",
                refund_id="r",
            )
    if credited:  # the first source of the pair was credited before
        with database.unit_of_work() as s:
            flows.earn(
                s,
                _ctx(s, when),
                mid,
                points=_points(0),
                source_type="job",
                source_id=f"{tag}{side}-{pair}-0",
                pending_days=0,
            )


def _points(j: int) -> int:
    return 10 + 37 * j


def _snapshot(s: Any, mid: int, prefix: str) -> dict[str, Any]:
    """The member's ledger with ids replaced by positions and the side's prefix removed."""

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace(prefix, "")
            head = value.split(":")[0]
            return head if head in ("expire", "repay", "release") else value
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        return value

    postings = s.execute(
        select(PointsPosting).where(PointsPosting.member_id == mid).order_by(PointsPosting.id)
    ).scalars()
    at: dict[int, int] = {}
    out: dict[str, Any] = {"postings": []}
    for i, p in enumerate(postings):
        at[p.id] = i
        out["postings"].append(
            (
                p.kind,
                p.available_delta,
                p.pending_delta,
                p.debt_delta,
                p.reason,
                p.source_type,
                norm(p.source_id),
                norm(p.idempotency_key),
                p.actor,
                p.created_at,
            )
        )
    lots = s.execute(select(PointsLot).where(PointsLot.member_id == mid).order_by(PointsLot.id))
    lot_at: dict[int, int] = {}
    out["lots"] = []
    for i, lot in enumerate(lots.scalars()):
        lot_at[lot.id] = i
        out["lots"].append(
            (
                at[lot.posting_id],
                lot.amount,
                lot.remaining,
                lot.earned_at,
                lot.expires_at,
                lot.source_type,
                norm(lot.source_id),
            )
        )
    out["allocations"] = sorted(
        (at[a.posting_id], lot_at[a.lot_id], a.amount)
        for a in s.execute(
            select(PointsAllocation).where(PointsAllocation.member_id == mid)
        ).scalars()
    )
    out["holds"] = [
        (h.status, h.amount, h.original_amount, h.release_at, h.resolved_at)
        for h in s.execute(
            select(PointsHold).where(PointsHold.member_id == mid).order_by(PointsHold.id)
        ).scalars()
    ]
    acc = s.get(PointsAccount, mid)
    out["account"] = acc and (
        acc.available,
        acc.pending,
        acc.debt,
        acc.lifetime_earned,
        acc.lifetime_redeemed,
        acc.lifetime_expired,
        acc.version,
        acc.updated_at,
    )
    number = s.scalar(select(Member.member_no).where(Member.id == mid))

    def payload(p: dict[str, Any]) -> dict[str, Any]:
        return {**norm(p), "posting_id": at.get(p.get("posting_id", -1))}

    out["events"] = [
        (e.event_type, payload(e.payload), e.created_at)
        for e in s.execute(
            select(WebhookEvent)
            .where(WebhookEvent.member_no == number, WebhookEvent.event_type.like("points.%"))
            .order_by(WebhookEvent.id)
        ).scalars()
    ]
    out["audit"] = [
        (a.action, a.actor_label, payload(a.after or {}), a.at)
        for a in s.execute(
            select(AuditRecord)
            .where(
                AuditRecord.entity_type == "member",
                AuditRecord.entity_id == str(mid),
                AuditRecord.action.like("points.%"),
            )
            .order_by(AuditRecord.id)
        ).scalars()
    ]
    return out


def _settings(database: Any) -> None:
    with database.unit_of_work() as s:
        program.put_section(
            s,
            ACTOR,
            service.SECTION,
            service.PointsSettings(expiry=POLICY),
            now=NOW - timedelta(days=400),
        )


def test_batch_and_one_by_one_leave_identical_ledgers(database) -> None:
    _settings(database)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        pasts=st.lists(MEMBER, min_size=1, max_size=4),
        data=st.data(),
    )
    def check(pasts: list[Any], data: st.DataObject) -> None:
        tag = uuid.uuid4().hex[:8]
        start = NOW - timedelta(days=300)
        with database.unit_of_work() as s:
            one = [_register(s, start) for _ in pasts]
            many = [_register(s, start) for _ in pasts]
        for pair, past in enumerate(pasts):
            _past(database, one[pair], "A", past, tag, pair)
            _past(database, many[pair], "B", past, tag, pair)
        credits = data.draw(
            st.lists(st.tuples(st.integers(0, len(pasts) - 1), st.integers(0, 3)), max_size=8),
            label="credits",
        )
        with database.unit_of_work() as s:
            ctx = _ctx(s, NOW)
            expected = [
                flows.earn(
                    s,
                    ctx,
                    one[pair],
                    points=_points(j),
                    source_type="job",
                    source_id=f"{tag}A-{pair}-{j}",
                    reason="a job's points",
                    pending_days=0,
                ).posting.replayed
                for pair, j in credits
            ]
        with database.unit_of_work() as s:
            got = batch.earn_many(
                s,
                _ctx(s, NOW),
                [
                    BatchCredit(
                        many[pair], _points(j), "job", f"{tag}B-{pair}-{j}", "a job's points"
                    )
                    for pair, j in credits
                ],
            )
        assert [r.replayed for r in got] == expected
        with database.unit_of_work() as s:
            for pair in range(len(pasts)):
                a = _snapshot(s, one[pair], f"{tag}A")
                b = _snapshot(s, many[pair], f"{tag}B")
                assert a == b, pair

    check()
    with database.unit_of_work() as s:
        assert run_all(s, now=NOW) == []


def _members(database: Any, n: int) -> list[int]:
    with database.unit_of_work() as s:
        return [_register(s, NOW - timedelta(days=90)) for _ in range(n)]


def test_batch_statements_do_not_grow_with_members_and_a_rerun_credits_nothing(database) -> None:
    _settings(database)
    counts = []
    for n in (5, 50):
        ids = _members(database, n)
        # each with an old lot now due, and a debt to repay from the new points
        for mid in ids:
            with database.unit_of_work() as s:
                flows.earn(
                    s,
                    _ctx(s, NOW - timedelta(days=100)),
                    mid,
                    points=50,
                    source_type="order",
                    source_id=f"old-{mid}",
                    pending_days=0,
                )
            with database.unit_of_work() as s:
                ctx = _ctx(s, NOW - timedelta(days=1))
                service.begin(s, ctx, mid)
                service.clawback_points(
                    s, ctx, mid, 80, source_type="order", source_id=f"old-{mid}", refund_id="r"
                )
        credits = [BatchCredit(m, 100, "job", f"run-{m}", "a job's points") for m in ids]
        with count_statements(database.engine) as log, database.unit_of_work() as s:
            got = batch.earn_many(s, _ctx(s, NOW), credits)
        assert not any(r.replayed for r in got)
        counts.append(log.count)
        with database.unit_of_work() as s:
            again = batch.earn_many(s, _ctx(s, NOW + timedelta(hours=1)), credits)
        assert all(r.replayed for r in again)
        assert [r.posting_id for r in again] == [r.posting_id for r in got]
        with database.unit_of_work() as s:
            earned = s.scalar(
                select(func.count()).where(
                    PointsPosting.kind == "earn",
                    PointsPosting.source_id.in_([c.source_id for c in credits]),
                )
            )
            assert earned == n
            # the old lot expired before the refund: 80 of the new 100 repaid its debt
            assert (
                s.scalar(
                    select(func.sum(PointsAccount.available)).where(
                        PointsAccount.member_id.in_(ids)
                    )
                )
                == 20 * n
            )
    assert counts[0] == counts[1], f"{counts}\n{log.report()}"
    assert counts[1] <= 14, log.report()
    with database.unit_of_work() as s:
        assert run_all(s, now=NOW + timedelta(hours=1)) == []
