"""Coupon templates and issuance (SPEC C1, C2): use cases that flush and never commit.

An issue is idempotent by (template, member, issue key) — the unique index makes a second copy
impossible — and limited by the template's total and per-member quantities. Every issue of a
template first locks the template's row (``FOR UPDATE``; SQLite transactions are serial), so
the per-member count read after it cannot race, and ``issued_count`` moves by a guarded UPDATE
that never passes ``total_quantity``. Issuing to many members is set-based: one read of who may
receive, one multi-row INSERT of coupons, one of their history, one event INSERT.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NoReturn

from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.coupons import domain
from patron.coupons.domain import CouponSettings, Reason, TemplateRules
from patron.coupons.models import Coupon, CouponHistory, CouponTemplate
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.program import service as program
from patron.tiers import service as tiers
from patron.tiers.models import MemberTier
from patron.webhooks import events

#: unambiguous at a till: no 0/O, 1/I/L
ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH: Final = 12
#: members per INSERT batch of a set-based issue
CHUNK: Final = 5_000


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


#: random bytes below this map evenly onto the alphabet (8 bytes per letter); the rest are drawn
#: again, so every letter of a code is uniform, as ``new_code``'s are
_EVEN: Final = len(ALPHABET) * (256 // len(ALPHABET))
_LETTER_OF: Final = bytes(ord(ALPHABET[b % len(ALPHABET)]) for b in range(256))
_UNEVEN: Final = bytes(range(_EVEN, 256))


def code_block(n: int) -> bytes:
    """``n`` codes at once, as one ASCII string of ``n * CODE_LENGTH`` letters drawn with
    ``secrets`` (a set-based issue cuts code ``i`` out of it in SQL)."""
    need = n * CODE_LENGTH
    out = b""
    while len(out) < need:
        # a little more than the share left after the rejection, so one draw nearly always does
        out += secrets.token_bytes((need - len(out)) * 33 // 31 + 64).translate(None, _UNEVEN)
    return out[:need].translate(_LETTER_OF)


def get_settings(session: Session) -> CouponSettings:
    return program.get_section(session, domain.SECTION, CouponSettings)


def rules_of(template: CouponTemplate) -> TemplateRules:
    return TemplateRules.model_validate(template.rules)


def _audit(session: Session, ctx: Ctx, action: str, entity_id: str, after: dict[str, Any]) -> None:
    audit.record(session, ctx.actor, action, "coupon", entity_id, None, after, at=ctx.now)


# ---- templates --------------------------------------------------------------------------------


def get_template(session: Session, code: str, *, lock: bool = False) -> CouponTemplate:
    stmt = select(CouponTemplate).where(CouponTemplate.code == code)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    template = session.scalar(stmt)
    if template is None:
        raise NotFound("coupon_template_not_found", f"No coupon template {code}.")
    return template


def template_names(session: Session, codes: Sequence[str]) -> dict[str, str]:
    """Template code → name, for the codes that name a template (one read)."""
    rows = session.execute(
        select(CouponTemplate.code, CouponTemplate.name).where(CouponTemplate.code.in_(codes))
    )
    return dict(rows.all())  # (a Result has keys(): dict() would take it for a mapping)


def list_templates(session: Session) -> list[CouponTemplate]:
    return list(session.scalars(select(CouponTemplate).order_by(CouponTemplate.code)))


def put_template(
    session: Session,
    ctx: Ctx,
    code: str,
    *,
    name: str,
    rules: TemplateRules,
    total_quantity: int | None,
    per_member_limit: int,
    points_price: int,
    status: str,
) -> tuple[CouponTemplate, bool]:
    """Create or change a template (by code); True when created. Coupons already issued keep
    their validity; their value and applicability follow the template."""
    template = session.scalar(
        select(CouponTemplate).where(CouponTemplate.code == code).with_for_update()
    )
    rules_json = rules.model_dump(mode="json")
    after = {
        "name": name,
        "rules": rules_json,
        "total_quantity": total_quantity,
        "per_member_limit": per_member_limit,
        "points_price": points_price,
        "status": status,
    }
    if (
        template is not None
        and total_quantity is not None
        and total_quantity < template.issued_count
    ):
        raise Conflict(
            "quantity_below_issued",
            f"{template.issued_count} coupons of {code} are already issued; the total quantity "
            "cannot be lower.",
            details={"field": "total_quantity"},
        )
    created = template is None
    before = None
    if template is None:
        template = CouponTemplate(code=code, issued_count=0, created_at=ctx.now)
        session.add(template)
    else:
        before = {
            "name": template.name,
            "rules": template.rules,
            "total_quantity": template.total_quantity,
            "per_member_limit": template.per_member_limit,
            "points_price": template.points_price,
            "status": template.status,
        }
    template.name = name
    template.kind = rules.kind
    template.rules = rules_json
    template.total_quantity = total_quantity
    template.per_member_limit = per_member_limit
    template.points_price = points_price
    template.status = status
    template.updated_at = ctx.now
    session.flush()
    audit.record(
        session,
        ctx.actor,
        "coupon_template.create" if created else "coupon_template.update",
        "coupon_template",
        code,
        before,
        after,
        at=ctx.now,
    )
    return template, created


def parse_rules(raw: dict[str, Any]) -> TemplateRules:
    try:
        return TemplateRules.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Invalid(
            "invalid_coupon_template",
            f"The coupon template is not valid: {first['msg']}.",
            details={"field": ".".join(str(p) for p in ("rules", *first["loc"]))},
        ) from None


# ---- issuance ---------------------------------------------------------------------------------


@dataclass
class IssueReport:
    """What a (batch) issue did, per member id."""

    issued: list[Coupon] = field(default_factory=list)
    #: already held a coupon with this issue key (a replay)
    already: list[int] = field(default_factory=list)
    #: member id → reason code (over_member_limit, sold_out, wrong_tier, member_not_active)
    refused: dict[int, str] = field(default_factory=dict)


def issue_many(
    session: Session,
    ctx: Ctx,
    template_code: str,
    member_ids: Sequence[int],
    *,
    reason: Reason,
    key: str,
    posting_id: int | None = None,
) -> IssueReport:
    """Issue one coupon of the template to each member, set-based and idempotent on rerun.
    When the quantity left is short, the lowest member ids are served first."""
    template = get_template(session, template_code, lock=True)
    if template.status != "active":
        raise Conflict(
            "coupon_template_paused",
            f"Coupon template {template_code} is paused: it issues nothing.",
        )
    rules = rules_of(template)
    report = IssueReport()
    wanted = sorted(set(member_ids))
    base_tier = tiers.get_ladder(session).tiers[0].code if rules.tiers else None
    candidates: list[int] = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        held = (
            select(func.count(Coupon.id))
            .where(Coupon.template_id == template.id, Coupon.member_id == Member.id)
            .scalar_subquery()
        )
        same_key = (
            select(Coupon.id)
            .where(
                Coupon.template_id == template.id,
                Coupon.member_id == Member.id,
                Coupon.issue_key == key,
            )
            .exists()
        )
        tier = func.coalesce(MemberTier.tier_code, base_tier or "")
        rows = session.execute(
            select(Member.id, Member.status, same_key, held, tier)
            .outerjoin(MemberTier, MemberTier.member_id == Member.id)
            .where(Member.id.in_(chunk))
        ).all()
        found = {r[0] for r in rows}
        for mid in chunk:
            if mid not in found:
                report.refused[mid] = "member_not_found"
        for mid, status, replay, count, tier_code in rows:
            if replay:
                report.already.append(mid)
            elif status != "active":
                report.refused[mid] = "member_not_active"
            elif rules.tiers and tier_code not in rules.tiers:
                report.refused[mid] = "wrong_tier"
            elif count >= template.per_member_limit:
                report.refused[mid] = "over_member_limit"
            else:
                candidates.append(mid)
    candidates.sort()
    if template.total_quantity is not None:
        left = template.total_quantity - template.issued_count
        for mid in candidates[max(left, 0) :]:
            report.refused[mid] = "sold_out"
        candidates = candidates[: max(left, 0)]
    if not candidates:
        return report
    # The guard holds the invariant even if a caller forgot the lock.
    moved = session.execute(
        update(CouponTemplate)
        .where(
            CouponTemplate.id == template.id,
            (CouponTemplate.total_quantity.is_(None))
            | (CouponTemplate.issued_count + len(candidates) <= CouponTemplate.total_quantity),
        )
        .values(issued_count=CouponTemplate.issued_count + len(candidates))
        .returning(CouponTemplate.issued_count)
    ).scalar_one_or_none()
    if moved is None:  # pragma: no cover - the lock makes this unreachable
        raise Conflict("coupon_sold_out", f"Coupon template {template_code} has none left.")
    template.issued_count = moved
    for start in range(0, len(candidates), CHUNK):
        report.issued.extend(
            _insert(
                session,
                ctx,
                template,
                rules,
                candidates[start : start + CHUNK],
                reason,
                key,
                posting_id,
            )
        )
    return report


def _insert(
    session: Session,
    ctx: Ctx,
    template: CouponTemplate,
    rules: TemplateRules,
    member_ids: list[int],
    reason: Reason,
    key: str,
    posting_id: int | None,
) -> list[Coupon]:
    valid_from, valid_until = rules.validity(ctx.now, ctx.tz)
    rows = [
        {
            "code": new_code(),
            "template_id": template.id,
            "member_id": mid,
            "reason": reason,
            "issue_key": key,
            "status": "issued",
            "valid_from": valid_from,
            "valid_until": valid_until,
            "issued_at": ctx.now,
            "posting_id": posting_id,
            "discount_fen": 0,
        }
        for mid in member_ids
    ]
    made = list(session.scalars(insert(Coupon).returning(Coupon), rows))
    _history(session, [(c.id, "issued", "issued", None, reason) for c in made], ctx.now)
    events.emit_many(
        session,
        [
            events.NewEvent(
                "coupon.issued",
                {
                    "code": c.code,
                    "template": template.code,
                    "reason": reason,
                    "valid_until": c.valid_until.isoformat(),
                },
                member_id=c.member_id,
            )
            for c in made
        ],
        ctx.now,
    )
    if len(made) == 1:
        c = made[0]
        _audit(
            session,
            ctx,
            "coupon.issue",
            c.code,
            {"template": template.code, "member_id": c.member_id, "reason": reason, "key": key},
        )
    else:
        audit.record(
            session,
            ctx.actor,
            "coupon.issue_batch",
            "coupon_template",
            template.code,
            None,
            {"reason": reason, "key": key, "issued": len(made)},
            at=ctx.now,
        )
    return made


def _history(
    session: Session, rows: list[tuple[int, str, str, int | None, str]], at: datetime
) -> None:
    if rows:
        session.execute(
            insert(CouponHistory),
            [
                {
                    "coupon_id": cid,
                    "status": st,
                    "event": ev,
                    "order_id": oid,
                    "at": at,
                    "note": note,
                }
                for cid, st, ev, oid, note in rows
            ],
        )


def _refused(code: str, template_code: str) -> NoReturn:
    t = template_code
    if code == "over_member_limit":
        raise Conflict(
            "coupon_over_member_limit", f"The member already holds the most coupons of {t} allowed."
        )
    if code == "sold_out":
        raise Conflict("coupon_sold_out", f"No coupons of {t} are left to issue.")
    if code == "wrong_tier":
        raise Conflict("coupon_not_for_tier", f"Coupons of {t} are for other membership tiers.")
    if code == "member_not_found":
        raise NotFound("member_not_found", "No such member.")
    raise Conflict("member_not_active", "The member is not active; no coupon was issued.")


def issue(
    session: Session,
    ctx: Ctx,
    template_code: str,
    member_id: int,
    *,
    reason: Reason,
    ref: str = "",
    posting_id: int | None = None,
) -> tuple[Coupon, bool]:
    """One coupon to one member; (coupon, replayed). A refusal is a 4xx with its reason."""
    key = domain.issue_key(reason, ref, at=ctx.now, tz=ctx.tz)
    report = issue_many(
        session, ctx, template_code, [member_id], reason=reason, key=key, posting_id=posting_id
    )
    if report.issued:
        return report.issued[0], False
    if report.already:
        existing = session.scalar(
            select(Coupon)
            .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
            .where(
                CouponTemplate.code == template_code,
                Coupon.member_id == member_id,
                Coupon.issue_key == key,
            )
        )
        assert existing is not None
        return existing, True
    _refused(report.refused[member_id], template_code)


def exchange(
    session: Session, ctx: Ctx, member_id: int, template_code: str, ref: str
) -> tuple[Coupon, bool]:
    """A coupon taken for points (the mall): the points are spent through the ledger, in the
    same transaction, keyed by the same reference, so a retry replays both.

    Locks in the order every flow takes them, the member's ledger before the template: an
    order that issues a reward coupon holds the member and then locks its template, so taking
    the template first here could deadlock with it."""
    template = get_template(session, template_code)
    if template.points_price <= 0:
        raise Conflict(
            "coupon_not_exchangeable", f"Coupons of {template_code} cannot be taken for points."
        )
    ledger.begin(session, ctx, member_id)
    template = get_template(session, template_code, lock=True)
    if template.points_price <= 0:
        raise Conflict(
            "coupon_not_exchangeable", f"Coupons of {template_code} cannot be taken for points."
        )
    key = domain.issue_key("exchange", ref, at=ctx.now, tz=ctx.tz)
    existing = session.scalar(
        select(Coupon).where(
            Coupon.template_id == template.id,
            Coupon.member_id == member_id,
            Coupon.issue_key == key,
        )
    )
    if existing is not None:
        return existing, True
    spent = flows.spend(
        session,
        ctx,
        member_id,
        points=template.points_price,
        source_type="coupon_exchange",
        source_id=f"{template_code}:{ref}"[:64],
        reason=f"coupon {template_code}",
    )
    return issue(
        session,
        ctx,
        template_code,
        member_id,
        reason="exchange",
        ref=ref,
        posting_id=spent.posting_id,
    )


# ---- wallet, void, history --------------------------------------------------------------------


def wallet(
    session: Session, member_id: int, *, include_spent: bool = False
) -> list[tuple[Coupon, CouponTemplate]]:
    stmt = (
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.member_id == member_id)
    )
    if not include_spent:
        stmt = stmt.where(Coupon.status == "issued")
    stmt = stmt.order_by(Coupon.status, Coupon.valid_until, Coupon.id)
    return [(c, t) for c, t in session.execute(stmt)]


def get_coupon(session: Session, code: str) -> tuple[Coupon, CouponTemplate]:
    row = session.execute(
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.code == code.upper())
    ).first()
    if row is None:
        raise NotFound("coupon_not_found", f"No coupon {code}.")
    return row[0], row[1]


def history(session: Session, coupon_id: int) -> list[CouponHistory]:
    return list(
        session.scalars(
            select(CouponHistory)
            .where(CouponHistory.coupon_id == coupon_id)
            .order_by(CouponHistory.id)
        )
    )


def void(session: Session, ctx: Ctx, code: str, note: str) -> Coupon:
    coupon, template = get_coupon(session, code)
    voided = session.execute(
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == "issued")
        .values(status="voided")
        .returning(Coupon.id)
    ).scalar_one_or_none()
    if voided is None:
        raise Conflict(
            "coupon_not_voidable",
            f"Coupon {code} is {coupon.status}; only an unused coupon is voided.",
        )
    session.refresh(coupon)
    _history(session, [(coupon.id, "voided", "voided", None, note[:200])], ctx.now)
    events.emit(
        session,
        "coupon.voided",
        {"code": coupon.code, "template": template.code, "note": note[:200]},
        ctx.now,
        member_id=coupon.member_id,
    )
    _audit(session, ctx, "coupon.void", coupon.code, {"note": note[:200]})
    return coupon


def member_ids_by_no(session: Session, member_nos: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        select(Member.member_no, Member.id).where(Member.member_no.in_(list(member_nos)))
    )
    return dict(rows.all())  # (a Result has keys(): dict() would take it for a mapping)


def counts_by_template(session: Session) -> dict[int, dict[str, int]]:
    """Coupons per template and status (console)."""
    out: dict[int, dict[str, int]] = {}
    for tid, status, n in session.execute(
        select(Coupon.template_id, Coupon.status, func.count()).group_by(
            Coupon.template_id, Coupon.status
        )
    ):
        out.setdefault(tid, {})[status] = n
    return out
