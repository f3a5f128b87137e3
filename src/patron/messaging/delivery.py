"""The sender: claims due messages from the queue, decides each one at send time (consent,
address, quiet hours, frequency caps, the provider's rate), hands them to their channels
outside any transaction, and records the outcome with retries and dead letters.

Claiming is ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several ``patron worker`` processes
share the queue; SQLite has one writer and runs it serially. A claimed message is marked
``sending`` with a lease; if its worker dies the lease runs out and the message is queued
again (at least once: a provider may then see it twice, which ``OutId``/message ids let it
drop)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session

from patron.config import Settings
from patron.db import Database
from patron.kit.crypto import FieldCipher
from patron.members.models import ConsentEvent, Member, MemberConsent
from patron.members.service import EMAIL_CTX, PHONE_CTX
from patron.messaging import channels as adapters
from patron.messaging import domain, links
from patron.messaging.channels import Channel, ChannelError, Outgoing
from patron.messaging.models import MemberAddress, Message, MessageTemplate
from patron.messaging.service import get_settings
from patron.observability import get_logger

log = get_logger("patron.messaging")

LEASE = timedelta(minutes=5)
SENT_STATES = ("sending", "sent", "delivered", "failed")


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    suppressed: int = 0
    deferred: int = 0
    dropped: int = 0
    rate_limited: int = 0
    published: int = 0  # handed to a broker (messaging/broker.py)
    stale: int = 0  # broker entries whose claim had been superseded
    quiet: bool = False
    by_channel: dict[str, int] = field(default_factory=dict)

    def add(self, other: SendReport) -> None:
        names = (
            "sent",
            "retried",
            "dead",
            "suppressed",
            "deferred",
            "dropped",
            "published",
            "stale",
        )
        for name in names:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rate_limited += other.rate_limited
        self.quiet = self.quiet or other.quiet
        for ch, n in other.by_channel.items():
            self.by_channel[ch] = self.by_channel.get(ch, 0) + n


@dataclass(frozen=True, slots=True)
class Sender:
    """What sending needs besides the database: the channels, the key of signed links, the
    public address links start with, and the cipher that opens phone numbers and emails."""

    channels: Mapping[str, Channel]
    cipher: FieldCipher
    link_key: bytes
    base_url: str

    @classmethod
    def from_settings(cls, settings: Settings, cipher: FieldCipher) -> Sender:
        """The deployment's sender: the channels its settings configure."""
        return cls(
            channels=adapters.from_settings(settings),
            cipher=cipher,
            link_key=settings.keys()["token_key"],
            base_url=settings.public_base_url,
        )


def send_due(
    db: Database, sender: Sender, *, now: datetime, tz: ZoneInfo, limit: int = 500
) -> SendReport:
    """One batch: claim, send, record. Returns what happened; call again while it sends."""
    report = SendReport()
    with db.unit_of_work() as session:
        batch = claim(
            session, sender, now, tz, limit, report, skip_locked=db.dialect == "postgresql"
        )
        max_attempts = get_settings(session).max_attempts
    if batch:
        record(
            db, batch, send_batch(sender, batch), now=now, max_attempts=max_attempts, report=report
        )
    return report


def send_batch(sender: Sender, batch: list[Claimed]) -> dict[int, Any]:
    """Hand each claimed message to its channel (outside any transaction): the provider's id or
    the ``ChannelError``, by message id."""
    results: dict[int, Any] = {}
    by_channel: dict[str, list[Outgoing]] = defaultdict(list)
    for c in batch:
        assert c.out is not None
        by_channel[c.channel].append(c.out)
    for channel, outs in by_channel.items():
        try:
            sent = sender.channels[channel].send_batch(outs)
        except Exception as exc:  # an adapter that raised instead of answering per message
            log.warning("channel_failed", channel=channel, error_type=type(exc).__name__)
            sent = [ChannelError("channel_failed", retryable=True) for _ in outs]
        for out, res in zip(outs, sent, strict=True):
            results[out.message_id] = res
    return results


def record(
    db: Database,
    batch: list[Claimed],
    results: Mapping[int, Any],
    *,
    now: datetime,
    max_attempts: int,
    report: SendReport,
    while_leased: bool = False,
) -> None:
    """Write each outcome in one statement: sent, queued again after a backoff, or dead.
    ``while_leased``: only where the message is still ``sending`` under the claim's lease (a
    broker's consumer whose claim was taken back writes nothing over the newer one)."""
    rows: list[dict[str, Any]] = []
    for c in batch:
        res = results[c.message_id]
        tried = c.attempts + 1
        row: dict[str, Any] = {
            "id": c.message_id,
            "attempts": tried,
            "status": "sent",
            "provider_id": None,
            "last_error": None,
            "sent_at": now,
            "next_attempt_at": now,
            "finished_at": None,
        }
        if isinstance(res, ChannelError):
            row["last_error"] = res.kind[:200]
            row["sent_at"] = None
            if res.retryable and tried < max_attempts:
                row["status"] = "queued"
                row["next_attempt_at"] = now + domain.backoff(tried)
                report.retried += 1
            else:
                row["status"] = "dead"
                row["finished_at"] = now
                report.dead += 1
        else:
            row["provider_id"] = str(res)[:100]
            report.sent += 1
            report.by_channel[c.channel] = report.by_channel.get(c.channel, 0) + 1
        rows.append(row)
    with db.unit_of_work() as session:
        if not while_leased:
            session.execute(update(Message), rows)
            return
        leases = {c.message_id: c.lease for c in batch}
        t: Any = Message.__table__
        guarded = (
            update(t)
            .where(
                t.c.id == bindparam("b_id"),
                t.c.status == "sending",
                t.c.next_attempt_at == bindparam("b_lease", type_=t.c.next_attempt_at.type),
            )
            # parameters may not share a column's name in an UPDATE's SET
            .values({k: bindparam(f"v_{k}", type_=t.c[k].type) for k in rows[0] if k != "id"})
        )
        session.execute(
            guarded,
            [
                {
                    **{f"v_{k}": v for k, v in r.items() if k != "id"},
                    "b_id": r["id"],
                    "b_lease": leases[r["id"]],
                }
                for r in rows
            ],
        )


def drain(
    db: Database, sender: Sender, *, now: datetime, tz: ZoneInfo, limit: int = 500
) -> SendReport:
    """Send batches until nothing due is left that can go now."""
    total = SendReport()
    while True:
        r = send_due(db, sender, now=now, tz=tz, limit=limit)
        total.add(r)
        if r.sent + r.retried + r.dead + r.suppressed + r.dropped + r.deferred == 0:
            return total


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message claimed for sending: marked ``sending`` with a lease until ``lease``. ``out`` is
    what its channel is given (None when a broker's consumer builds it at send time)."""

    channel: str
    message_id: int
    attempts: int
    lease: datetime
    out: Outgoing | None


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What deciding and addressing a message reads about its members, for a batch at once."""

    people: dict[int, Any]
    consented: dict[int, set[str]]
    evidence: dict[tuple[int, str], tuple[int, datetime]]
    addresses: dict[tuple[int, str], str]


def member_facts(session: Session, member_ids: list[int]) -> MemberFacts:
    people = {
        r.id: r
        for r in session.execute(
            select(
                Member.id,
                Member.member_no,
                Member.status,
                Member.preferred_channel,
                Member.phone_enc,
                Member.email_enc,
            ).where(Member.id.in_(member_ids))
        )
    }
    consented: dict[int, set[str]] = defaultdict(set)
    for mid, granted_on in session.execute(
        select(MemberConsent.member_id, MemberConsent.channel).where(
            MemberConsent.member_id.in_(member_ids), MemberConsent.granted.is_(True)
        )
    ):
        consented[mid].add(granted_on)
    evidence = {
        (mid, ch): (eid, at)
        for mid, ch, eid, at in session.execute(
            select(ConsentEvent.member_id, ConsentEvent.channel, ConsentEvent.id, ConsentEvent.at)
            .where(ConsentEvent.member_id.in_(member_ids), ConsentEvent.granted.is_(True))
            .order_by(ConsentEvent.id)
        )
    }
    addresses = {
        (mid, ch): addr
        for mid, ch, addr in session.execute(
            select(MemberAddress.member_id, MemberAddress.channel, MemberAddress.address).where(
                MemberAddress.member_id.in_(member_ids)
            )
        )
    }
    return MemberFacts(people, consented, evidence, addresses)


def claim(
    session: Session,
    sender: Sender,
    now: datetime,
    tz: ZoneInfo,
    limit: int,
    report: SendReport,
    *,
    skip_locked: bool,
    build: bool = True,
) -> list[Claimed]:
    """Claim up to ``limit`` due messages and decide each (consent, address, caps, rate): the
    ones that go are marked ``sending`` with a lease and returned, the rest recorded as
    suppressed, dropped or deferred. ``build=False`` leaves the content to the sender."""
    settings = get_settings(session)
    # A worker that died while sending: its lease ran out, so the message goes back in line.
    session.execute(
        update(Message)
        .where(Message.status == "sending", Message.next_attempt_at <= now)
        .values(status="queued", sent_at=None)
    )
    quiet = domain.quiet_until(now, tz, settings.quiet_start, settings.quiet_end)
    if quiet is not None:
        report.quiet = True
        return []
    q = (
        select(Message)
        .where(Message.status == "queued", Message.next_attempt_at <= now)
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
    )
    if skip_locked:
        q = q.with_for_update(skip_locked=True)
    msgs = list(session.scalars(q))
    if not msgs:
        return []
    member_ids = sorted({m.member_id for m in msgs})
    facts = member_facts(session, member_ids)
    people, consented, evidence, addresses = (
        facts.people,
        facts.consented,
        facts.evidence,
        facts.addresses,
    )
    day_start, week_start = domain.day_bounds(now, tz)
    counts: dict[int, list[int]] = {
        mid: [int(today or 0), int(week or 0)]
        for mid, today, week in session.execute(
            select(
                Message.member_id,
                func.sum(case((Message.sent_at >= day_start, 1), else_=0)),
                func.count(),
            )
            .where(
                Message.member_id.in_(member_ids),
                Message.sent_at >= week_start,
                Message.status.in_(SENT_STATES),
            )
            .group_by(Message.member_id)
        )
    }
    recent = dict(
        session.execute(
            select(Message.channel, func.count())
            .where(Message.sent_at >= now - timedelta(minutes=1), Message.status.in_(SENT_STATES))
            .group_by(Message.channel)
        ).all()
    )
    room = {
        ch: settings.rate_per_minute.get(ch, 0) - int(recent.get(ch, 0)) for ch in domain.CHANNELS
    }
    codes = provider_codes(session, {m.template_code for m in msgs})
    available = set(sender.channels)
    updates: list[dict[str, Any]] = []
    batch: list[Claimed] = []
    lease = now + LEASE
    for m in msgs:
        row: dict[str, Any] = {
            "id": m.id,
            "status": m.status,
            "channel": m.channel,
            "next_attempt_at": m.next_attempt_at,
            "sent_at": None,
            "deferrals": m.deferrals,
            "last_error": m.last_error,
            "finished_at": None,
            "consent_event_id": m.consent_event_id,
            "consent_at": m.consent_at,
        }
        updates.append(row)
        p = people.get(m.member_id)
        if p is None or p.status != "active":
            row.update(status="suppressed", last_error="member_not_active", finished_at=now)
            report.suppressed += 1
            continue
        reachable = {"sms"} | ({"email"} if p.email_enc else set())
        reachable |= {c for c in ("wechat", "push") if (m.member_id, c) in addresses}
        template_codes = codes.get(m.template_code, {})
        usable = {c for c in available if channel_usable(sender.channels[c], c, template_codes)}
        order = domain.channel_order(p.preferred_channel, settings.fallback)
        ch = domain.choose_channel(order, consented[m.member_id], reachable, usable)
        if ch is None:
            why = "no_consent" if not (consented[m.member_id] & usable) else "no_address"
            row.update(status="suppressed", last_error=why, finished_at=now)
            report.suppressed += 1
            continue
        today, week = counts.setdefault(m.member_id, [0, 0])
        verdict = domain.cap_verdict(
            now,
            tz,
            today=today,
            this_week=week,
            daily_cap=settings.daily_cap,
            weekly_cap=settings.weekly_cap,
            quiet_end=settings.quiet_end,
        )
        if not verdict.ok:
            if settings.over_cap == "drop":
                row.update(status="dropped", last_error="over_frequency_cap", finished_at=now)
                report.dropped += 1
            else:
                row.update(next_attempt_at=verdict.retry_at, deferrals=m.deferrals + 1)
                report.deferred += 1
            continue
        if room.get(ch, 0) <= 0:
            row.update(next_attempt_at=now + timedelta(minutes=1))
            report.rate_limited += 1
            continue
        room[ch] -= 1
        counts[m.member_id] = [today + 1, week + 1]
        eid, at = evidence.get((m.member_id, ch), (None, None))
        row.update(
            status="sending",
            channel=ch,
            sent_at=now,
            next_attempt_at=lease,
            consent_event_id=eid,
            consent_at=at,
        )
        out = (
            outgoing(m, p, ch, addresses, template_codes, sender, settings.track_opens)
            if build
            else None
        )
        batch.append(Claimed(ch, m.id, m.attempts, lease, out))
    session.execute(update(Message), updates)
    return batch


def channel_usable(channel: Channel, name: str, template_codes: dict[str, str]) -> bool:
    # A provider that fills its own templates can only send a template registered with it.
    needs_code = name == "wechat" or type(channel).__name__ == "AliyunSmsChannel"
    return not needs_code or bool(template_codes.get(name))


def provider_codes(session: Session, codes: set[str]) -> dict[str, dict[str, str]]:
    return {
        code: dict(pc)
        for code, pc in session.execute(
            select(MessageTemplate.code, MessageTemplate.provider_codes).where(
                MessageTemplate.code.in_(sorted(codes))
            )
        )
    }


def outgoing(
    m: Message,
    p: Any,
    ch: str,
    addresses: dict[tuple[int, str], str],
    template_codes: dict[str, str],
    sender: Sender,
    track_opens: bool,
) -> Outgoing:
    if ch == "sms":
        address = sender.cipher.decrypt(p.phone_enc, PHONE_CTX)
    elif ch == "email":
        address = sender.cipher.decrypt(p.email_enc, EMAIL_CTX) if p.email_enc else ""
    else:
        address = addresses[(m.member_id, ch)]
    unsub = links.unsubscribe_url(sender.base_url, sender.link_key, m.id)
    short = {
        url: links.click_url(sender.base_url, sender.link_key, m.id, i)
        for i, url in enumerate(m.links)
    }
    body = domain.replace_links(m.body, short)
    if "{{" in body and "unsubscribeUrl" in body:
        body = domain.render(body, {"unsubscribeUrl": unsub})
    elif ch in ("email", "sms"):
        body = f"{body}\n\n{'退订' if m.locale == 'zh-CN' else 'Unsubscribe'}: {unsub}"
    params = {k: str(v) for k, v in (m.params or {}).items()}
    if "unsubscribeUrl" in params:
        params["unsubscribeUrl"] = unsub
    return Outgoing(
        message_id=m.id,
        member_no=p.member_no,
        address=address,
        subject=m.subject,
        body=body,
        locale=m.locale,
        provider_code=template_codes.get(ch),
        params=params,
        unsubscribe_url=unsub,
        open_url=(
            links.open_url(sender.base_url, sender.link_key, m.id)
            if ch == "email" and track_opens
            else None
        ),
    )
