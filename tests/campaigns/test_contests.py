"""UGC contests: entries within the window, moderation (audited), winners rewarded once; the
statements of each write; `patron check` sees a winner changed behind the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from patron.audit.models import AuditRecord
from patron.campaigns import contests
from patron.campaigns.contests import ContestIn
from patron.campaigns.models import ContestEntry
from patron.checks import run_all
from patron.coupons.models import Coupon
from patron.errors import Conflict, Invalid
from patron.ledger import queries as ledger_queries
from tests.coupons.test_coupons_api import THRESHOLD, put_template
from tests.portal.helpers import ctx, new_member
from tests.statements import count_statements

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
END = START + timedelta(days=7)
#: the statements of each write (SQLite counts its BEGIN IMMEDIATE). Submit: settings, the
#: contest, the member's entry, the INSERT, its event and the webhook subscriptions. Moderate:
#: the guarded UPDATE, its event and the subscriptions, its audit record, the entry read back.
#: Win: the contest's lock, its entries, the winners so far, then per winner the guarded UPDATE,
#: the ledger's earning (lock, lots, posting, event, audit), the reward's columns and the audit
#: record, and one INSERT of the winners' events. Each event costs its INSERT, and the first
#: event of a transaction the read of the webhook subscriptions (submit and moderate were 5 / 4
#: before they emitted, win 21 / 20).
BUDGET = {
    "sqlite": {"submit": 7, "moderate": 7, "win": 22},
    "postgresql": {"submit": 6, "moderate": 6, "win": 21},
}


def _contest(database, clock, **kw):
    with database.unit_of_work() as s:
        data = ContestIn(
            name="晒单大赛",
            description="Show us your look",
            starts_at=START,
            ends_at=END,
            reward_points=kw.get("points", 500),
            reward_coupon=kw.get("coupon"),
            max_winners=kw.get("winners", 2),
        )
        contests.put_contest(s, ctx(s, clock.now()), "look", data)


def _members(database, clock, n):
    with database.unit_of_work() as s:
        return [new_member(s, clock.now(), phone=f"1390000{i:04d}").id for i in range(n)]


def _submit(database, clock, mid, text="my look"):
    with database.unit_of_work() as s:
        return contests.submit(s, ctx(s, clock.now()), "look", mid, text).id


def _moderate(database, clock, entry_id, approve, note=""):
    with database.unit_of_work() as s:
        contests.moderate(s, ctx(s, clock.now()), entry_id, approve=approve, note=note)


def _win(database, clock, ids):
    with database.unit_of_work() as s:
        return contests.choose_winners(s, ctx(s, clock.now()), "look", ids)


def test_a_contest_from_entries_to_winners(client, shop, database, clock):
    put_template(client, shop, "PRIZE", THRESHOLD)
    clock.set(START - timedelta(hours=1))
    _contest(database, clock, coupon="PRIZE")
    a, b, c = _members(database, clock, 3)
    with pytest.raises(Conflict) as early:
        _submit(database, clock, a)
    assert early.value.code == "contest_not_open"
    clock.set(START + timedelta(days=1))
    with pytest.raises(Invalid):
        _submit(database, clock, a, text="  ")
    ea, eb, ec = (_submit(database, clock, m) for m in (a, b, c))
    with pytest.raises(Conflict) as twice:
        _submit(database, clock, a)
    assert twice.value.code == "entry_exists"
    _moderate(database, clock, ea, True)
    _moderate(database, clock, eb, True)
    _moderate(database, clock, ec, False, note="not a product photo")
    with pytest.raises(Conflict) as decided:
        _moderate(database, clock, ec, True)
    assert decided.value.code == "entry_already_moderated"
    with pytest.raises(Conflict) as still_open:
        _win(database, clock, [ea])
    assert still_open.value.code == "contest_still_open"
    clock.set(END + timedelta(hours=1))
    with pytest.raises(Invalid) as rejected:
        _win(database, clock, [ea, ec])
    assert rejected.value.code == "entry_not_approved"
    assert _win(database, clock, [ea]).chosen == [ea]
    # choosing again rewards nobody twice; a third place does not exist
    again = _win(database, clock, [ea, eb])
    assert (again.chosen, again.already) == ([eb], [ea])
    with database.unit_of_work() as s:
        assert ledger_queries.balance(s, a, clock.now()).available == 500
        assert ledger_queries.balance(s, b, clock.now()).available == 500
        assert s.scalar(select(func.count()).select_from(Coupon)) == 2
        actions = s.scalars(
            select(AuditRecord.action).where(AuditRecord.entity_type == "ugc_entry")
        ).all()
        assert sorted(actions) == sorted(
            ["ugc_entry.approve"] * 2 + ["ugc_entry.reject"] + ["ugc_entry.win"] * 2
        )
        note = s.scalar(select(ContestEntry.note).where(ContestEntry.id == ec))
        assert note == "not a product photo"
        assert [
            e.id for e, _ in contests.entries(s, contests.get_contest(s, "look"), "approved")
        ] == [
            ea,
            eb,
        ]
        assert run_all(s) == []


def test_no_more_winners_than_places(database, clock):
    clock.set(START)
    _contest(database, clock, winners=1)
    ids = []
    for mid in _members(database, clock, 2):
        ids.append(_submit(database, clock, mid))
        _moderate(database, clock, ids[-1], True)
    clock.set(END)
    with pytest.raises(Conflict) as full:
        _win(database, clock, ids)
    assert full.value.code == "too_many_winners"
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).where(ContestEntry.winner)) == 0


def test_statements_of_each_write(database, clock):
    clock.set(START)
    _contest(database, clock)
    warm, mid = _members(database, clock, 2)
    _moderate(database, clock, _submit(database, clock, warm), True)
    with count_statements(database.engine) as log:
        entry = _submit(database, clock, mid)
    assert log.count <= BUDGET[database.dialect]["submit"], log.report()
    with count_statements(database.engine) as log:
        _moderate(database, clock, entry, True)
    assert log.count <= BUDGET[database.dialect]["moderate"], log.report()
    clock.set(END)
    _win(database, clock, [entry - 1])
    with count_statements(database.engine) as log:
        _win(database, clock, [entry])
    assert log.count <= BUDGET[database.dialect]["win"], log.report()


def test_check_reports_a_winner_changed_behind_the_service(database, clock):
    clock.set(START)
    _contest(database, clock)
    mid, other = _members(database, clock, 2)
    entry = _submit(database, clock, mid)
    pending = _submit(database, clock, other)
    _moderate(database, clock, entry, True)
    clock.set(END)
    _win(database, clock, [entry])
    with database.unit_of_work() as s:
        assert run_all(s) == []
        s.execute(update(ContestEntry).where(ContestEntry.id == pending).values(winner=True))
    with database.unit_of_work() as s:
        found = run_all(s)
    assert any(f"Entry {pending} of member {other}" in v for v in found), found
