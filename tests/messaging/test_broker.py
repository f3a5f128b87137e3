"""Sending through a Redis stream (messaging/broker.py) against the machine's Redis, on SQLite
and PostgreSQL: each claim sent once, a dead consumer's entries taken over, superseded claims
dropped, consent and quiet hours checked again at send time, retries through the same record.

Redis at PATRON_TEST_REDIS_URL (default redis://127.0.0.1:6379/0); each test uses a stream of
its own. With PATRON_REQUIRE_REDIS=1 an unreachable Redis fails the run instead of skipping."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select

from patron.config import Settings
from patron.members.models import Member
from patron.messaging import broker, service
from patron.messaging.channels import ChannelError, Outgoing
from patron.messaging.delivery import LEASE, drain
from patron.messaging.models import Message

TZ = ZoneInfo("Asia/Shanghai")
REDIS_URL = os.environ.get("PATRON_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Recorder:
    """A channel that keeps what it was given; ``fail`` makes every send a retryable error."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Outgoing] = []
        self.fail = fail

    def send_batch(self, outs: list[Outgoing]) -> list[Any]:
        if self.fail:
            return [ChannelError("provider_down", retryable=True) for _ in outs]
        self.sent.extend(outs)
        return [f"p-{o.message_id}" for o in outs]


@pytest.fixture
def queue() -> Iterator[broker.RedisQueue]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("PATRON_REQUIRE_REDIS") == "1":
            pytest.fail(f"PATRON_REQUIRE_REDIS=1 but Redis at {REDIS_URL} does not answer: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    q = broker.RedisQueue(client, stream=f"patron-test:{uuid.uuid4().hex}")
    yield q
    client.delete(q.stream)
    client.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def sender(make_sender: Any, recorder: Recorder) -> Any:
    return make_sender({"email": recorder})


def _queue_for(database: Any, clock: Any, make_member: Any, template: Any, n: int) -> list[int]:
    template()
    nos = [
        make_member(email=f"b{i}@example.com", preferred_channel="email", consents={"email": True})
        for i in range(n)
    ]
    with database.unit_of_work() as s:
        ids = [s.scalar(select(Member.id).where(Member.member_no == no)) for no in nos]
        service.enqueue(
            s,
            "hello",
            [service.Draft(m, f"broker:{m}") for m in ids],
            source_kind="campaign",
            source_code="b",
            now=clock.now(),
        )
    return ids


def _idle_past_the_lease(queue: broker.RedisQueue, owner: str, entry_ids: list[str]) -> None:
    # Redis counts an entry's idle time by its own clock, not the test's: set it.
    idle = int(LEASE.total_seconds() * 1000) + 1
    queue.client.xclaim(queue.stream, queue.group, owner, 0, entry_ids, idle=idle)


def _statuses(database: Any) -> list[str]:
    with database.unit_of_work() as s:
        return list(s.scalars(select(Message.status).order_by(Message.id)))


def test_published_messages_are_sent_once_by_consumers_and_acknowledged(
    database, clock, make_member, template, queue, sender, recorder
):
    _queue_for(database, clock, make_member, template, 5)
    report = broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ, limit=2)
    assert report.published == 5
    assert _statuses(database) == ["sending"] * 5
    # Only ids and leases cross Redis: no address or text.
    entries = queue.client.xrange(queue.stream)
    assert len(entries) == 5 and all(set(f) == {"id", "lease"} for _, f in entries)
    # Nothing more is due: a second publish adds nothing.
    assert broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ).published == 0

    first = broker.consume_once(database, sender, queue, "c1", now=clock.now(), tz=TZ, count=3)
    second = broker.consume_once(database, sender, queue, "c2", now=clock.now(), tz=TZ, count=3)
    assert (first.sent, second.sent) == (3, 2)
    assert sorted(o.address for o in recorder.sent) == [f"b{i}@example.com" for i in range(5)]
    assert len({o.message_id for o in recorder.sent}) == 5
    assert _statuses(database) == ["sent"] * 5
    assert queue.backlog() == 0
    assert queue.client.xpending(queue.stream, queue.group)["pending"] == 0
    assert (
        broker.consume_once(database, sender, queue, "c1", now=clock.now(), tz=TZ, block_ms=1).sent
        == 0
    )


def test_a_dead_consumers_entries_are_taken_over_and_a_superseded_claim_is_dropped(
    database, clock, make_member, template, queue, sender, recorder
):
    _queue_for(database, clock, make_member, template, 2)
    broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
    # A consumer reads both entries and dies before sending.
    queue.ensure_group()
    read = queue.client.xreadgroup(queue.group, "dead", {queue.stream: ">"}, count=10)
    assert len(read[0][1]) == 2
    assert (
        broker.consume_once(
            database, sender, queue, "live", now=clock.now(), tz=TZ, block_ms=1
        ).sent
        == 0
    )

    # The lease runs out: the next publish puts the messages back in line and publishes them
    # under a new lease; the dead consumer's entries are taken over and dropped as stale.
    clock.advance(LEASE + timedelta(seconds=1))
    _idle_past_the_lease(queue, "dead", [entry_id for entry_id, _ in read[0][1]])
    assert broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ).published == 2
    total = broker.run_consumer(
        database, sender, queue, "live", now=clock.now, tz=TZ, until_empty=True
    )
    assert (total.sent, total.stale) == (2, 2)
    assert sorted(o.message_id for o in recorder.sent) == sorted(
        {o.message_id for o in recorder.sent}
    )
    assert len(recorder.sent) == 2
    assert _statuses(database) == ["sent"] * 2
    assert queue.backlog() == 0


def test_a_dead_consumers_entries_are_sent_when_their_claim_still_holds(
    database, clock, make_member, template, queue, sender, recorder
):
    _queue_for(database, clock, make_member, template, 1)
    broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
    queue.ensure_group()
    queue.client.xreadgroup(queue.group, "dead", {queue.stream: ">"}, count=10)
    [(entry_id, _)] = queue.client.xrange(queue.stream)
    _idle_past_the_lease(queue, "dead", [entry_id])
    # No publisher ran since: the claim is still the message's, so the taker-over sends it.
    r = broker.consume_once(database, sender, queue, "live", now=clock.now(), tz=TZ, block_ms=1)
    assert (r.sent, r.stale) == (1, 0)
    assert queue.backlog() == 0


def test_consent_withdrawn_after_publishing_means_not_sent(
    database, clock, client, auth_headers, make_member, template, queue, sender, recorder
):
    [mid] = _queue_for(database, clock, make_member, template, 1)
    broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
    with database.unit_of_work() as s:
        no = s.scalar(select(Member.member_no).where(Member.id == mid))
    resp = client.put(
        f"/api/v1/members/{no}/consents", json={"email": False}, headers=auth_headers("admin")
    )
    assert resp.status_code == 200, resp.text
    r = broker.consume_once(database, sender, queue, "c", now=clock.now(), tz=TZ)
    assert (r.sent, r.suppressed) == (0, 1)
    assert recorder.sent == []
    with database.unit_of_work() as s:
        msg = s.scalars(select(Message)).one()
        assert (msg.status, msg.last_error) == ("suppressed", "no_consent")
    assert queue.backlog() == 0


def test_an_entry_that_waited_into_the_quiet_hours_goes_back_in_line(
    database, clock, client, auth_headers, make_member, template, queue, sender, recorder
):
    _queue_for(database, clock, make_member, template, 1)
    broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
    # The quiet hours begin while the entry waits in the stream.
    local = clock.now().astimezone(TZ)
    start = (local - timedelta(minutes=1)).strftime("%H:%M")
    end = (local + timedelta(hours=1)).strftime("%H:%M")
    h = auth_headers("admin", fresh=True)
    cur = client.get("/api/v1/messaging/settings", headers=h).json()
    resp = client.put(
        "/api/v1/messaging/settings",
        json={**cur, "quiet_start": start, "quiet_end": end},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    r = broker.consume_once(database, sender, queue, "c", now=clock.now(), tz=TZ)
    assert r.quiet and r.sent == 0 and recorder.sent == []
    with database.unit_of_work() as s:
        msg = s.scalars(select(Message)).one()
        assert msg.status == "queued" and msg.sent_at is None
        assert msg.next_attempt_at.astimezone(TZ).strftime("%H:%M") == end
    assert queue.backlog() == 0


def test_a_failing_provider_is_retried_then_dead_lettered_through_the_same_record(
    database, clock, make_member, template, queue, make_sender
):
    failing = Recorder(fail=True)
    sender = make_sender({"email": failing})
    _queue_for(database, clock, make_member, template, 1)
    for _ in range(10):
        broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
        broker.run_consumer(database, sender, queue, "c", now=clock.now, tz=TZ, until_empty=True)
        with database.unit_of_work() as s:
            msg = s.scalars(select(Message)).one()
        if msg.status == "dead":
            break
        assert msg.status == "queued" and msg.last_error == "provider_down"
        clock.set(msg.next_attempt_at)
    assert msg.status == "dead" and msg.attempts >= 2
    assert queue.backlog() == 0


def test_the_publisher_keeps_the_backlog_bounded(
    database, clock, make_member, template, queue, sender
):
    _queue_for(database, clock, make_member, template, 3)
    r = broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ, max_backlog=2)
    assert r.published == 2 and queue.backlog() == 2
    assert _statuses(database).count("queued") == 1
    broker.run_consumer(database, sender, queue, "c", now=clock.now, tz=TZ, until_empty=True)
    assert broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ).published == 1


def test_malformed_entries_are_dropped_without_sending(
    database, clock, make_member, template, queue, sender, recorder
):
    queue.ensure_group()
    queue.client.xadd(queue.stream, {"id": "x"})
    queue.client.xadd(queue.stream, {"id": "1", "lease": "2026-01-01T00:00:00"})  # naive
    r = broker.consume_once(database, sender, queue, "c", now=clock.now(), tz=TZ)
    assert r.sent == 0 and recorder.sent == []
    assert queue.backlog() == 0


def test_the_table_sender_and_the_broker_agree(
    database, clock, make_member, template, queue, sender, recorder
):
    # Without a broker the same messages go out through drain: the broker path is the table
    # path with a stream between claim and send.
    _queue_for(database, clock, make_member, template, 2)
    assert drain(database, sender, now=clock.now(), tz=TZ).sent == 2
    assert _statuses(database) == ["sent"] * 2
    assert broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ).published == 0


def test_the_broker_setting_takes_redis_urls_only():
    assert Settings(message_broker_url="redis://127.0.0.1:6379/0").message_broker_url is not None
    assert Settings(message_broker_url="").message_broker_url is None
    with pytest.raises(ValueError, match="redis://"):
        Settings(message_broker_url="amqp://guest@127.0.0.1/")


def test_the_job_publishes_and_the_consume_command_sends(
    database, client, auth_headers, make_member, template, queue, monkeypatch
):
    from typer.testing import CliRunner

    from patron.cli import app as cli
    from patron.config import get_settings
    from patron.db import utcnow
    from tests.conftest import TEST_KEYS

    # The command runs on the wall clock: no quiet hours, messages due now.
    h = auth_headers("admin", fresh=True)
    cur = client.get("/api/v1/messaging/settings", headers=h).json()
    quiet_off = {**cur, "quiet_start": "00:00", "quiet_end": "00:00"}
    assert client.put("/api/v1/messaging/settings", json=quiet_off, headers=h).status_code == 200
    template()
    nos = [make_member(preferred_channel="sms", consents={"sms": True}) for _ in range(3)]
    with database.unit_of_work() as s:
        ids = [s.scalar(select(Member.id).where(Member.member_no == no)) for no in nos]
        service.enqueue(
            s,
            "hello",
            [service.Draft(m, f"cli:{m}") for m in ids],
            source_kind="campaign",
            source_code="cli",
            now=utcnow() - timedelta(minutes=1),
        )
    monkeypatch.setenv("PATRON_DATABASE_URL", database.url)
    monkeypatch.setenv("PATRON_ENV", "test")
    for name, value in TEST_KEYS.items():
        monkeypatch.setenv(f"PATRON_{name.upper()}", value)
    monkeypatch.setenv("PATRON_MESSAGE_BROKER_URL", REDIS_URL)
    monkeypatch.setenv("PATRON_MESSAGE_BROKER_STREAM", queue.stream)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(cli, ["jobs", "run", "messages"])
        assert r.exit_code == 0 and "published=3" in r.output, r.output
        assert queue.backlog() == 3
        r = runner.invoke(cli, ["messages", "consume", "--until-empty", "--consumer", "cli"])
        assert r.exit_code == 0 and "sent 3" in r.output, r.output
        assert queue.backlog() == 0
        assert _statuses(database) == ["sent"] * 3
        monkeypatch.delenv("PATRON_MESSAGE_BROKER_URL")
        get_settings.cache_clear()
        r = runner.invoke(cli, ["messages", "consume", "--until-empty"])
        assert r.exit_code == 2 and "not set" in r.output
    finally:
        get_settings.cache_clear()


def test_a_consumer_outlives_a_broker_or_database_outage(
    database, clock, make_member, template, queue, sender, recorder, monkeypatch
):
    import threading

    _queue_for(database, clock, make_member, template, 1)
    broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
    real = broker.consume_once
    calls = []
    stop = threading.Event()

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("connection refused")
        report = real(*args, **kwargs)
        stop.set()
        return report

    monkeypatch.setattr(broker, "consume_once", flaky)
    total = broker.run_consumer(
        database, sender, queue, "c", now=clock.now, tz=TZ, stop=stop, retry_seconds=0
    )
    assert len(calls) == 2 and total.sent == 1 and len(recorder.sent) == 1


def test_a_redis_that_lost_its_stream_and_group_is_read_again(
    database, clock, make_member, template, queue, sender, recorder
):
    # A consumer that starts first, or after Redis restarted empty: no stream, no group.
    assert (
        broker.consume_once(database, sender, queue, "c", now=clock.now(), tz=TZ, block_ms=1).sent
        == 0
    )
    _queue_for(database, clock, make_member, template, 1)
    broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
    queue.client.delete(queue.stream)  # Redis lost everything
    assert (
        broker.consume_once(database, sender, queue, "c", now=clock.now(), tz=TZ, block_ms=1).sent
        == 0
    )
    # The message is still "sending" in the table: when its lease runs out it is published anew.
    clock.advance(LEASE + timedelta(seconds=1))
    assert broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ).published == 1
    assert broker.consume_once(database, sender, queue, "c", now=clock.now(), tz=TZ).sent == 1
    assert len(recorder.sent) == 1


class Hook(Recorder):
    """A channel that runs ``during`` once, while its first batch is being sent."""

    def __init__(self, during) -> None:
        super().__init__()
        self.during = during

    def send_batch(self, outs: list[Outgoing]) -> list[Any]:
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return super().send_batch(outs)


def test_a_consumer_holding_an_older_entry_of_a_claim_being_sent_drops_it(
    database, clock, make_member, template, queue, make_sender
):
    _queue_for(database, clock, make_member, template, 1)
    plain = make_sender({"email": Recorder()})
    broker.publish_all(database, plain, queue, now=clock.now(), tz=TZ)
    [(_, fields)] = queue.client.xrange(queue.stream)
    other = Recorder()
    other_sender = make_sender({"email": other})

    def a_second_consumer_with_the_same_entry() -> None:
        # A consumer that took the entry over (it looked idle) while the first one sends.
        queue.client.xadd(queue.stream, dict(fields))
        r = broker.consume_once(database, other_sender, queue, "b", now=clock.now(), tz=TZ)
        assert (r.sent, r.stale) == (0, 1)

    first = Hook(a_second_consumer_with_the_same_entry)
    r = broker.consume_once(
        database, make_sender({"email": first}), queue, "a", now=clock.now(), tz=TZ
    )
    assert r.sent == 1 and len(first.sent) == 1 and other.sent == []
    assert _statuses(database) == ["sent"]


def test_a_consumer_whose_claim_was_taken_back_records_nothing_over_the_new_one(
    database, clock, make_member, template, queue, make_sender
):
    _queue_for(database, clock, make_member, template, 1)
    plain = make_sender({"email": Recorder()})
    broker.publish_all(database, plain, queue, now=clock.now(), tz=TZ)

    def the_lease_runs_out_and_the_message_is_claimed_again() -> None:
        clock.advance(LEASE * 2)
        assert broker.publish_all(database, plain, queue, now=clock.now(), tz=TZ).published == 1

    slow = Hook(the_lease_runs_out_and_the_message_is_claimed_again)
    start = clock.now()
    broker.consume_once(database, make_sender({"email": slow}), queue, "slow", now=start, tz=TZ)
    # The slow consumer did send (at least once), but its record did not overwrite the claim
    # that replaced it: the message is still being sent under the new one.
    assert len(slow.sent) == 1 and _statuses(database) == ["sending"]
    again = Recorder()
    r = broker.consume_once(
        database, make_sender({"email": again}), queue, "c", now=clock.now(), tz=TZ
    )
    assert r.sent == 1 and _statuses(database) == ["sent"]


def test_a_message_that_cannot_be_built_or_a_channel_that_raises_ends_no_consumer(
    database, clock, make_member, template, queue, make_sender, monkeypatch
):
    ids = _queue_for(database, clock, make_member, template, 2)
    broker.publish_all(database, make_sender({"email": Recorder()}), queue, now=clock.now(), tz=TZ)
    real = broker.outgoing

    def broken_for_the_first(m, *args, **kwargs):
        if m.member_id == ids[0]:
            raise ValueError("cannot decrypt")
        return real(m, *args, **kwargs)

    monkeypatch.setattr(broker, "outgoing", broken_for_the_first)
    ok = Recorder()
    r = broker.consume_once(
        database, make_sender({"email": ok}), queue, "c", now=clock.now(), tz=TZ
    )
    assert (r.sent, r.dead) == (1, 1) and len(ok.sent) == 1
    with database.unit_of_work() as s:
        dead = s.scalars(select(Message).where(Message.status == "dead")).one()
        assert dead.last_error == "message_not_built"

    class Raising(Recorder):
        def send_batch(self, outs: list[Outgoing]) -> list[Any]:
            raise RuntimeError("adapter bug")

    monkeypatch.setattr(broker, "outgoing", real)
    more = _queue_for(database, clock, make_member, template, 1)
    assert more
    broker.publish_all(database, make_sender({"email": Recorder()}), queue, now=clock.now(), tz=TZ)
    r = broker.consume_once(
        database, make_sender({"email": Raising()}), queue, "c", now=clock.now(), tz=TZ
    )
    assert r.retried == 1
    with database.unit_of_work() as s:
        retried = s.scalars(select(Message).where(Message.status == "queued")).one()
        assert retried.last_error == "channel_failed"


def test_a_batch_of_stale_entries_reads_nothing_about_members(
    database, clock, make_member, template, queue, sender, recorder
):
    from tests.statements import count_statements

    _queue_for(database, clock, make_member, template, 1)
    broker.publish_all(database, sender, queue, now=clock.now(), tz=TZ)
    [(_, fields)] = queue.client.xrange(queue.stream)
    assert broker.consume_once(database, sender, queue, "a", now=clock.now(), tz=TZ).sent == 1
    queue.client.xadd(queue.stream, dict(fields))  # the same claim once more: stale now
    with count_statements(database.engine) as log:
        r = broker.consume_once(database, sender, queue, "a", now=clock.now(), tz=TZ)
    assert (r.sent, r.stale) == (0, 1)
    # the settings and the messages named; no member, consent, address or template reads
    assert log.count <= 3, log.report()
