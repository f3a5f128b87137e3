"""Model-based test of the points and growth ledger (DESIGN.md "The points ledger").

Random sequences of earn (immediate or pending), spend, cancel-spend, an order's points payment
and its returns (never cancelled, never given back beyond the payment), refund clawback, the expiry
and release jobs, adjustments, idempotent replays and clock moves from hours to years run against
the real services and against the small in-memory model below. After every step the member's
balance, every lot, growth and ``patron check`` must agree with the model.

The model is written from the rules, not from the services: lots are spent soonest-expiring first
(ties: older first, never-expiring last), a refund takes from its order's pending hold, then from
the balance (its own lots first), then as debt, and new points repay debt first.

The run is seeded: ``PATRON_MODEL_SEED=N`` replays a run, and the seed is printed with every run
(pytest shows it next to a failure). ``PATRON_MODEL_EXAMPLES`` sets the number of examples.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st
from sqlalchemy import select

from patron.auth.principal import Principal
from patron.errors import Conflict, Invalid
from patron.kit.crypto import FieldCipher
from patron.ledger import flows, growth, jobs, queries, service
from patron.ledger.check import run_check
from patron.ledger.domain import ExpiryPolicy, api_source
from patron.ledger.models import PointsLot
from patron.members import service as members
from patron.members.schemas import MemberCreate
from patron.program import service as program

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SEED = int(os.environ.get("PATRON_MODEL_SEED") or random.SystemRandom().randrange(2**32))
EXAMPLES = int(os.environ.get("PATRON_MODEL_EXAMPLES", "200"))
STEPS = 40
ORDER_TOTAL = 10_000  # fen; every order in the model has this total
ACTOR = Principal.system("model-test")
CIPHER = FieldCipher(b"d" * 32, b"i" * 32)
_phones = itertools.count()
STATS: Counter[str] = Counter()  # what the examples exercised, printed with the seed


def event(what: str) -> None:
    STATS[what] += 1


# --------------------------------------------------------------------------- the model


def expiry_of(earned_at: datetime, policy: ExpiryPolicy) -> datetime | None:
    """When points earned at ``earned_at`` stop being valid: the local midnight after the last
    valid business day."""
    day = earned_at.astimezone(TZ).date()
    if policy.kind == "never":
        return None
    if policy.kind == "days_after":
        end = day + timedelta(days=policy.n + 1)
    elif policy.kind == "end_of_month":
        months = day.year * 12 + day.month - 1 + policy.n + 1
        end = date(months // 12, months % 12 + 1, 1)
    else:
        end = date(day.year + policy.n + 1, 1, 1)
    return datetime.combine(end, time(), TZ).astimezone(UTC)


@dataclass
class Lot:
    amount: int
    remaining: int
    expires_at: datetime | None
    source: str | None


@dataclass
class Hold:
    amount: int
    earned_at: datetime
    release_at: datetime
    source: str
    status: str = "pending"


@dataclass
class Spend:
    source: str
    points: int
    takes: list[tuple[int, int]]  # (lot index, amount)
    posting_id: int = 0
    cancelled: bool = False
    #: an order's points payment: given back only by the order's returns, never cancelled
    order: bool = False
    returned: int = 0


@dataclass
class Member:
    id: int = 0
    lots: list[Lot] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    available: int = 0
    pending: int = 0
    debt: int = 0
    earned: int = 0
    redeemed: int = 0
    expired: int = 0
    growth: int = 0
    spends: list[Spend] = field(default_factory=list)
    #: source → (points earned, growth earned, fen returned, points clawed, growth clawed)
    orders: dict[str, list[int]] = field(default_factory=dict)

    def copy(self) -> Member:
        return Member(
            self.id,
            [Lot(x.amount, x.remaining, x.expires_at, x.source) for x in self.lots],
            [Hold(h.amount, h.earned_at, h.release_at, h.source, h.status) for h in self.holds],
            self.available,
            self.pending,
            self.debt,
            self.earned,
            self.redeemed,
            self.expired,
            self.growth,
            [
                Spend(
                    x.source,
                    x.points,
                    list(x.takes),
                    x.posting_id,
                    x.cancelled,
                    x.order,
                    x.returned,
                )
                for x in self.spends
            ],
            {k: list(v) for k, v in self.orders.items()},
        )

    # -- rules

    def live(self, now: datetime) -> list[int]:
        return [
            i
            for i, lot in enumerate(self.lots)
            if lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > now)
        ]

    def take(self, amount: int, now: datetime, prefer: str | None = None) -> list[tuple[int, int]]:
        def key(i: int) -> tuple[int, int, datetime, int]:
            lot = self.lots[i]
            own = 0 if prefer is not None and lot.source == prefer else 1
            far = datetime.max.replace(tzinfo=UTC)
            return (own, lot.expires_at is None, lot.expires_at or far, i)  # type: ignore[return-value]

        takes = []
        left = amount
        for i in sorted(self.live(now), key=key):
            if not left:
                break
            n = min(left, self.lots[i].remaining)
            self.lots[i].remaining -= n
            takes.append((i, n))
            left -= n
        assert left == 0, "the model took more than the live lots hold"
        return takes

    def credit(self, points: int, now: datetime, policy: ExpiryPolicy, source: str | None) -> None:
        self.lots.append(Lot(points, points, expiry_of(now, policy), source))
        self.available += points
        self.earned += points
        self.repay(now)

    def expire(self, now: datetime) -> None:
        for lot in self.lots:
            if lot.remaining and lot.expires_at is not None and lot.expires_at <= now:
                self.available -= lot.remaining
                self.expired += lot.remaining
                lot.remaining = 0

    def repay(self, now: datetime) -> None:
        if self.debt and self.available:
            live = sum(self.lots[i].remaining for i in self.live(now))
            n = min(self.debt, live)
            if n:
                self.take(n, now)
                self.available -= n
                self.debt -= n

    def settle(self, now: datetime, policy: ExpiryPolicy) -> None:
        for hold in self.holds:
            if hold.status == "pending" and hold.release_at <= now:
                hold.status = "released"
                self.lots.append(
                    Lot(hold.amount, hold.amount, expiry_of(hold.earned_at, policy), hold.source)
                )
                self.available += hold.amount
                self.pending -= hold.amount
                self.earned += hold.amount
        self.expire(now)
        self.repay(now)


# --------------------------------------------------------------------------- the run


class Run:
    """One example: two new members in the shared test database. Examples do not reset the
    database (that would dominate the run time); each checks only its own members, whose state
    the jobs running over everyone cannot change."""

    def __init__(self, database, policy: ExpiryPolicy) -> None:
        self.db = database
        self.policy = policy
        self.now = START
        self.seq = itertools.count(1)
        self.tag = uuid.uuid4().hex[:10]  # source ids stay unique across examples
        # a low daily adjustment limit, so that examples reach it
        self.limits = service.PointsSettings(expiry=policy, adjustment_daily_limit=4_000)
        # its own staff member: the daily adjustment limit counts per requester
        self.actor = Principal.system(f"model-{self.tag}")
        #: (business day, ledger) → magnitude adjusted without a second approver
        self.adjusted: Counter[tuple[date, str]] = Counter()
        with database.unit_of_work() as s:
            program.put_section(s, ACTOR, service.SECTION, self.limits, now=self.now)
            self.members = []
            for _ in range(2):
                m = members.register(
                    s,
                    ACTOR,
                    CIPHER,
                    MemberCreate(phone=f"136{next(_phones):08d}", channel="web"),
                    now=self.now,
                    tz=TZ,
                )
                self.members.append(Member(id=m.id))

    def source(self, prefix: str) -> str:
        return f"{self.tag}-{prefix}{next(self.seq)}"

    def ctx(self, session) -> service.Ctx:
        return service.Ctx(self.actor, self.now, TZ, service.get_points_settings(session))

    def step(self, i: int, model_change, db_call, expect_error: type[Exception] | None = None):
        """Apply ``model_change`` to a copy of member ``i``; run ``db_call`` in one unit of work.
        An expected error rolls both back."""
        trial = self.members[i].copy()
        ok = model_change(trial)
        if ok is False:
            expect_error = expect_error or Conflict
        if expect_error is not None and ok is False:
            with pytest.raises(expect_error), self.db.unit_of_work() as s:
                db_call(s, self.ctx(s), trial)
            return
        with self.db.unit_of_work() as s:
            db_call(s, self.ctx(s), trial)
        self.members[i] = trial

    def verify(self) -> None:
        with self.db.unit_of_work() as s:
            for m in self.members:
                b = queries.balance(s, m.id, self.now)
                stale = sum(
                    lot.remaining
                    for lot in m.lots
                    if lot.expires_at is not None and lot.expires_at <= self.now
                )
                assert m.available == sum(lot.remaining for lot in m.lots)
                assert m.available >= 0 and m.pending >= 0 and m.debt >= 0
                got = (b.available, b.pending, b.debt)
                assert got == (m.available - stale, m.pending, m.debt), "balances"
                # the checkout's one-statement read of the same figure
                assert queries.spendable(s, m.id, self.now) == b.available, "spendable"
                lifetimes = (b.lifetime_earned, b.lifetime_redeemed, b.lifetime_expired)
                assert lifetimes == (m.earned, m.redeemed, m.expired), "lifetime counters"
                lots = s.execute(
                    select(PointsLot.amount, PointsLot.remaining, PointsLot.expires_at)
                    .where(PointsLot.member_id == m.id)
                    .order_by(PointsLot.id)
                ).all()
                assert [tuple(r) for r in lots] == [
                    (x.amount, x.remaining, x.expires_at) for x in m.lots
                ], "lots"
                schedule: dict[datetime, int] = {}
                for lot in m.lots:
                    if lot.remaining and lot.expires_at is not None and lot.expires_at > self.now:
                        schedule[lot.expires_at] = schedule.get(lot.expires_at, 0) + lot.remaining
                assert b.expiry_schedule == sorted(schedule.items()), "expiry schedule"
                assert growth.balance(s, m.id)[0] == m.growth, "growth"
                assert run_check(s, now=self.now, member_id=m.id) == []


# --------------------------------------------------------------------------- operations


def op_earn(run: Run, data: st.DataObject, i: int) -> None:
    points = data.draw(st.integers(1, 5_000), label="points")
    g = data.draw(st.integers(0, 3_000), label="growth")
    days = data.draw(st.sampled_from([0, 0, 0, 7, 30]), label="pending_days")
    src = run.source("o")
    note(f"earn member={i} points={points} growth={g} pending_days={days} source={src}")

    def model(m: Member) -> None:
        m.settle(run.now, run.policy)
        m.orders[src] = [points, g, 0, 0, 0]
        m.growth += g
        if days:
            m.holds.append(Hold(points, run.now, run.now + timedelta(days=days), src))
            m.pending += points
        else:
            m.credit(points, run.now, run.policy, src)

    def call(s, ctx, m: Member) -> None:
        flows.earn(
            s,
            ctx,
            m.id,
            points=points,
            growth_value=g,
            source_type="order",
            source_id=src,
            pending_days=days,
        )

    run.step(i, model, call)


def op_replay_earn(run: Run, data: st.DataObject, i: int) -> None:
    orders = run.members[i].orders
    if not orders:
        return
    src = data.draw(st.sampled_from(sorted(orders)), label="source")
    points, g = orders[src][0], orders[src][1]
    hold = any(h.source == src for h in run.members[i].holds)
    note(f"replay earn member={i} source={src}")

    def call(s, ctx, m: Member) -> None:
        r = flows.earn(
            s,
            ctx,
            m.id,
            points=points,
            growth_value=g,
            source_type="order",
            source_id=src,
            pending_days=7 if hold else 0,
        )
        assert r.posting.replayed

    run.step(i, lambda m: m.settle(run.now, run.policy), call)


def op_spend(run: Run, data: st.DataObject, i: int, *, order: bool = False) -> None:
    m0 = run.members[i]
    live = sum(m0.lots[x].remaining for x in m0.live(run.now))
    if live and data.draw(st.integers(0, 4), label="overspend") > 0:
        points = data.draw(st.integers(1, live), label="points")
    else:  # more than the member has (mostly refused; a pending release may still cover it)
        points = data.draw(st.integers(live + 1, live + 2_000), label="points")
    src = run.source("s")
    # an API caller's redemption, or the points payment of an order
    source_type = "order" if order else api_source("mall")
    note(f"spend member={i} points={points} {source_type}")

    def model(m: Member) -> bool:
        m.settle(run.now, run.policy)
        if m.available < points:
            event("spend refused")
            return False
        event("order paid with points" if order else "spend")
        m.spends.append(Spend(src, points, m.take(points, run.now), order=order))
        m.available -= points
        m.redeemed += points
        return True

    def call(s, ctx, m: Member) -> None:
        r = flows.spend(s, ctx, m.id, points=points, source_type=source_type, source_id=src)
        m.spends[-1].posting_id = r.posting_id

    run.step(i, model, call)


def op_cancel_spend(run: Run, data: st.DataObject, i: int) -> None:
    spends = run.members[i].spends
    if not spends:
        return
    k = data.draw(st.integers(0, len(spends) - 1), label="spend")
    note(f"cancel spend member={i} spend={k} (already cancelled: {spends[k].cancelled})")

    def model(m: Member) -> bool:
        sp = m.spends[k]
        if sp.order:
            event("cancel an order's payment: refused")
            return False  # 409 spend_belongs_to_order: the order's return gives it back
        m.settle(run.now, run.policy)
        event("cancel spend (again: replay)" if sp.cancelled else "cancel spend")
        if sp.cancelled:
            return True
        if any(m.lots[x].expires_at and m.lots[x].expires_at <= run.now for x, _ in sp.takes):
            event("cancel restores expired points")
        sp.cancelled = True
        for lot_index, n in sp.takes:
            m.lots[lot_index].remaining += n
        m.available += sp.points
        m.redeemed -= sp.points
        m.expire(run.now)
        m.repay(run.now)
        return True

    def call(s, ctx, m: Member) -> None:
        flows.cancel_spend(s, ctx, m.id, m.spends[k].posting_id)

    run.step(i, model, call)


def op_order_return(run: Run, data: st.DataObject, i: int) -> None:
    """A return gives back part of an order's points payment as a new lot (orders/returns.py);
    never more than the payment, whatever was given back before."""
    paid = [k for k, sp in enumerate(run.members[i].spends) if sp.order]
    if not paid:
        return
    k = data.draw(st.sampled_from(paid), label="order spend")
    sp0 = run.members[i].spends[k]
    left = sp0.points - sp0.returned
    if left and data.draw(st.integers(0, 4), label="beyond") > 0:
        points = data.draw(st.integers(1, left), label="points back")
    else:  # more than is left of the payment: refused
        points = data.draw(st.integers(left + 1, left + 200), label="points back")
    src = f"{sp0.source}:{run.source('r')}"
    note(f"order return member={i} spend={k} points={points} (left {sp0.points - sp0.returned})")

    def model(m: Member) -> bool:
        sp = m.spends[k]
        if sp.returned + points > sp.points:
            event("order return beyond its payment: refused")
            return False  # 409 reversal_exceeds_spend
        m.settle(run.now, run.policy)
        event("order return gives points back")
        sp.returned += points
        m.credit(points, run.now, run.policy, src)
        return True

    def call(s, ctx, m: Member) -> None:
        flows.earn(
            s,
            ctx,
            m.id,
            points=points,
            source_type="order_return",
            source_id=src,
            pending_days=0,
            restores_id=m.spends[k].posting_id,
        )

    run.step(i, model, call)


def op_refund(run: Run, data: st.DataObject, i: int) -> None:
    orders = run.members[i].orders
    if not orders:
        return
    src = data.draw(st.sampled_from(sorted(orders)), label="source")
    amount = data.draw(st.integers(1, ORDER_TOTAL), label="refund_fen")
    rid = run.source("r")
    note(f"refund member={i} source={src} amount_fen={amount}")

    def model(m: Member) -> bool:
        m.settle(run.now, run.policy)
        o = m.orders[src]
        if o[2] + amount > ORDER_TOTAL:
            return False
        points = o[0] * (o[2] + amount) // ORDER_TOTAL - o[3]
        g = min(o[1] * (o[2] + amount) // ORDER_TOTAL - o[4], m.growth)
        o[2] += amount
        o[3] += points
        o[4] += max(g, 0)
        m.growth -= max(g, 0)
        hold = next((h for h in m.holds if h.source == src and h.status == "pending"), None)
        from_pending = min(points, hold.amount if hold else 0)
        if hold and from_pending:
            hold.amount -= from_pending
            hold.status = "pending" if hold.amount else "cancelled"
            m.pending -= from_pending
        from_available = min(points - from_pending, m.available)
        if from_available:
            m.take(from_available, run.now, prefer=src)
            m.available -= from_available
        m.debt += points - from_pending - from_available
        event("refund: " + ("debt" if m.debt else "pending" if from_pending else "balance"))
        return True

    def call(s, ctx, m: Member) -> None:
        flows.refund(
            s,
            ctx,
            m.id,
            source_type="order",
            source_id=src,
            refund_id=rid,
            order_total_fen=ORDER_TOTAL,
            refund_amount_fen=amount,
        )

    run.step(i, model, call, expect_error=Invalid)


def op_adjust(run: Run, data: st.DataObject, i: int) -> None:
    ledger = data.draw(st.sampled_from(["points", "growth"]), label="ledger")
    amount = data.draw(st.integers(-5_000, 5_000).filter(bool), label="amount")
    note(f"adjust member={i} {ledger} {amount:+d}")
    day = (run.now.astimezone(TZ).date(), ledger)
    assert abs(amount) <= run.limits.adjustment_approval_limit
    waits = run.adjusted[day] + abs(amount) > run.limits.adjustment_daily_limit

    def model(m: Member) -> bool:
        if waits and amount > 0:
            # an addition that waits touches nothing, not even the settling of what is due
            event("adjustment waits: daily limit")
            return True
        m.settle(run.now, run.policy)
        if waits:
            # a removal the member could not pay now is refused rather than queued
            held = m.growth if ledger == "growth" else m.available
            if held + amount < 0:
                event("waiting removal refused: over the balance")
                return False
            event("adjustment waits: daily limit")
            return True  # nothing moves until a second person approves
        event("adjustment applied")
        if ledger == "growth":
            if m.growth + amount < 0:
                return False
            m.growth += amount
        elif amount > 0:
            m.credit(amount, run.now, run.policy, None)
        else:
            if m.available < -amount:
                return False
            m.take(-amount, run.now)
            m.available += amount
        return True

    def call(s, ctx, m: Member) -> None:
        row = flows.request_adjustment(s, ctx, m.id, ledger=ledger, amount=amount, reason="model")
        assert row.status == ("pending_approval" if waits else "applied")
        if not waits:
            run.adjusted[day] += abs(amount)

    run.step(i, model, call)


def job_expire(run: Run) -> None:
    note("job expire")
    jobs.run_expire(run.db, run.now, batch_members=1)
    for m in run.members:
        m.expire(run.now)


def job_release(run: Run) -> None:
    note("job release")
    jobs.run_release(run.db, run.now, TZ, batch_members=1)
    for m in run.members:
        if any(h.status == "pending" and h.release_at <= run.now for h in m.holds):
            m.settle(run.now, run.policy)


CLOCK = st.one_of(
    st.integers(1, 48).map(lambda h: timedelta(hours=h)),
    st.integers(1, 60).map(lambda d: timedelta(days=d)),
    st.integers(60, 400).map(lambda d: timedelta(days=d)),
    st.integers(1, 2).map(lambda y: timedelta(days=365 * y)),
)
POLICIES = st.sampled_from(
    [
        ExpiryPolicy(kind="days_after", n=30),
        ExpiryPolicy(kind="days_after", n=365),
        ExpiryPolicy(kind="end_of_month", n=0),
        ExpiryPolicy(kind="end_of_month", n=12),
        ExpiryPolicy(kind="end_of_year", n=1),
        ExpiryPolicy(kind="never"),
    ]
)


def op_order_spend(run: Run, data: st.DataObject, i: int) -> None:
    op_spend(run, data, i, order=True)


OPS = {
    "earn": op_earn,
    "replay_earn": op_replay_earn,
    "spend": op_spend,
    "order_spend": op_order_spend,
    "order_return": op_order_return,
    "cancel_spend": op_cancel_spend,
    "refund": op_refund,
    "adjust": op_adjust,
}
CHOICES = [
    *OPS,
    *("earn", "spend", "spend", "order_spend", "cancel_spend", "cancel_spend"),
    *("order_return", "expire", "release"),
    *("clock", "clock"),
]


# 200 examples of up to 40 steps take minutes, longer on PostgreSQL while another test process
# shares the two cores: a generous limit of its own (the suite's 600 s is for ordinary tests).
@pytest.mark.timeout(2400)
def test_ledger_matches_model(database) -> None:
    print(f"ledger model seed: {SEED} (PATRON_MODEL_SEED={SEED} replays this run)")  # noqa: T201

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(policy=POLICIES, data=st.data())
    def run_model(policy: ExpiryPolicy, data: st.DataObject) -> None:
        note(f"expiry policy {policy}")
        run = Run(database, policy)
        steps = data.draw(st.integers(5, STEPS), label="steps")
        for _ in range(steps):
            what = data.draw(st.sampled_from(CHOICES), label="op")
            if what == "clock":
                delta = data.draw(CLOCK, label="clock")
                run.now += delta
                note(f"clock +{delta} → {run.now.isoformat()}")
            elif what == "expire":
                job_expire(run)
            elif what == "release":
                job_release(run)
            else:
                OPS[what](run, data, data.draw(st.integers(0, 1), label="member"))
            run.verify()  # includes `patron check` of this example's members

    run_model()
    print("exercised:", dict(sorted(STATS.items())))  # noqa: T201
