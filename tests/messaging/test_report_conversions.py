"""The delivery report's conversions (SQLite and PostgreSQL), counted by one grouped query,
equal a brute-force count over random messages and orders: a member converts for a source
when one of the source's sent messages is followed by an order within the attribution
window (both ends included, to the microsecond), once per member and source."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from patron.members.models import Member
from patron.messaging import service as messaging
from patron.messaging.models import Message
from patron.orders.models import Order
from tests.statements import count_statements

SOURCES = [("campaign", "spring"), ("journey", "welcome"), ("batch", "b1")]
STATUSES = ["sent", "delivered", "sent", "delivered", "failed", "queued", "dead"]


def _message(mid: int, kind: str, code: str, status: str, at: Any, n: int) -> Message:
    return Message(
        member_id=mid, template_code="t", source_kind=kind, source_code=code,
        dedupe_key=f"k{n}", locale="zh-CN", subject="", body="hi", params={}, status=status,
        channel="sms", attempts=1, deferrals=0, next_attempt_at=at, links=[], clicks=0,
        created_at=at, sent_at=None if status == "queued" else at,
    )  # fmt: skip


def _order(mid: int, at: Any, n: int) -> Order:
    return Order(
        member_id=mid, source="pos", external_id=f"o{n}", channel="store", ordered_at=at,
        business_date=at.date(), list_total_fen=100, discount_fen=0, total_fen=100,
        paid_fen=100, rules_trace={}, content_hash="x", created_at=at,
    )  # fmt: skip


def test_conversions_equal_a_brute_force_count(make_member, database, clock):
    for _ in range(6):
        make_member()
    edges = [make_member() for _ in range(4)]
    with database.unit_of_work() as s:
        edge_ids = [s.scalar(select(Member.id).where(Member.member_no == no)) for no in edges]
        mids = [m for m in s.scalars(select(Member.id)) if m not in edge_ids]
        window = timedelta(days=messaging.get_settings(s).attribution_days)
    rng = random.Random(20261203)
    start = clock.now()
    messages: list[tuple[int, str, str, str, Any]] = []
    orders: list[tuple[int, Any]] = []
    for _ in range(60):
        kind, code = rng.choice(SOURCES)
        at = start + timedelta(days=rng.randint(0, 40), microseconds=rng.randint(0, 10**6 - 1))
        messages.append((rng.choice(mids), kind, code, rng.choice(STATUSES), at))
    for mid, _k, _c, _st, at in messages[:20]:  # orders at the edges of the window
        edge = rng.choice([timedelta(0), window, window + timedelta(microseconds=1),
                           -timedelta(microseconds=1)])  # fmt: skip
        orders.append((mid, at + edge))
    # one message each, one order each: at the send, at the end of the window, a microsecond
    # after it, a microsecond before the send — the first two convert
    sent_at = start + timedelta(days=3, microseconds=250)
    for mid, edge in zip(
        edge_ids,
        (timedelta(0), window, window + timedelta(microseconds=1), -timedelta(microseconds=1)),
        strict=True,
    ):
        messages.append((mid, "journey", "edges", "sent", sent_at))
        orders.append((mid, sent_at + edge))
    for _ in range(40):
        at = start + timedelta(days=rng.randint(0, 60), seconds=rng.randint(0, 86_399))
        orders.append((rng.choice(mids), at + timedelta(microseconds=rng.randint(0, 999_999))))
    with database.unit_of_work() as s:
        s.add_all(_message(*m, n) for n, m in enumerate(messages))
        s.add_all(_order(mid, at, n) for n, (mid, at) in enumerate(orders))

    expected: dict[tuple[str, str], int] = {}
    for kind, code in [*SOURCES, ("journey", "edges")]:
        converted = {
            mid
            for mid, k, c, status, sent in messages
            if (k, c) == (kind, code)
            and status in ("sent", "delivered")
            and any(m == mid and sent <= o <= sent + window for m, o in orders)
        }
        expected[(kind, code)] = len(converted)
    assert sum(expected.values()) > 3  # the random data holds conversions to count
    assert expected[("journey", "edges")] == 2

    with database.unit_of_work() as s:
        messaging.get_settings(s)  # read once before counting
        with count_statements(database.engine) as log:
            got = {(r.kind, r.code): r.conversions for r in messaging.report(s)}
    assert got == {k: v for k, v in expected.items() if k in got}
    assert set(got) == {(k, c) for _m, k, c, _s, _a in messages}
    assert log.count <= 3, log.report()  # the counts and the conversions (settings cached)
