"""Set-based issue of one coupon template to an audience given as a SELECT of member ids (a
saved segment, a campaign's audience, the recall job's dormant members).

Nothing goes through Python per member. On PostgreSQL one statement writes the coupons, their
history and one ``coupon.issued`` event each (data-modifying CTEs: the new coupons are not read
back); SQLite writes them with one ``INSERT … SELECT`` each. The deliveries of the events to
subscribed endpoints follow in one more per endpoint. The rules are the same as
``service.issue_many``:

- the template's row is locked first (``FOR UPDATE``; SQLite transactions are serial), so two
  issues of one template run one after the other;
- idempotent by (template, member, issue key): members already holding the key are skipped, so a
  rerun issues nothing twice (the unique index makes a second copy impossible anyway);
- only active members, of the template's tiers, below its per-member limit;
- at most the quantity left, lowest member ids first; ``issued_count`` moves by a guarded UPDATE.

Codes: ``service.code_block`` draws all of them at once with ``secrets`` (every letter uniform
over the 31-letter alphabet, about 59.4 bits a code) and sends them as one byte string; the
``n``-th eligible member (by id) takes the ``n``-th 12 letters. A code colliding with an existing
one (about 1 in 10¹² per coupon at a million coupons) fails the statement; it is retried inside a
savepoint with a fresh draw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    LargeBinary,
    Select,
    String,
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

_ATTEMPTS: Final = 3


@dataclass(frozen=True, slots=True)
class BulkReport:
    #: members the audience selected
    reached: int
    #: coupons issued now (a rerun: 0)
    issued: int
    #: quantity left after the issue (None: unlimited)
    left: int | None


def _code_expr(dialect: str, block: Any, n: Any) -> ColumnElement[str]:
    """Code ``n`` (1-based) of a ``service.code_block``: its 12 bytes, read as text."""
    part = func.substr(block, (n - 1) * service.CODE_LENGTH + 1, service.CODE_LENGTH)
    if dialect == "postgresql":
        return func.convert_from(part, "UTF8")
    return cast(part, String)


def eligible(
    session: Session,
    template: CouponTemplate,
    audience: Select[Any],
    key: str,
    *,
    member_no: bool = False,
) -> Select[Any]:
    """``SELECT member id`` (and with ``member_no`` the member's number) of the audience who
    may receive now: active, of the template's tiers, not holding this key, below the
    per-member limit; lowest ids first, at most the quantity left."""
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
    columns: list[Any] = [mid.label("member_id")]
    if member_no:
        columns.append(Member.member_no)
    q = (
        select(*columns)
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
    endpoints = events.subscribed(session, "coupon.issued")
    # The template's lock serialises issues of it: the rows after these ids that carry the
    # template and key are exactly this issue's (another transaction's rows committed
    # meanwhile carry another template or key).
    last_event = _last_id(session, WebhookEvent.id) if endpoints else 0
    last_coupon = _last_id(session, Coupon.id) if dialect != "postgresql" else 0
    # at most one coupon per member reached and no more than the quantity left: a code each
    codes = reached
    if template.total_quantity is not None:
        codes = min(codes, max(template.total_quantity - template.issued_count, 0))
    issued = 0
    for attempt in range(_ATTEMPTS):
        block = service.code_block(codes)
        try:
            with session.begin_nested():
                if dialect == "postgresql":
                    stmt = _issue_pg(session, ctx, template, audience, reason, key, block)
                else:
                    stmt = _insert_coupons(session, ctx, template, audience, reason, key, block)
                # an INSERT's row count is kept only on request
                result = session.execute(stmt.execution_options(preserve_rowcount=True))
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
        if dialect != "postgresql":  # PostgreSQL wrote history and events with the coupons
            mine = and_(
                Coupon.id > last_coupon, Coupon.template_id == template.id, Coupon.issue_key == key
            )
            _history(session, ctx, mine, reason)
            _events(session, ctx, template, mine, reason, key)
        _deliveries(session, ctx, template, key, last_event, endpoints)
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


def _last_id(session: Session, column: Any) -> int:
    return int(session.scalar(select(func.coalesce(func.max(column), 0))) or 0)


_COUPON_COLUMNS: Final = (
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
)


def _coupon_values(
    ctx: Ctx, template: CouponTemplate, code: Any, member: Any, reason: Reason, key: str
) -> list[Any]:
    valid_from, valid_until = service.rules_of(template).validity(ctx.now, ctx.tz)
    return [
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
    ]


def _drawn(
    session: Session,
    template: CouponTemplate,
    audience: Select[Any],
    key: str,
    block: bytes,
    dialect: str,
    *,
    member_no: bool = False,
) -> Select[Any]:
    """The eligible members, each with the code of its rank in the code block. No more members
    than the block has codes: the audience was counted in an earlier statement and may have
    grown since (members who joined it meanwhile are reached by a rerun of the issue)."""
    who = eligible(session, template, audience, key, member_no=member_no).subquery("who")
    rank = cast(func.row_number().over(order_by=who.c.member_id), Integer)
    ranked = select(*who.c, rank.label("rank")).subquery("ranked")
    code = _code_expr(dialect, literal(block, LargeBinary()), ranked.c.rank)
    return select(*[ranked.c[c.name] for c in who.c], code.label("code")).where(
        ranked.c.rank <= len(block) // service.CODE_LENGTH
    )


def _insert_coupons(
    session: Session,
    ctx: Ctx,
    template: CouponTemplate,
    audience: Select[Any],
    reason: Reason,
    key: str,
    block: bytes,
) -> Insert:
    """The ``INSERT … SELECT`` of the coupons (history and events follow in their own)."""
    drawn = _drawn(session, template, audience, key, block, "sqlite").subquery("drawn")
    values = _coupon_values(ctx, template, drawn.c.code, drawn.c.member_id, reason, key)
    return insert(Coupon).from_select(list(_COUPON_COLUMNS), select(*values))


def _issue_pg(
    session: Session,
    ctx: Ctx,
    template: CouponTemplate,
    audience: Select[Any],
    reason: Reason,
    key: str,
    block: bytes,
) -> Insert:
    """One statement on PostgreSQL: the drawn members (``w``), their coupons (``c``), the
    coupons' history (``h``) and, as the statement itself, one ``coupon.issued`` event per
    coupon. Its row count is the coupons issued. Writing all three from one read saves
    reading the new coupons back twice."""
    w = _drawn(session, template, audience, key, block, "postgresql", member_no=True).cte("w")
    values = _coupon_values(ctx, template, w.c.code, w.c.member_id, reason, key)
    c = (
        insert(Coupon)
        .from_select(list(_COUPON_COLUMNS), select(*values).order_by(w.c.member_id))
        .returning(Coupon.id)
        .cte("c")
    )
    h = insert(CouponHistory).from_select(
        ["coupon_id", "status", "event", "order_id", "at", "note"],
        select(
            c.c.id,
            literal("issued"),
            literal("issued"),
            literal(None),
            literal(ctx.now, UTCDateTime()),
            literal(reason),
        ),
    )
    return (
        insert(WebhookEvent)
        .from_select(
            ["event_type", "member_no", "payload", "created_at"],
            select(
                literal("coupon.issued"),
                w.c.member_no,
                _payload(ctx, template, w.c.code, reason, key, "postgresql"),
                literal(ctx.now, UTCDateTime()),
            ).order_by(w.c.member_id),
        )
        .add_cte(w, c, h.cte("h"))
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
) -> None:
    """One ``coupon.issued`` event per coupon (SQLite; PostgreSQL writes them in
    ``_issue_pg``)."""
    payload = _payload(ctx, template, Coupon.code, reason, key, "sqlite")
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


def _deliveries(
    session: Session,
    ctx: Ctx,
    template: CouponTemplate,
    key: str,
    last_event: int,
    endpoints: list[int],
) -> None:
    """The deliveries of this issue's events to the subscribed endpoints."""
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
