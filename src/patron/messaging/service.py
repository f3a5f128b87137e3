"""Messaging use cases: templates, enqueueing (idempotent on a dedupe key), clicks,
unsubscribes, delivery status callbacks, dead letters and the delivery report. Flushes, never
commits; the sending itself is ``delivery.py``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Interval, case, distinct, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.analytics.models import MemberRecommendation, ModelRun
from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.catalog.models import Product
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger.models import PointsAccount
from patron.members import service as members
from patron.members.models import Member
from patron.members.schemas import Consents
from patron.messaging import domain, links
from patron.messaging.models import MemberAddress, Message, MessageTemplate
from patron.orders.models import Order
from patron.program import service as program
from patron.tiers.models import MemberTier

CHUNK = 1000


def get_settings(session: Session) -> domain.MessagingSettings:
    return program.get_section(session, domain.SECTION, domain.MessagingSettings)


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


# ---- templates -------------------------------------------------------------------------------


def get_template(session: Session, code: str) -> MessageTemplate:
    tpl = session.scalar(select(MessageTemplate).where(MessageTemplate.code == code))
    if tpl is None:
        raise NotFound("message_template_not_found", f"No message template with code {code}.")
    return tpl


def list_templates(session: Session) -> list[MessageTemplate]:
    return list(session.scalars(select(MessageTemplate).order_by(MessageTemplate.code)))


def check_texts(texts: dict[str, dict[str, str]]) -> list[str]:
    """Validate the texts of a template; the variables they use."""
    unknown_locales = sorted(set(texts) - set(domain.LOCALES))
    if unknown_locales or not any((t.get("body") or "").strip() for t in texts.values()):
        raise Invalid(
            "message_template_invalid",
            "A message template needs a body in Chinese (zh-CN) or English (en).",
            details={"locales": unknown_locales},
        )
    flat = {f"{loc}.{k}": v for loc, t in texts.items() for k, v in t.items() if v}
    try:
        return domain.check_template(flat)
    except domain.TemplateError as exc:
        known = ", ".join(domain.VARIABLES)
        raise Invalid(
            "message_template_variable",
            f"The template uses {exc}; the variables are {known}.",
            details={"unknown": exc.unknown},
        ) from None


def put_template(
    session: Session,
    actor: Principal,
    code: str,
    *,
    name: str,
    texts: dict[str, dict[str, str]],
    provider_codes: dict[str, str],
    now: datetime,
) -> MessageTemplate:
    """Create or change a template (version + 1 on a change); unknown variables are refused."""
    clean = {
        loc: {"subject": (t.get("subject") or "").strip(), "body": (t.get("body") or "").strip()}
        for loc, t in texts.items()
        if (t.get("body") or "").strip()
    }
    used = check_texts(clean)
    bad = sorted(set(provider_codes) - set(domain.CHANNELS))
    if bad:
        raise Invalid(
            "message_template_invalid",
            "Provider template codes are for sms, email, push or wechat.",
            details={"channels": bad},
        )
    codes = {k: v.strip() for k, v in provider_codes.items() if v and v.strip()}
    tpl = session.scalar(
        select(MessageTemplate).where(MessageTemplate.code == code).with_for_update()
    )
    before = None
    if tpl is None:
        tpl = MessageTemplate(
            code=code,
            name=name,
            texts=clean,
            provider_codes=codes,
            variables=used,
            version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(tpl)
    else:
        if (tpl.name, tpl.texts, tpl.provider_codes) == (name, clean, codes):
            return tpl
        before = {"name": tpl.name, "version": tpl.version}
        tpl.name, tpl.texts, tpl.provider_codes, tpl.variables = name, clean, codes, used
        tpl.version += 1
        tpl.updated_at = now
    session.flush()
    audit.record(
        session,
        actor,
        "message_template.save",
        "message_template",
        code,
        before,
        {"name": name, "version": tpl.version, "locales": sorted(clean)},
        at=now,
    )
    return tpl


SAMPLE_VALUES = {
    "name": "王小明",
    "memberNo": "M000000123",
    "points": "2,350",
    "tier": "Gold",
    "expiringPoints": "500",
    "expiryDate": "2026-12-31",
    "coupon": "¥20 off ¥200",
    "recommendedProducts": "婴儿湿巾、有机米粉、保温杯",
    "unsubscribeUrl": "https://example.com/m/u/…",
}


def preview(tpl: MessageTemplate, locale: str) -> tuple[str, str]:
    loc = domain.pick_locale(locale, list(tpl.texts))
    t = tpl.texts[loc]
    return (
        domain.render(t.get("subject", ""), SAMPLE_VALUES),
        domain.render(t.get("body", ""), SAMPLE_VALUES),
    )


# ---- addresses -------------------------------------------------------------------------------


def set_address(
    session: Session, member_no: str, channel: str, address: str, *, now: datetime
) -> None:
    if channel not in ("wechat", "push"):
        raise Invalid("address_channel_invalid", "Addresses are kept for wechat and push only.")
    member = members.get_member(session, member_no)
    row = session.scalar(
        select(MemberAddress).where(
            MemberAddress.member_id == member.id, MemberAddress.channel == channel
        )
    )
    if row is None:
        session.add(
            MemberAddress(member_id=member.id, channel=channel, address=address, updated_at=now)
        )
    else:
        row.address, row.updated_at = address, now
    session.flush()


# ---- enqueue ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft:
    member_id: int
    dedupe_key: str
    extra: dict[str, str] = field(default_factory=dict)  # values beyond the member's own


def member_values(session: Session, member_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """The per-member variables, one statement per chunk of members."""
    out: dict[int, dict[str, str]] = {}
    for start in range(0, len(member_ids), CHUNK):
        chunk = member_ids[start : start + CHUNK]
        rows = session.execute(
            select(
                Member.id,
                Member.member_no,
                Member.name,
                PointsAccount.available,
                MemberTier.tier_code,
            )
            .outerjoin(PointsAccount, PointsAccount.member_id == Member.id)
            .outerjoin(MemberTier, MemberTier.member_id == Member.id)
            .where(Member.id.in_(chunk))
        ).all()
        for mid, no, name, points, tier in rows:
            out[mid] = {
                "name": name or "会员",
                "memberNo": no,
                "points": f"{points or 0:,}",
                "tier": tier or "",
            }
    return out


#: Product names ``{{recommendedProducts}}`` lists: the member's best few.
RECOMMENDED_IN_MESSAGE: Final = 3


def recommended_products(
    session: Session, member_ids: Sequence[int], locale: str
) -> dict[int, str]:
    """``{{recommendedProducts}}`` per member: the names of the best stored recommendations
    still on sale, best first; a member the scores job has not scored (no purchase yet) gets
    the popular products of its last run, as the portal shows. One statement per chunk."""
    sep = "、" if locale == "zh-CN" else ", "
    names: dict[int, list[str]] = defaultdict(list)
    rec = MemberRecommendation
    for start in range(0, len(member_ids), CHUNK):
        rows = session.execute(
            select(rec.member_id, Product.name)
            .join(Product, Product.sku == rec.item)
            .where(
                rec.member_id.in_(member_ids[start : start + CHUNK]),
                rec.kind == "product",
                Product.is_active,
            )
            .order_by(rec.member_id, rec.rank)
        )
        for mid, name in rows:
            if len(names[mid]) < RECOMMENDED_IN_MESSAGE:
                names[mid].append(name)
    if any(mid not in names for mid in member_ids):
        report = session.scalar(
            select(ModelRun.report)
            .where(ModelRun.kind == "scores")
            .order_by(ModelRun.id.desc())
            .limit(1)
        )
        popular = list(((report or {}).get("recommendations") or {}).get("popular_products", []))
        found = dict(
            session.execute(
                select(Product.sku, Product.name).where(
                    Product.sku.in_(popular or [""]), Product.is_active
                )
            ).all()
        )
        fallback = [found[k] for k in popular if k in found][:RECOMMENDED_IN_MESSAGE]
        for mid in member_ids:
            names.setdefault(mid, fallback)
    return {mid: sep.join(n) for mid, n in names.items()}


def enqueue(
    session: Session,
    template_code: str,
    drafts: Sequence[Draft],
    *,
    source_kind: str,
    source_code: str,
    now: datetime,
    locale: str = "zh-CN",
) -> int:
    """Queue one message per draft; a draft whose dedupe key was queued before is skipped, so a
    rerun queues nothing twice. Returns how many were queued now."""
    if not drafts:
        return 0
    tpl = get_template(session, template_code)
    loc = domain.pick_locale(locale, list(tpl.texts))
    return _queue(
        session, tpl.code, tpl.texts[loc], list(tpl.variables), loc, drafts,
        source_kind=source_kind, source_code=source_code, now=now,
    )  # fmt: skip


#: the template code of a message written for the occasion rather than from a template
FREE_TEXT: Final = ""
MAX_FREE_TEXT: Final = 500


def check_free_text(body: str) -> str:
    """A message written for the occasion: 1 to 500 characters, known variables only."""
    text = body.strip()
    if not text or len(text) > MAX_FREE_TEXT:
        raise Invalid("invalid_message", f"Write a message of 1 to {MAX_FREE_TEXT} characters.")
    check_texts({"zh-CN": {"body": text}})
    return text


def enqueue_text(
    session: Session,
    body: str,
    drafts: Sequence[Draft],
    *,
    source_kind: str,
    source_code: str,
    now: datetime,
    locale: str = "zh-CN",
) -> int:
    """Queue a message written for the occasion (no template; it may use the variables), one
    per draft, as :func:`enqueue` does. Sent on the member's channels as any other message."""
    text = check_free_text(body)
    if not drafts:
        return 0
    loc = locale if locale in domain.LOCALES else "zh-CN"
    used = domain.check_template({"body": text})
    return _queue(
        session, FREE_TEXT, {"body": text}, used, loc, drafts,
        source_kind=source_kind, source_code=source_code, now=now,
    )  # fmt: skip


def _queue(
    session: Session,
    template_code: str,
    text: dict[str, str],
    used: list[str],
    loc: str,
    drafts: Sequence[Draft],
    *,
    source_kind: str,
    source_code: str,
    now: datetime,
) -> int:
    ids = sorted({d.member_id for d in drafts})
    values = member_values(session, ids)
    if "recommendedProducts" in used:
        for mid, text_ in recommended_products(session, ids, loc).items():
            values.setdefault(mid, {})["recommendedProducts"] = text_
    # ``used``: the template's variables; the send-time ones are filled when sent
    rows = []
    for d in drafts:
        v = {**values.get(d.member_id, {}), **d.extra}
        body = domain.render(text.get("body", ""), v)
        rows.append(
            {
                "member_id": d.member_id,
                "template_code": template_code,
                "source_kind": source_kind,
                "source_code": source_code,
                "dedupe_key": d.dedupe_key,
                "locale": loc,
                "subject": domain.render(text.get("subject", ""), v)[:200],
                "body": body,
                "params": {k: v.get(k, "") for k in used},
                "status": "queued",
                "attempts": 0,
                "deferrals": 0,
                "next_attempt_at": now,
                "links": domain.links_in(body),
                "clicks": 0,
                "created_at": now,
            }
        )
    # Keys queued before are skipped up front (one read per chunk), so the insert needs no
    # RETURNING and goes as a plain executemany; ON CONFLICT still guards a concurrent run.
    stmt = _insert(session)(Message.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"])
    conn = session.connection()
    queued = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        seen = set(
            session.scalars(
                select(Message.dedupe_key).where(
                    Message.dedupe_key.in_([r["dedupe_key"] for r in chunk])
                )
            )
        )
        fresh = [r for r in chunk if r["dedupe_key"] not in seen]
        if fresh:
            conn.execute(stmt, fresh)
            queued += len(fresh)
    return queued


def send_campaign(
    session: Session,
    actor: Principal,
    *,
    campaign_code: str,
    template_code: str,
    member_ids: Iterable[int],
    now: datetime,
) -> int:
    """A campaign message to members (a segment's); once per member per campaign and template."""
    ids = sorted(set(member_ids))
    drafts = [Draft(mid, f"campaign:{campaign_code}:{template_code}:{mid}") for mid in ids]
    queued = enqueue(
        session,
        template_code,
        drafts,
        source_kind="campaign",
        source_code=campaign_code,
        now=now,
    )
    audit.record(
        session,
        actor,
        "message.send_campaign",
        "message_template",
        template_code,
        None,
        {"campaign": campaign_code, "members": len(ids), "queued": queued},
        at=now,
    )
    return queued


# ---- clicks, unsubscribes and delivery callbacks ---------------------------------------------


def _message_of(
    session: Session, key: bytes, token: str, *, part: str | None
) -> tuple[Message, str]:
    ref = links.read(key, token)
    if ref is None or (part is not None and ref.part != part):
        raise NotFound("link_not_found", "This link is not valid; it may have been cut short.")
    msg = session.get(Message, ref.message_id)
    if msg is None:
        raise NotFound("link_not_found", "This link is not valid; it may have been cut short.")
    return msg, ref.part


def click(session: Session, key: bytes, token: str, *, now: datetime) -> str:
    """Count a click on a message's link; the address to send the reader to."""
    msg, part = _message_of(session, key, token, part=None)
    if not part.isdigit() or int(part) >= len(msg.links):
        raise NotFound("link_not_found", "This link is not valid; it may have been cut short.")
    session.execute(
        update(Message)
        .where(Message.id == msg.id)
        .values(
            clicks=Message.clicks + 1,
            clicked_at=func.coalesce(Message.clicked_at, now),
            opened_at=func.coalesce(Message.opened_at, now),
        )
    )
    return msg.links[int(part)]


def opened(session: Session, key: bytes, token: str, *, now: datetime) -> None:
    """An email's opening image was loaded: the message was delivered and opened (the first
    opening is kept; a failed or unknown status stays as it is)."""
    msg, _ = _message_of(session, key, token, part="o")
    session.execute(
        update(Message)
        .where(Message.id == msg.id, Message.status.in_(("sent", "delivered")))
        .values(
            status="delivered",
            delivered_at=func.coalesce(Message.delivered_at, now),
            opened_at=func.coalesce(Message.opened_at, now),
        )
    )


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    message_id: int
    member_no: str
    channel: str
    done: bool


def unsubscribe_target(session: Session, key: bytes, token: str) -> UnsubscribeTarget:
    msg, _ = _message_of(session, key, token, part="u")
    member = session.get(Member, msg.member_id)
    if member is None or msg.channel is None:
        raise NotFound("link_not_found", "This link is not valid; it may have been cut short.")
    return UnsubscribeTarget(msg.id, member.member_no, msg.channel, msg.unsubscribed_at is not None)


def unsubscribe(session: Session, key: bytes, token: str, *, now: datetime) -> UnsubscribeTarget:
    """Withdraw the member's consent for the channel the message came on."""
    target = unsubscribe_target(session, key, token)
    member = members.get_member(session, target.member_no)
    members.set_consents(
        session,
        Principal(kind="member", id=member.id, label=f"member:{member.member_no}"),
        member.member_no,
        Consents(**{target.channel: False}),
        now=now,
        source="unsubscribe_link",
    )
    session.execute(
        update(Message)
        .where(Message.id == target.message_id, Message.unsubscribed_at.is_(None))
        .values(unsubscribed_at=now)
    )
    return UnsubscribeTarget(target.message_id, target.member_no, target.channel, True)


def apply_status(
    session: Session, channel: str, reports: Sequence[tuple[str, str, str]], *, now: datetime
) -> int:
    """Delivery reports of a provider: (provider id, "delivered" | "failed" | "opened", error).
    A report for an unknown id is ignored; a message already delivered stays delivered; an
    opened message is delivered (the first opening is kept)."""
    changed = 0
    for provider_id, status, error in reports:
        if status == "opened":
            result = session.execute(
                update(Message)
                .where(
                    Message.provider_id == provider_id,
                    Message.channel == channel,
                    Message.status.in_(("sent", "failed", "delivered")),
                )
                .values(
                    status="delivered",
                    delivered_at=func.coalesce(Message.delivered_at, now),
                    opened_at=func.coalesce(Message.opened_at, now),
                )
            )
            changed += int(getattr(result, "rowcount", 0) or 0)
            continue
        values: dict[str, Any] = (
            {"status": "delivered", "delivered_at": now}
            if status == "delivered"
            else {"status": "failed", "last_error": (error or "undelivered")[:200]}
        )
        result = session.execute(
            update(Message)
            .where(
                Message.provider_id == provider_id,
                Message.channel == channel,
                Message.status.in_(("sent", "failed") if status == "delivered" else ("sent",)),
            )
            .values(**values)
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


# ---- dead letters ----------------------------------------------------------------------------


def dead_letters(
    session: Session, *, limit: int, offset: int
) -> tuple[list[tuple[Message, str]], int]:
    total = session.scalar(select(func.count()).where(Message.status == "dead")) or 0
    rows = session.execute(
        select(Message, Member.member_no)
        .join(Member, Member.id == Message.member_id)
        .where(Message.status == "dead")
        .order_by(Message.finished_at.desc(), Message.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [(m, no) for m, no in rows], int(total)


def retry(session: Session, actor: Principal, message_id: int, *, now: datetime) -> Message:
    """Queue a dead letter again with a fresh set of attempts (consent is checked again)."""
    msg = session.get(Message, message_id, with_for_update=True)
    if msg is None:
        raise NotFound("message_not_found", f"No message {message_id}.")
    if msg.status != "dead":
        raise Conflict("message_not_dead", "Only a message that could not be sent can be retried.")
    before = {"status": msg.status, "attempts": msg.attempts, "error": msg.last_error}
    msg.status, msg.attempts, msg.next_attempt_at, msg.finished_at = "queued", 0, now, None
    session.flush()
    audit.record(
        session,
        actor,
        "message.retry",
        "message",
        str(msg.id),
        before,
        {"status": "queued"},
        at=now,
    )
    return msg


# ---- the delivery report ---------------------------------------------------------------------


@dataclass
class SourceReport:
    kind: str
    code: str
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    suppressed: int = 0
    dropped: int = 0
    dead: int = 0
    conversions: int = 0


def report(
    session: Session, *, kind: str | None = None, code: str | None = None
) -> list[SourceReport]:
    """Per journey and campaign: messages by outcome, clicks, unsubscribes, and conversions (a
    member who ordered within the attribution window after a message was sent)."""
    window = timedelta(days=get_settings(session).attribution_days)
    where = []
    if kind is not None:
        where.append(Message.source_kind == kind)
    if code is not None:
        where.append(Message.source_code == code)

    def n(cond: Any) -> Any:
        return func.sum(case((cond, 1), else_=0))

    rows = session.execute(
        select(
            Message.source_kind,
            Message.source_code,
            n(Message.status.in_(("queued", "sending"))),
            n(Message.sent_at.is_not(None) & Message.status.in_(("sent", "delivered", "failed"))),
            n(Message.status == "delivered"),
            n(Message.status == "failed"),
            n(Message.opened_at.is_not(None) | Message.clicked_at.is_not(None)),
            n(Message.clicked_at.is_not(None)),
            n(Message.unsubscribed_at.is_not(None)),
            n(Message.status == "suppressed"),
            n(Message.status == "dropped"),
            n(Message.status == "dead"),
        )
        .where(*where)
        .group_by(Message.source_kind, Message.source_code)
        .order_by(Message.source_kind, Message.source_code)
    ).all()
    out = {(r[0], r[1]): SourceReport(r[0], r[1], *(int(x or 0) for x in r[2:])) for r in rows}
    # A conversion: a member with an order within the window after one of the source's sent
    # messages, counted once per source — one grouped query whatever the number of members.
    sent = Message.sent_at.is_not(None) & Message.status.in_(("sent", "delivered"))
    ordered = (
        select(Order.id)
        .where(
            Order.member_id == Message.member_id,
            Order.ordered_at >= Message.sent_at,
            Order.ordered_at <= _plus(session, Message.sent_at, window),
        )
        .exists()
    )
    for sk, sc, converted in session.execute(
        select(Message.source_kind, Message.source_code, func.count(distinct(Message.member_id)))
        .where(*where, sent, ordered)
        .group_by(Message.source_kind, Message.source_code)
    ):
        out[(sk, sc)].conversions = int(converted)
    return list(out.values())


def _plus(session: Session, at: Any, span: timedelta) -> Any:
    """``at + span`` in SQL, exact on both databases: PostgreSQL adds an interval; SQLite
    stores ``YYYY-MM-DD HH:MM:SS.ffffff`` text, so the seconds are added with ``strftime``
    and the microseconds kept as they were (text compares in time order)."""
    if session.get_bind().dialect.name != "sqlite":
        return at + literal(span, Interval())
    seconds = int(span.total_seconds())
    return func.strftime("%Y-%m-%d %H:%M:%S", at, f"{seconds:+d} seconds").op("||")(
        func.substr(at, 20)
    )
