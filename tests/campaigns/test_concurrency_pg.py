"""A campaign's budget under real concurrency on PostgreSQL: never past its cap."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from patron.auth.principal import Principal
from patron.campaigns import actions, check
from patron.campaigns import service as campaigns
from patron.campaigns.domain import OneOff
from patron.campaigns.models import CampaignActionGrant
from patron.campaigns.schemas import ActionIn, CampaignIn
from tests.portal.helpers import ctx, new_member

pytestmark = pytest.mark.postgres_only
ACTOR = Principal.system("tests")
THREADS = 20


def test_twenty_members_at_once_never_pass_the_campaign_budget(pg_database, clock):
    now = clock.now()
    with pg_database.unit_of_work() as s:
        campaigns.create(
            s,
            ACTOR,
            CampaignIn(
                code="spring",
                name="Spring",
                schedule=OneOff(start=now.date(), end=now.date()),
                budget_points=100,  # cap 95: nine rewards of 10
            ),
            now=now,
        )
        campaigns.set_status(s, ACTOR, "spring", "active", now=now)
        actions.create_action(
            s,
            ACTOR,
            ActionIn(code="share", kind="share", name="Share", points=10, campaign="spring"),
            now=now,
        )
        ids = [new_member(s, now, phone=f"1390000{i:04d}").id for i in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = [""] * THREADS

    def go(i: int) -> None:
        barrier.wait()
        try:
            with pg_database.unit_of_work() as s:
                actions.record_action(s, ctx(s, clock.now()), "share", ids[i], "x")
            outcomes[i] = "ok"
        except Exception as exc:
            outcomes[i] = getattr(exc, "code", type(exc).__name__)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 9, outcomes
    assert outcomes.count("campaign_budget_exhausted") == THREADS - 9, outcomes
    with pg_database.unit_of_work() as s:
        assert s.scalar(select(func.sum(CampaignActionGrant.points))) == 90
        c = campaigns.get(s, "spring")
        assert campaigns.points_used(s, c.id) == 90
        assert check.run_check(s) == []


def test_ten_referees_qualifying_at_once_never_pass_the_referrer_cap(pg_database, clock):
    from patron.campaigns import referrals
    from patron.campaigns.domain import REFERRAL_SECTION, ReferralSettings
    from patron.campaigns.models import Referral
    from patron.members.models import Member
    from patron.orders.models import Order
    from patron.program import service as program
    from tests.portal.helpers import CIPHER

    now = clock.now()
    n = 10
    with pg_database.unit_of_work() as s:
        program.put_section(
            s, ACTOR, REFERRAL_SECTION, ReferralSettings(max_per_referrer=3), now=now
        )
        referrer = new_member(s, now, phone="13800000000")
        referees = [new_member(s, now, phone=f"13{i}00000001") for i in range(n)]
        for m in referees:
            s.execute(
                Member.__table__.update()
                .where(Member.__table__.c.id == m.id)
                .values(referrer_member_id=referrer.id)
            )
            s.add(
                Order(
                    member_id=m.id,
                    source="pos",
                    external_id=f"O-{m.id}",
                    channel="store",
                    ordered_at=now,
                    business_date=now.date(),
                    list_total_fen=100,
                    discount_fen=0,
                    total_fen=100,
                    paid_fen=100,
                    rules_trace={},
                    content_hash="x",
                    created_at=now,
                )
            )
        s.flush()
        referrals.discover(s, ctx(s, now), CIPHER)
        ids = list(s.scalars(select(Referral.id).order_by(Referral.id)))
    assert len(ids) == n
    barrier = threading.Barrier(n)
    outcomes: list[str] = [""] * n

    def go(i: int) -> None:
        barrier.wait()
        with pg_database.unit_of_work() as s:
            outcomes[i] = referrals.qualify(s, ctx(s, clock.now()), ids[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["rewarded"] * 3, outcomes
    with pg_database.unit_of_work() as s:
        assert check.run_check(s) == []


def test_thirty_members_registering_at_once_never_pass_the_capacity(pg_database, clock):
    from datetime import timedelta

    from patron.campaigns import member_events
    from patron.campaigns.models import EventRegistration

    now = clock.now()
    n = 30
    with pg_database.unit_of_work() as s:
        member_events.create_event(
            s,
            ACTOR,
            member_events.EventIn(
                code="trip", name="Trip", starts_at=now + timedelta(days=3), capacity=10
            ),
            now=now,
        )
        ids = [new_member(s, now, phone=f"1390000{i:04d}").id for i in range(n)]
    barrier = threading.Barrier(n)
    outcomes: list[str] = [""] * n

    def go(i: int) -> None:
        barrier.wait()
        with pg_database.unit_of_work() as s:
            outcomes[i] = member_events.register(
                s, ctx(s, clock.now()), "trip", ids[i]
            ).registration.status

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("registered") == 10 and outcomes.count("waitlisted") == 20, outcomes
    # ten cancellations at once: exactly ten promotions, still never past the capacity
    placed = [ids[i] for i in range(n) if outcomes[i] == "registered"]
    barrier = threading.Barrier(10)

    def leave(i: int) -> None:
        barrier.wait()
        with pg_database.unit_of_work() as s:
            member_events.cancel(s, ctx(s, clock.now()), "trip", placed[i])

    threads = [threading.Thread(target=leave, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pg_database.unit_of_work() as s:
        held = s.scalar(
            select(func.count())
            .select_from(EventRegistration)
            .where(EventRegistration.status == "registered")
        )
        assert held == 10
        assert check.run_check(s) == []
