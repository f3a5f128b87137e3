"""Set-based issue of one coupon template to an audience given as a SELECT of member ids (a
saved segment, a campaign's audience, the recall job's dormant members).

Nothing goes through Python per member: one ``INSERT … SELECT`` writes the coupons (codes drawn
by the database), one writes their history, one their ``coupon.issued`` events, one the
deliveries of those events. The rules are the same as ``service.issue_many``:

- the template's row is locked first (``FOR UPDATE``; SQLite transactions are serial), so two
  issues of one template run one after the other;
- idempotent by (template, member, issue key): members already holding the key are skipped, so a
  rerun issues nothing twice (the unique index makes a second copy impossible anyway);
- only active members, of the template's tiers, below its per-member limit;
- at most the quantity left, lowest member ids first; ``issued_count`` moves by a guarded UPDATE.

Codes: 12 characters of the coupon alphabet, one random byte each (PostgreSQL: the random part
of ``gen_random_uuid()``, a strong generator; SQLite: ``random()``). 256 is not a multiple of 31,
so the first eight letters are drawn slightly more often (9/256 against 8/256) — about 59 bits
of entropy per code instead of 59.4. A code colliding with an existing one (about 1 in 10¹² per
coupon at a million coupons) fails the statement; it is retried inside a savepoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    not_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.coupons import service
from patron.coupons.domain import Reason, issue_key
from patron.coupons.models import Coupon, CouponHistory, CouponTemplate
from patron.db import UTCDateTime
from patron.errors import Conflict
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.segments import service as segments
from patron.segments.compile import compile_rule
from patron.tiers import service as tiers
from patron.tiers.models import MemberTier
from patron.webhooks import events
from patron.webhooks.models import WebhookDelivery, WebhookEvent

#: the random byte positions of a version-4 UUID (6 and 8 carry the version and variant)
_UUID_RANDOM_BYTES: Final = (0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 13)
_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class BulkReport:
    #: members the audience selected
    reached: int
    #: coupons issued now (a rerun: 0)
    issued: int
    #: quantity left after the issue (None: unlimited)
    left: int | None


def _code_expr(dialect: str, random_bytes: Any) -> ColumnElement[str]:
    alphabet = literal(service.ALPHABET)
    if dialect == "postgresql":
        chars = [
            func.substr(alphabet, func.get_byte(random_bytes, i) % 31 + 1, 1)
            for i in _UUID_RANDOM_BYTES
        ]
    else:
        # random() % 31 lies in -30..30; adding 31 before the second % gives 0..30 evenly
        chars = [
            func.substr(alphabet, ((func.random() % 31) + 31) % 31 + 1, 1)
            for _ in range(service.CODE_LENGTH)
        ]
    out: Any = chars[0]
    for c in chars[1:]:
        out = out.concat(c)
    return out  # type: ignore[no-any-return]


def eligible(
    session: Session, template: CouponTemplate, audience: Select[Any], key: str
) -> Select[Any]:
    """``SELECT member id`` of the audience who may receive now: active, of the template's
    tiers, not holding this key, below the per-member limit; lowest ids first, at most the
    quantity left."""
    src = audience.subquery("audience")
    mid = next(iter(src.c))
    rules = service.rules_of(template)
    held = (
        select(func.count(Coupon.id))
        .where(Coupon.template_id == template.id, Coupon.member_id == mid)
        .scalar_subquery()
    )
    same_key = exists().where(
        Coupon.template_id == template.id, Coupon.member_id == mid, Coupon.issue_key == key
    )
    tier_ok: ColumnElement[bool] = true()
    if rules.tiers:
        base = tiers.get_ladder(session).tiers[0].code
        tier_ok = func.coalesce(
            select(MemberTier.tier_code).where(MemberTier.member_id == mid).scalar_subquery(),
            base,
        ).in_(rules.tiers)
    q = (
        select(mid.label("member_id"))
        .distinct()
        .join(Member, Member.id == mid)
        .where(Member.status == "active", not_(same_key), tier_ok)
    )
    if template.per_member_limit > 1:
        q = q.where(held < template.per_member_limit)
    else:  # holding any coupon of the template is the limit: the key's index answers it
        q = q.where(
            not_(exists().where(Coupon.template_id == template.id, Coupon.member_id == mid))
        )
    if template.total_quantity is not None:
        q = q.order_by(mid).limit(max(template.total_quantity - template.issued_count, 0))
    return q


def issue_to_audience(
    session: Session,
    ctx: Ctx,
    template_code: str,
    audience: Select[Any],
    *,
    reason: Reason,
    key: str,
    note: str = "",
) -> BulkReport:
    """Issue one coupon of the template to each member the audience selects (its first column
    is the member id), set-based and idempotent by ``key``."""
    template = service.get_template(session, template_code, lock=True)
    if template.status != "active":
        raise Conflict(
            "coupon_template_paused",
            f"Coupon template {template_code} is paused: it issues nothing.",
        )
    reached = int(
        session.scalar(select(func.count()).select_from(audience.distinct().subquery())) or 0
    )
    dialect = session.get_bind().dialect.name
    last_coupon = int(session.scalar(select(func.coalesce(func.max(Coupon.id), 0))) or 0)
    issued = 0
    for attempt in range(_ATTEMPTS):
        try:
            with session.begin_nested():
                ins = _insert_coupons(session, ctx, template, audience, reason, key, dialect)
                # an INSERT's row count is kept only on request
                result = session.execute(ins.execution_options(preserve_rowcount=True))
                issued = int(getattr(result, "rowcount", 0))
            break
        except IntegrityError:  # a drawn code already exists: draw again
            if attempt == _ATTEMPTS - 1:
                raise
    left = None if template.total_quantity is None else template.total_quantity
    if issued:
        moved = session.execute(
            update(CouponTemplate)
            .where(
                CouponTemplate.id == template.id,
                (CouponTemplate.total_quantity.is_(None))
                | (CouponTemplate.issued_count + issued <= CouponTemplate.total_quantity),
            )
            .values(issued_count=CouponTemplate.issued_count + issued)
            .returning(CouponTemplate.issued_count)
        ).scalar_one_or_none()
        if moved is None:  # pragma: no cover - the lock and the LIMIT make this unreachable
            raise Conflict("coupon_sold_out", f"Coupon template {template_code} has none left.")
        template.issued_count = moved
        mine = and_(
            Coupon.id > last_coupon, Coupon.template_id == template.id, Coupon.issue_key == key
        )
        _history(session, ctx, mine, reason)
        _events(session, ctx, template, mine, reason, key, dialect)
    if left is not None:
        left = template.total_quantity - template.issued_count  # type: ignore[operator]
    audit.record(
        session,
        ctx.actor,
        "coupon.issue_batch",
        "coupon_template",
        template.code,
        None,
        {"reason": reason, "key": key, "reached": reached, "issued": issued, "note": note},
        at=ctx.now,
    )
    return BulkReport(reached=reached, issued=issued, left=left)


def _insert_coupons(
    session: Session,
    ctx: Ctx,
    template: CouponTemplate,
    audience: Select[Any],
    reason: Reason,
    key: str,
    dialect: str,
) -> Insert:
    """The ``INSERT … SELECT`` of the coupons."""
    valid_from, valid_until = service.rules_of(template).validity(ctx.now, ctx.tz)
    who = eligible(session, template, audience, key).subquery("who")
    if dialect == "postgresql":
        drawn = select(
            who.c.member_id, func.uuid_send(func.gen_random_uuid()).label("rb")
        ).subquery("drawn")
        code = _code_expr(dialect, drawn.c.rb)
        member = drawn.c.member_id
    else:
        code = _code_expr(dialect, None)
        member = who.c.member_id
    rows = select(
        code,
        literal(template.id),
        member,
        literal(reason),
        literal(key),
        literal("issued"),
        literal(valid_from, UTCDateTime()),
        literal(valid_until, UTCDateTime()),
        literal(ctx.now, UTCDateTime()),
        literal(0),
    )
    return insert(Coupon).from_select(
        [
            "code",
            "template_id",
            "member_id",
            "reason",
            "issue_key",
            "status",
            "valid_from",
            "valid_until",
            "issued_at",
            "discount_fen",
        ],
        rows,
    )


def _payload(
    ctx: Ctx, template: CouponTemplate, code: Any, reason: str, key: str, dialect: str
) -> Any:
    """The ``coupon.issued`` payload of ``service.issue_many`` plus the issue key. The codes
    are alphanumeric, so it is assembled as text around them."""
    valid_until = service.rules_of(template).validity(ctx.now, ctx.tz)[1]
    rest = json.dumps(
        {
            "template": template.code,
            "reason": reason,
            "valid_until": valid_until.isoformat(),
            "issue_key": key,
        }
    )
    text: Any = literal('{"code": "').concat(code).concat(literal('", ' + rest[1:]))
    return cast(text, postgresql.JSONB) if dialect == "postgresql" else text


def _history(session: Session, ctx: Ctx, mine: ColumnElement[bool], reason: str) -> None:
    session.execute(
        insert(CouponHistory).from_select(
            ["coupon_id", "status", "event", "order_id", "at", "note"],
            select(
                Coupon.id,
                literal("issued"),
                literal("issued"),
                literal(None),
                literal(ctx.now, UTCDateTime()),
                literal(reason),
            ).where(mine),
        )
    )


def _events(
    session: Session,
    ctx: Ctx,
    template: CouponTemplate,
    mine: ColumnElement[bool],
    reason: str,
    key: str,
    dialect: str,
) -> None:
    """One ``coupon.issued`` event per coupon, then the deliveries of the subscribed endpoints."""
    payload = _payload(ctx, template, Coupon.code, reason, key, dialect)
    last_event = int(session.scalar(select(func.coalesce(func.max(WebhookEvent.id), 0))) or 0)
    session.execute(
        insert(WebhookEvent).from_select(
            ["event_type", "member_no", "payload", "created_at"],
            select(
                literal("coupon.issued"),
                Member.member_no,
                payload,
                literal(ctx.now, UTCDateTime()),
            )
            .join(Member, Member.id == Coupon.member_id)
            .where(mine)
            .order_by(Coupon.id),
        )
    )
    endpoints = events.subscribed(session, "coupon.issued")
    if not endpoints:
        return
    # The template's lock serialises issues of it, and the template and key are in the
    # payload: the events after ``last_event`` with them are exactly this issue's (another
    # transaction's events committed meanwhile are not).
    ours = and_(
        WebhookEvent.id > last_event,
        WebhookEvent.event_type == "coupon.issued",
        WebhookEvent.payload["template"].as_string() == template.code,
        WebhookEvent.payload["issue_key"].as_string() == key,
    )
    for ep in endpoints:
        session.execute(
            insert(WebhookDelivery).from_select(
                ["endpoint_id", "event_id", "status", "attempts", "next_attempt_at"],
                select(
                    literal(ep),
                    WebhookEvent.id,
                    literal("pending"),
                    literal(0),
                    literal(ctx.now, UTCDateTime()),
                ).where(ours),
            )
        )


def member_select(ids: list[int]) -> Select[Any]:
    """An audience from a list of ids (tests, small callers)."""
    return select(Member.id).where(Member.id.in_(ids))


def issue_to_segment(
    session: Session, ctx: Ctx, template_code: str, segment_code: str, ref: str
) -> BulkReport:
    """A manual issue to a saved segment's members as of now; key ``manual:REF``, the same as
    an issue to a list, so either replays the other."""
    seg = segments.get(session, segment_code)
    rule = segments.parse(seg.rule)
    ids = compile_rule(rule, now=ctx.now, tz=ctx.tz, lifecycle=segments.lifecycle_settings(session))
    key = issue_key("manual", ref, at=ctx.now, tz=ctx.tz)
    return issue_to_audience(
        session, ctx, template_code, ids, reason="manual", key=key, note=f"segment {seg.code}"
    )
