"""Sending through Redis: the ``messages`` table stays the outbox, a Redis stream carries the
work to consumers on other processes or hosts.

Set ``PATRON_MESSAGE_BROKER_URL`` (``redis://host:6379/0``) and the ``messages`` job stops
sending by itself: it *publishes*. Each run claims due messages exactly as the table sender does
(consent, caps, quiet hours and provider rates decided in one transaction, each claimed message
marked ``sending`` with a lease) and adds one stream entry per message: its id and its lease,
never an address or a text, so no personal data sits in Redis. ``patron messages consume``
processes read entries with a consumer group; each consumer

1. reads its entries (``XREADGROUP``), first taking over any another consumer read and never
   acknowledged within the lease (``XAUTOCLAIM``: that consumer died);
2. keeps only the messages still ``sending`` under the lease the entry names, before its end
   (row locks on PostgreSQL), and takes each over with a lease of its own: any other entry of
   the claim is dropped from then on (a fence), and the outcome is recorded only while that
   lease holds;
3. checks consent and the member once more (the entry may have waited) and quiet hours, builds
   each message from the database, hands them to their channels outside any transaction and
   records the outcomes with the table sender's code (retries, dead letters);
4. acknowledges and deletes its entries after the record.

A consumer that dies after sending and before recording leaves its messages ``sending``; the
lease runs out and they are claimed again, as with the table sender: at least once, never lost.
The publisher keeps at most ``max_backlog`` entries in the stream, so a claim's lease is not
spent waiting behind a long queue."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import select, update

from patron.config import Settings
from patron.db import Database
from patron.messaging import domain
from patron.messaging.channels import ChannelError
from patron.messaging.delivery import (
    LEASE,
    Claimed,
    Sender,
    SendReport,
    claim,
    member_facts,
    outgoing,
    provider_codes,
    record,
    send_batch,
)
from patron.messaging.models import Message
from patron.messaging.service import get_settings
from patron.observability import get_logger

log = get_logger("patron.messaging")

STREAM = "patron:messages"
GROUP = "patron-senders"


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: str
    message_id: int
    lease: datetime


@dataclass(frozen=True)
class RedisQueue:
    """The stream and its consumer group."""

    client: redis.Redis
    stream: str = STREAM
    group: str = GROUP

    @classmethod
    def from_url(
        cls, url: str, *, stream: str = STREAM, group: str = GROUP, timeout: float = 30
    ) -> RedisQueue:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        return cls(client, stream, group)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def backlog(self) -> int:
        """Entries published and not yet acknowledged (acknowledged ones are deleted)."""
        return int(self.client.xlen(self.stream))

    def publish(self, batch: list[Claimed]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for c in batch:
            pipe.xadd(self.stream, {"id": str(c.message_id), "lease": _stamp(c.lease)})
        pipe.execute()

    def read(self, consumer: str, *, count: int, block_ms: int) -> list[Entry]:
        try:
            return self._read(consumer, count, block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # A new stream, or a Redis that restarted empty: make the group and read again.
            self.ensure_group()
            return self._read(consumer, count, block_ms)

    def _read(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        raw: list[tuple[str, dict[str, str] | None]] = []
        # Entries a consumer read and never acknowledged within the lease: it died.
        claimed: Any = self.client.xautoclaim(
            self.stream,
            self.group,
            consumer,
            min_idle_time=int(LEASE.total_seconds() * 1000),
            start_id="0-0",
            count=count,
        )
        raw.extend(claimed[1])
        fresh: Any = self.client.xreadgroup(
            self.group,
            consumer,
            {self.stream: ">"},
            count=max(count - len(raw), 1),
            block=None if raw else block_ms,
        )
        for _stream, items in fresh or []:
            raw.extend(items)
        entries: list[Entry] = []
        junk: list[str] = []
        for entry_id, fields in raw:
            parsed = _parse(entry_id, fields)
            if parsed is None:
                junk.append(entry_id)
            else:
                entries.append(parsed)
        if junk:
            log.warning("message_stream_malformed", dropped=len(junk))
            self.done(junk)
        return entries

    def done(self, entry_ids: list[str]) -> None:
        if not entry_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(self.stream, self.group, *entry_ids)
        pipe.xdel(self.stream, *entry_ids)
        pipe.execute()


#: how long a look at the broker (a metrics scrape, ``patron doctor``) waits for Redis: a scrape
#: that hung for the senders' 30 s would time out at the scraper and hide every other figure
PROBE_TIMEOUT = 2.0


def from_settings(settings: Settings, *, timeout: float = 30) -> RedisQueue | None:
    """The deployment's stream, or None when messages are sent from the table itself.
    ``timeout`` bounds each connect and each reply (seconds)."""
    url = settings.message_broker_url
    if url is None:
        return None
    return RedisQueue.from_url(
        url.get_secret_value(), stream=settings.message_broker_stream, timeout=timeout
    )


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _parse(entry_id: str, fields: dict[str, str] | None) -> Entry | None:
    try:
        assert fields is not None
        lease = datetime.fromisoformat(fields["lease"])
        if lease.tzinfo is None:
            return None
        return Entry(entry_id, int(fields["id"]), lease)
    except (AssertionError, KeyError, ValueError):
        return None


def publish_due(
    db: Database,
    sender: Sender,
    queue: RedisQueue,
    *,
    now: datetime,
    tz: ZoneInfo,
    limit: int = 500,
) -> SendReport:
    """Claim one batch and publish it: what the table sender's ``send_due`` does up to the
    channels."""
    report = SendReport()
    with db.unit_of_work() as session:
        batch = claim(
            session,
            sender,
            now,
            tz,
            limit,
            report,
            skip_locked=db.dialect == "postgresql",
            build=False,
        )
    if batch:
        # Published after the commit: if this process dies in between, the lease runs out and
        # the messages are claimed again.
        queue.publish(batch)
        report.published = len(batch)
    return report


def publish_all(
    db: Database,
    sender: Sender,
    queue: RedisQueue,
    *,
    now: datetime,
    tz: ZoneInfo,
    limit: int = 500,
    max_backlog: int = 5000,
) -> SendReport:
    """Publish batches until nothing due is left or the stream holds ``max_backlog``."""
    queue.ensure_group()
    total = SendReport()
    while True:
        room = max_backlog - queue.backlog()
        if room <= 0:
            return total
        r = publish_due(db, sender, queue, now=now, tz=tz, limit=min(limit, room))
        total.add(r)
        if r.published + r.suppressed + r.dropped + r.deferred == 0:
            return total


def consume_once(
    db: Database,
    sender: Sender,
    queue: RedisQueue,
    consumer: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    count: int = 500,
    block_ms: int = 1000,
) -> SendReport:
    """Read up to ``count`` entries (waiting up to ``block_ms`` for the first), send what they
    name, record and acknowledge."""
    report = SendReport()
    entries = queue.read(consumer, count=count, block_ms=block_ms)
    if not entries:
        return report
    leases = {e.message_id: e.lease for e in entries}
    batch: list[Claimed] = []
    results: dict[int, Any] = {}
    with db.unit_of_work() as session:
        settings = get_settings(session)
        q = (
            select(Message)
            .where(Message.id.in_(sorted(leases)), Message.status == "sending")
            .order_by(Message.id)
        )
        if db.dialect == "postgresql":
            # Row locks until this transaction ends: another consumer that took over the same
            # entries waits here, then finds the lease renewed below and drops them.
            q = q.with_for_update()
        # The fence: the claim the entry names, still running (a lease that ran out is the
        # publisher's to queue again).
        msgs = [
            m
            for m in session.scalars(q)
            if m.next_attempt_at == leases[m.id] and leases[m.id] > now
        ]
        report.stale = len(entries) - len(msgs)
        # Take the claim over with a lease of its own: an older entry for it is stale from now
        # on, and the record below applies only while this lease holds.
        # (Always a later instant than the entry's, even within one clock tick.)
        renewed = {
            m.id: max(now + LEASE, m.next_attempt_at + timedelta(microseconds=1)) for m in msgs
        }
        if msgs:
            session.execute(
                update(Message),
                [{"id": mid, "next_attempt_at": at} for mid, at in renewed.items()],
            )
        quiet = domain.quiet_until(now, tz, settings.quiet_start, settings.quiet_end)
        changes: list[dict[str, Any]] = []
        if quiet is not None:
            # The entry waited into the quiet hours: back in line for their end.
            report.quiet = True
            changes = [
                {"id": m.id, "status": "queued", "sent_at": None, "next_attempt_at": quiet}
                for m in msgs
            ]
            msgs = []
        # (all stale, or waiting out the quiet hours: nothing to read for them)
        facts = member_facts(session, sorted({m.member_id for m in msgs})) if msgs else None
        codes = provider_codes(session, {m.template_code for m in msgs}) if msgs else {}
        for m in msgs:
            assert facts is not None
            p = facts.people.get(m.member_id)
            channel = m.channel or ""  # a claimed message always has its channel
            why = None
            if p is None or p.status != "active":
                why = "member_not_active"
            elif channel not in facts.consented[m.member_id]:
                why = "no_consent"  # withdrawn since the claim
            if why is not None:
                changes.append(
                    {"id": m.id, "status": "suppressed", "last_error": why, "finished_at": now}
                )
                report.suppressed += 1
                continue
            if channel not in sender.channels:
                results[m.id] = ChannelError("channel_not_configured", retryable=True)
                batch.append(Claimed(channel, m.id, m.attempts, renewed[m.id], None))
                continue
            try:
                out = outgoing(
                    m,
                    p,
                    channel,
                    facts.addresses,
                    codes.get(m.template_code, {}),
                    sender,
                    settings.track_opens,
                )
            except Exception as exc:  # e.g. an address that no key decrypts: not this batch's end
                log.warning("message_not_built", message_id=m.id, error_type=type(exc).__name__)
                results[m.id] = ChannelError("message_not_built", retryable=False)
                batch.append(Claimed(channel, m.id, m.attempts, renewed[m.id], None))
                continue
            batch.append(Claimed(channel, m.id, m.attempts, renewed[m.id], out))
        if changes:
            session.execute(update(Message), changes)
    sendable = [c for c in batch if c.out is not None]
    if sendable:
        results.update(send_batch(sender, sendable))
    if batch:
        record(
            db,
            batch,
            results,
            now=now,
            max_attempts=settings.max_attempts,
            report=report,
            while_leased=True,
        )
    queue.done([e.entry_id for e in entries])
    return report


def run_consumer(
    db: Database,
    sender: Sender,
    queue: RedisQueue,
    consumer: str,
    *,
    now: Callable[[], datetime],
    tz: ZoneInfo,
    stop: threading.Event | None = None,
    until_empty: bool = False,
    count: int = 500,
    on_batch: Callable[[SendReport], None] | None = None,
    retry_seconds: float = 5.0,
) -> SendReport:
    """Consume until ``stop`` is set, or (``until_empty``) until a read finds nothing."""
    total = SendReport()
    pause = threading.Event() if stop is None else stop
    while stop is None or not stop.is_set():
        try:
            r = consume_once(db, sender, queue, consumer, now=now(), tz=tz, count=count)
        except Exception as exc:
            # Redis or the database went away, or a bug: what was read stays pending and is
            # taken over or read again; wait and carry on rather than end the process.
            if until_empty:
                raise
            log.warning("message_consumer_retry", consumer=consumer, error_type=type(exc).__name__)
            pause.wait(retry_seconds)
            continue
        total.add(r)
        if on_batch is not None:
            on_batch(r)
        handled = r.sent + r.retried + r.dead + r.suppressed + r.stale + int(r.quiet)
        if until_empty and handled == 0:
            break
    return total
