"""Journeys on SQLite and PostgreSQL: triggers enter members once per occasion, steps run in
order and are recorded, a rerun of a day does nothing twice, changes apply to new entrants,
a paused journey stops, and bad definitions are refused at save time."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from patron.coupons.models import Coupon
from patron.journeys import runner
from patron.journeys.models import Journey, JourneyEntry, JourneyPathStep
from patron.ledger.models import PointsAccount, PointsPosting
from patron.members.models import Member, MemberTag, Tag
from patron.messaging.models import Message
from tests.statements import count_statements

TZ = ZoneInfo("Asia/Shanghai")
COUPON = {
    "name": "¥20 off",
    "rules": {"kind": "amount_off", "amount_fen": 2000, "valid_days": 30},
}


@pytest.fixture
def setup(client, auth_headers):
    h = auth_headers("admin")
    for code, body in (("welcome", "{{name}}, welcome!"), ("bday", "Happy birthday {{name}}")):
        r = client.put(
            f"/api/v1/message-templates/{code}",
            json={"name": code, "texts": {"zh-CN": {"subject": "", "body": body}}},
            headers=h,
        )
        assert r.status_code == 200, r.text
    r = client.post(
        "/api/v1/segments",
        json={
            "code": "shanghai",
            "name": "Shanghai",
            "rule": {"op": "and", "rules": [{"field": "city", "values": ["Shanghai"]}]},
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = client.put("/api/v1/coupon-templates/WELCOME20", json=COUPON, headers=h)
    assert r.status_code in (200, 201), r.text
    return h


def _journey(client, h, code="welcome-j", trigger="registration", steps=None, **kw) -> Any:
    body = {
        "code": code,
        "name": code,
        "trigger": trigger,
        "steps": steps
        or [
            {"kind": "send", "template": "welcome"},
            {"kind": "wait", "days": 2},
            {"kind": "condition", "segment": "shanghai", "else": "exit"},
            {"kind": "points", "points": 100},
            {"kind": "coupon", "template": "WELCOME20"},
            {"kind": "tag", "tag": "welcomed"},
        ],
        **kw,
    }
    return client.post("/api/v1/journeys", json=body, headers=h)


def _run(database, clock) -> runner.RunReport:
    with database.unit_of_work() as s:
        return runner.run(s, clock.now(), TZ)


def _count(database, model, *where) -> int:
    with database.unit_of_work() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_welcome_journey_walks_each_member_once_and_records_the_path(
    database, clock, client, setup, make_member, auth_headers
):
    h = setup
    assert _journey(client, h).status_code == 201
    sh = make_member(city="Shanghai")
    bj = make_member(city="Beijing")
    first = _run(database, clock)
    assert (first.entered, first.messages) == (2, 2)
    again = _run(database, clock)  # a rerun of the day
    assert (again.entered, again.messages, again.steps) == (0, 0, 0)
    assert _count(database, Message) == 2

    clock.advance(timedelta(days=2))
    later = _run(database, clock)
    assert later.points == 100 and later.coupons == 1 and later.tagged == 1
    assert _run(database, clock).steps == 0
    with database.unit_of_work() as s:
        ids = dict(s.execute(select(Member.member_no, Member.id)).all())
        balance = s.scalar(
            select(PointsAccount.available).where(PointsAccount.member_id == ids[sh])
        )
        assert balance == 100
        assert s.scalar(select(func.count()).select_from(Coupon)) == 1
        tagged = s.scalars(select(MemberTag.member_id).join(Tag, Tag.id == MemberTag.tag_id)).all()
        assert tagged == [ids[sh]]
        statuses = dict(s.execute(select(JourneyEntry.member_id, JourneyEntry.status)).all())
        assert statuses == {ids[sh]: "done", ids[bj]: "exited"}

    h = auth_headers("admin", fresh=True)
    paths = {no: client.get(f"/api/v1/members/{no}/journeys", headers=h).json() for no in (sh, bj)}
    assert [(p["kind"], p["outcome"]) for p in paths[sh][0]["steps"]] == [
        ("send", "queued"),
        ("wait", "waited"),
        ("condition", "matched"),
        ("points", "earned"),
        ("coupon", "issued"),
        ("tag", "tagged"),
    ]
    assert [p["outcome"] for p in paths[bj][0]["steps"]] == ["queued", "waited", "not_matched"]


def test_birthday_rerun_of_the_day_sends_nothing_twice(database, clock, client, setup, make_member):
    h = setup
    r = _journey(client, h, "bday", "birthday", [{"kind": "send", "template": "bday"}])
    assert r.status_code == 201, r.text
    today = clock.now().astimezone(TZ).date()
    for i in range(3):
        make_member(birthday=date(1990 + i, today.month, today.day).isoformat())
    make_member(birthday=date(1990, today.month, today.day % 27 + 1).isoformat())
    for _ in range(3):
        _run(database, clock)
    assert _count(database, Message, Message.source_code == "bday") == 3
    # Next year is another occasion.
    clock.advance(timedelta(days=365))
    _run(database, clock)
    assert _count(database, Message, Message.source_code == "bday") == 6


def test_a_change_applies_to_new_entrants_only_and_pause_stops_everything(
    database, clock, client, setup, make_member, auth_headers
):
    h = setup
    _journey(
        client,
        h,
        steps=[{"kind": "wait", "hours": 1}, {"kind": "send", "template": "welcome"}],
    )
    make_member()
    _run(database, clock)
    r = client.patch(
        "/api/v1/journeys/welcome-j",
        json={"steps": [{"kind": "wait", "hours": 1}, {"kind": "tag", "tag": "v2"}]},
        headers=h,
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    make_member()
    _run(database, clock)
    clock.advance(timedelta(hours=1))
    h = auth_headers("admin", fresh=True)
    assert client.post("/api/v1/journeys/welcome-j/pause", headers=h).status_code == 200
    paused = _run(database, clock)
    assert (paused.steps, paused.entered) == (0, 0)
    make_member()
    assert client.post("/api/v1/journeys/welcome-j/resume", headers=h).status_code == 200
    resumed = _run(database, clock)
    assert resumed.messages == 1 and resumed.tagged == 1  # v1 member sent, v2 member tagged
    assert resumed.entered == 1
    with database.unit_of_work() as s:
        versions = sorted(s.scalars(select(JourneyEntry.version)))
    assert versions == [1, 2, 2]


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        (
            [
                {"kind": "send", "template": "welcome"},
                {"kind": "condition", "segment": "shanghai", "else": 1},
            ],
            "journey_invalid",
        ),
        ([{"kind": "condition", "segment": "shanghai", "else": 1}], "journey_invalid"),
        ([{"kind": "send", "template": "nope"}], "journey_reference_unknown"),
        ([{"kind": "condition", "segment": "nope"}], "journey_reference_unknown"),
        ([{"kind": "wait"}], "journey_invalid"),
        ([{"kind": "points", "points": -5}], "journey_invalid"),
        ([{"kind": "jump"}], "journey_invalid"),
    ],
)
def test_bad_journeys_are_refused_at_save(client, setup, steps, code):
    r = _journey(client, setup, steps=steps)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code
    assert client.get("/api/v1/journeys", headers=setup).json() == []


#: the journey's reads and writes per chunk, and the ledger's batch earning (the replay keys,
#: the accounts created and locked, due holds and lots, postings, lots, balances, events, audit)
POINTS_STEP_BUDGET = 22


def test_points_step_statement_budget(database, clock, client, setup, make_member):
    """The points step costs the same statements for 5 members as for 50."""
    _journey(client, setup, steps=[{"kind": "points", "points": 10}])
    counts = []
    for n in (5, 50):
        for _ in range(n):
            make_member()
        with database.unit_of_work() as s:
            runner.enter(s, s.scalars(select(Journey)).one(), clock.now(), TZ)
        with count_statements(database.engine) as log, database.unit_of_work() as s:
            report = runner.run(s, clock.now(), TZ)
        assert report.points == 10 * n
        counts.append(log.count)
    assert counts[0] == counts[1], f"{counts}\n{log.report()}"
    assert counts[1] <= POINTS_STEP_BUDGET, log.report()
    assert _count(database, PointsPosting, PointsPosting.source_type == "journey") == 55
    assert _count(database, JourneyPathStep) == 55


def test_patron_check_sees_journey_points_and_messages_changed_behind_the_services(
    database, clock, client, setup, make_member
):
    from sqlalchemy import update

    from patron.checks import run_all
    from patron.messaging.models import Message as Msg

    _journey(
        client,
        setup,
        steps=[{"kind": "points", "points": 10}, {"kind": "send", "template": "welcome"}],
    )
    make_member(consents={"sms": True})
    _run(database, clock)
    with database.unit_of_work() as s:
        # A sent message, as the sender leaves it, is clean.
        from patron.members.models import ConsentEvent

        event = s.scalar(select(ConsentEvent.id).where(ConsentEvent.channel == "sms"))
        s.execute(
            update(Msg).values(
                status="sent", channel="sms", sent_at=clock.now(), consent_event_id=event
            )
        )
        assert run_all(s) == []
        s.execute(update(JourneyPathStep).where(JourneyPathStep.kind == "points").values(ref="0"))
        s.execute(update(Msg).values(consent_event_id=None))
        found = run_all(s)
    assert any("made by a journey no path records" in v for v in found), found
    assert any("records points at step 1 with no such posting" in v for v in found), found
    assert any("without a recorded consent" in v for v in found), found
