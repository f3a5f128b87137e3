"""Every change of the points ledger, the growth ledger and the tier emits an event in the event
log, whether or not an endpoint subscribes — including the changes made by jobs."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, select

from patron.auth.principal import Principal
from patron.checkin import service as checkin
from patron.kit.crypto import FieldCipher
from patron.ledger import flows, jobs, service
from patron.ledger.domain import api_source
from patron.ledger.models import PointsPosting
from patron.members import service as members
from patron.members.schemas import MemberCreate
from patron.tiers import service as tiers
from patron.tiers.jobs import run_tiers
from patron.webhooks.models import WebhookEvent

TZ = ZoneInfo("Asia/Shanghai")
ACTOR = Principal.system("events-test")
APPROVER = Principal.system("events-approver")
CIPHER = FieldCipher(b"d" * 32, b"i" * 32)


def _register(database, now, n):
    with database.unit_of_work() as s:
        m = members.register(
            s, ACTOR, CIPHER, MemberCreate(phone=f"1370000{n:04d}", channel="web"), now=now, tz=TZ
        )
        return m.id, m.member_no


def _ctx(s, at, actor=ACTOR):
    return service.Ctx(actor, at, TZ, service.get_points_settings(s))


def _events(database):
    with database.unit_of_work() as s:
        return [
            (e.event_type, e.member_no, e.payload)
            for e in s.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
        ]


def test_each_kind_of_ledger_change_has_its_event(database, clock):
    t0 = clock.now()
    a, a_no = _register(database, t0, 1)
    b, b_no = _register(database, t0, 2)
    with database.unit_of_work() as s:
        ctx = _ctx(s, t0)
        flows.earn(s, ctx, a, points=1_000, growth_value=1_200, source_type="t", source_id="e1")
        # an API caller's redemption: the kind the cancel endpoint may give back
        spent = flows.spend(s, ctx, a, points=300, source_type=api_source("mall"), source_id="m1")
        flows.cancel_spend(s, ctx, a, spent.posting_id)
        flows.earn(s, ctx, a, points=200, source_type="t", source_id="held", pending_days=7)
        big = flows.request_adjustment(
            s, ctx, a, ledger="points", amount=50_000, reason="lost receipt"
        )
        big_id = big.id
    assert not [e for e in _events(database) if e[0] == "points.adjusted"]  # not yet approved
    with database.unit_of_work() as s:
        flows.decide_adjustment(s, _ctx(s, t0, APPROVER), big_id, approve=True)
        ctx = _ctx(s, t0)
        flows.request_adjustment(s, ctx, a, ledger="growth", amount=-5, reason="typo")
        tiers.override_by_hand(
            s, ctx, b, b_no, tier_code="gold", reason="VIP guest", until=t0 + timedelta(days=30)
        )
        # B: earn, spend it all, then a full refund claws back into debt; the next earning
        # repays the debt first.
        flows.earn(s, ctx, b, points=100, growth_value=10, source_type="order", source_id="o1")
        flows.spend(s, ctx, b, points=100, source_type="mall", source_id="m2")
        flows.refund(
            s,
            ctx,
            b,
            source_type="order",
            source_id="o1",
            refund_id="r1",
            order_total_fen=10_000,
            refund_amount_fen=10_000,
        )
        flows.earn(s, ctx, b, points=500, source_type="t", source_id="e2")
        checkin.check_in(s, ctx, b)
    assert jobs.run_release(database, t0 + timedelta(days=8), TZ) == 1
    expired = jobs.run_expire(database, t0 + timedelta(days=800))
    assert expired.members == 2
    for step in (400, 800, 1200):  # evaluation, grace, downgrade
        run_tiers(database, t0 + timedelta(days=step), TZ)

    log = _events(database)
    seen = {(t, no, p.get("kind"), p.get("cause")) for t, no, p in log}
    expected = {
        ("points.earned", a_no, "earn", None),
        ("points.spent", a_no, "redeem", None),
        ("points.spend_cancelled", a_no, "reversal", None),
        ("points.released", a_no, "release", None),
        ("points.adjusted", a_no, "adjust", None),
        ("points.expired", a_no, "expire", None),
        ("points.expired", b_no, "expire", None),
        ("points.clawed_back", b_no, "clawback", None),
        ("points.debt_repaid", b_no, "repay", None),
        ("growth.earned", a_no, "earn", None),
        ("growth.adjusted", a_no, "adjust", None),
        ("growth.clawed_back", b_no, "clawback", None),
        ("tier.changed", a_no, None, "upgrade"),
        ("tier.changed", b_no, None, "override"),
        ("tier.changed", a_no, None, "downgrade"),
    }
    assert expected <= seen, expected - seen
    checkins = [p for t, no, p in log if p.get("source_type") == "checkin"]
    assert [(c["kind"], c["points"]) for c in checkins] == [("earn", 5)]
    # One event per posting, and its deltas are the posting's.
    with database.unit_of_work() as s:
        postings = {
            p.id: (p.member_id, p.kind, p.available_delta, p.pending_delta, p.debt_delta)
            for p in s.scalars(select(PointsPosting))
        }
    posted = {
        p["posting_id"]: (p["kind"], p["available_delta"], p["pending_delta"], p["debt_delta"])
        for t, _, p in log
        if t.startswith("points.")
    }
    assert posted == {pid: row[1:] for pid, row in postings.items()}
    debt = next(p for t, _, p in log if t == "points.clawed_back")
    assert (debt["available_delta"], debt["debt_delta"]) == (0, 100)
    pending = next(p for t, _, p in log if t == "points.earned" and p["source_id"] == "held")
    assert (pending["pending_delta"], pending["points"]) == (200, 200)


def test_the_expiry_job_emits_set_based(database, clock):
    """The number of statements of an expiry batch does not grow with its members."""
    t0 = clock.now()

    def run(n_members, offset):
        ids = [_register(database, t0, offset + i)[0] for i in range(n_members)]
        with database.unit_of_work() as s:
            for mid in ids:
                flows.earn(s, _ctx(s, t0), mid, points=10, source_type="t", source_id=f"x{mid}")
        statements = []

        def spy(*args):
            statements.append(args[2])

        event.listen(database.engine, "before_cursor_execute", spy)
        try:
            report = jobs.run_expire(database, t0 + timedelta(days=800 + offset))
        finally:
            event.remove(database.engine, "before_cursor_execute", spy)
        assert report.members == n_members
        return len(statements)

    assert run(2, 0) == run(12, 100)
    expired = [e for e in _events(database) if e[0] == "points.expired"]
    assert len(expired) == 14
    assert all(p["available_delta"] == -10 and no for _, no, p in expired)
