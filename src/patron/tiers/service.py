"""Tier use cases: ladder settings, current tier, upgrades, evaluation, overrides, history.

Tier rows are only written while the member's points-account lock is held (see
``patron.ledger.store.lock_account``), which serialises all tier changes of a member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Invalid
from patron.ledger import growth
from patron.ledger.models import GrowthPosting
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.program import service as program
from patron.tiers import domain
from patron.tiers.domain import TierLadder
from patron.tiers.models import MemberTier, TierChange
from patron.webhooks import events

SECTION = "tiers"


def get_ladder(session: Session) -> TierLadder:
    return program.get_section(session, SECTION, TierLadder)


def put_ladder(session: Session, principal: Principal, ladder: TierLadder, now: datetime) -> None:
    """Store the ladder (audited). Members' tier rows are not touched: a member holding a tier
    the new ladder lacks counts as the base tier from now on (``state``), and moves up when
    their growth next changes or at their next evaluation."""
    program.put_section(session, principal, SECTION, ladder, now=now)


def forecast(
    session: Session, draft: TierLadder, now: datetime, tz: ZoneInfo
) -> domain.LadderForecast:
    """Where members (erased ones aside) would stand at their next evaluation under ``draft``
    and under the saved ladder, from their growth in each ladder's window as of ``now``.

    One grouped query counts members per tier row × override × growth band (the bands of
    ``domain.growth_bounds``: at most 22 for two five-tier ladders), so no member is loaded and
    the pure rules then place a handful of groups. Reads only."""
    saved = get_ladder(session)
    bounds = domain.growth_bounds(saved, draft)
    starts = {
        "draft": domain.window_start(draft.qualification_window, now, tz),
        "saved": domain.window_start(saved.qualification_window, now, tz),
    }
    per_member = (
        select(
            GrowthPosting.member_id.label("member_id"),
            *(
                func.sum(
                    case((GrowthPosting.effective_at >= start, GrowthPosting.amount), else_=0)
                ).label(name)
                for name, start in starts.items()
            ),
        )
        .where(GrowthPosting.effective_at >= min(starts.values()))
        .group_by(GrowthPosting.member_id)
        .subquery()
    )

    def band(total: Any) -> Any:
        growth_value = func.coalesce(total, 0)
        steps = [(growth_value >= b, i + 1) for i, b in reversed(list(enumerate(bounds)))]
        return case(*steps, else_=0)

    held = case((MemberTier.override_until > now, 1), else_=0)
    grouped = (
        select(
            MemberTier.tier_code.label("code"),
            held.label("held"),
            band(per_member.c.draft).label("draft"),
            band(per_member.c.saved).label("saved"),
        )
        .select_from(Member)
        .outerjoin(MemberTier, MemberTier.member_id == Member.id)
        .outerjoin(per_member, per_member.c.member_id == Member.id)
        .where(Member.status != "erased")
        .subquery()
    )
    c = grouped.c
    rows = session.execute(
        select(c.code, c.held, c.draft, c.saved, func.count()).group_by(
            c.code, c.held, c.draft, c.saved
        )
    )
    groups = [
        domain.MemberGroup(
            current=code,
            held=bool(held_flag),
            growth=domain.band_floor(bounds, int(draft_band)),
            saved_growth=domain.band_floor(bounds, int(saved_band)),
            members=int(n),
        )
        for code, held_flag, draft_band, saved_band, n in rows
    ]
    return domain.forecast(saved, draft, groups)


@dataclass(frozen=True, slots=True)
class TierState:
    code: str
    since: datetime | None
    window_growth: int
    next_evaluation_at: datetime | None
    grace_until: datetime | None
    override_until: datetime | None
    override_reason: str | None


def _row(session: Session, member_id: int) -> MemberTier | None:
    return session.get(MemberTier, member_id, populate_existing=True)


def window_growth(session: Session, ctx: Ctx, member_id: int, ladder: TierLadder) -> int:
    start = domain.window_start(ladder.qualification_window, ctx.now, ctx.tz)
    return growth.window_total(session, member_id, start)


def state(session: Session, ctx: Ctx, member_id: int) -> TierState:
    ladder = get_ladder(session)
    row = _row(session, member_id)
    code = row.tier_code if row else ladder.base.code
    try:
        ladder.index(code)
    except KeyError:  # the operator removed the tier: show the base tier
        code = ladder.base.code
    return TierState(
        code=code,
        since=row.since if row else None,
        window_growth=window_growth(session, ctx, member_id, ladder),
        next_evaluation_at=row.next_evaluation_at if row else None,
        grace_until=row.grace_until if row else None,
        override_until=row.override_until if row else None,
        override_reason=row.override_reason if row else None,
    )


def _set(
    session: Session,
    ctx: Ctx,
    member_id: int,
    ladder: TierLadder,
    *,
    to: str,
    kind: str,
    reason: str,
    growth_value: int,
    grace_until: datetime | None = None,
    override_until: datetime | None = None,
    override_reason: str | None = None,
) -> None:
    row = _row(session, member_id)
    before = row.tier_code if row else ladder.base.code
    next_eval = (
        grace_until
        if grace_until is not None
        else domain.next_evaluation(ladder.qualification_window, ctx.now, ctx.tz)
    )
    if row is None:
        row = MemberTier(member_id=member_id, tier_code=to, since=ctx.now, updated_at=ctx.now)
        session.add(row)
    if before != to:
        row.since = ctx.now
    row.tier_code = to
    row.next_evaluation_at = next_eval
    row.grace_until = grace_until
    row.override_until = override_until
    row.override_reason = override_reason
    row.updated_at = ctx.now
    session.add(
        TierChange(
            member_id=member_id,
            from_code=before,
            to_code=to,
            kind=kind,
            reason=reason[:200],
            growth=growth_value,
            actor=ctx.actor.label[:120],
            at=ctx.now,
        )
    )
    if before != to:
        events.tier_changed(
            session,
            member_id,
            from_tier=before,
            to_tier=to,
            cause=kind,
            growth=growth_value,
            now=ctx.now,
        )
    session.flush()


def _override_active(row: MemberTier | None, now: datetime) -> bool:
    return row is not None and row.override_until is not None and row.override_until > now


def on_growth_change(
    session: Session, ctx: Ctx, member_id: int, *, refund: bool = False
) -> str | None:
    """Upgrade at once when growth crosses a threshold; with ``demote_on_refund`` a refund may
    demote at once. Returns the new tier code when it changed."""
    ladder = get_ladder(session)
    row = _row(session, member_id)
    if _override_active(row, ctx.now):
        return None
    current = row.tier_code if row else ladder.base.code
    value = window_growth(session, ctx, member_id, ladder)
    up = domain.upgrade_target(ladder, current, value)
    if up is not None:
        _set(
            session,
            ctx,
            member_id,
            ladder,
            to=up.code,
            kind="upgrade",
            reason="growth reached the threshold",
            growth_value=value,
        )
        return up.code
    if refund:
        down = domain.refund_demotion_target(ladder, current, value)
        if down is not None:
            _set(
                session,
                ctx,
                member_id,
                ladder,
                to=down.code,
                kind="refund_demotion",
                reason="refund took growth below the threshold",
                growth_value=value,
            )
            return down.code
    return None


def evaluate_member(session: Session, ctx: Ctx, member_id: int, ladder: TierLadder) -> str:
    """Periodic evaluation of one member (caller holds the member's lock)."""
    row = _row(session, member_id)
    if row is None or _override_active(row, ctx.now):
        return "skipped"
    value = window_growth(session, ctx, member_id, ladder)
    ev = domain.evaluate(ladder, row.tier_code, value, now=ctx.now, grace_until=row.grace_until)
    if ev.action == "keep":
        row.grace_until = None
        row.override_until = None
        row.next_evaluation_at = domain.next_evaluation(
            ladder.qualification_window, ctx.now, ctx.tz
        )
        row.updated_at = ctx.now
    elif ev.action == "grace":
        if row.grace_until != ev.grace_until:
            _set(
                session,
                ctx,
                member_id,
                ladder,
                to=row.tier_code,
                kind="grace",
                reason="below the retention threshold",
                growth_value=value,
                grace_until=ev.grace_until,
            )
    else:
        _set(
            session,
            ctx,
            member_id,
            ladder,
            to=ev.tier,
            kind=ev.action,
            reason=f"evaluation: {value} growth in window",
            growth_value=value,
        )
    session.flush()
    return ev.action


def override(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    tier_code: str,
    reason: str,
    until: datetime | None,
) -> None:
    ladder = get_ladder(session)
    try:
        ladder.index(tier_code)
    except KeyError as exc:
        raise Invalid("unknown_tier", f"No tier {tier_code!r} in the ladder.") from exc
    if not reason.strip():
        raise Invalid("reason_required", "A tier override needs a reason.")
    if until is not None and until <= ctx.now:
        raise Invalid("invalid_until", "until must be in the future")
    value = window_growth(session, ctx, member_id, ladder)
    _set(
        session,
        ctx,
        member_id,
        ladder,
        to=tier_code,
        kind="override",
        reason=reason,
        growth_value=value,
        override_until=until,
        override_reason=reason,
    )
    row = _row(session, member_id)
    if row is not None and until is not None:
        row.next_evaluation_at = until
    elif row is not None:
        row.next_evaluation_at = None  # held until another override
        row.override_until = datetime.max.replace(tzinfo=ctx.now.tzinfo)


def history(
    session: Session, member_id: int, *, limit: int = 50, offset: int = 0
) -> tuple[list[TierChange], int]:
    total = session.scalar(
        select(func.count()).select_from(TierChange).where(TierChange.member_id == member_id)
    )
    rows = session.scalars(
        select(TierChange)
        .where(TierChange.member_id == member_id)
        .order_by(TierChange.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


def codes_of(session: Session, member_ids: list[int], base: str) -> dict[int, str]:
    """Current tier code of each member in one query (no row = ``base``)."""
    found: dict[int, str] = {}
    if member_ids:
        found = {
            int(r.member_id): r.tier_code
            for r in session.execute(
                select(MemberTier.member_id, MemberTier.tier_code).where(
                    MemberTier.member_id.in_(member_ids)
                )
            )
        }
    return {mid: found.get(mid, base) for mid in member_ids}


def override_by_hand(
    session: Session,
    ctx: Ctx,
    member_id: int,
    member_no: str,
    *,
    tier_code: str,
    reason: str,
    until: datetime | None,
) -> None:
    """A staff override with its audit record (``tier.override``): the REST API and the
    console both set tiers by hand through here."""
    before = state(session, ctx, member_id).code
    override(session, ctx, member_id, tier_code=tier_code, reason=reason, until=until)
    audit.record(
        session,
        ctx.actor,
        "tier.override",
        "member",
        member_no,
        {"tier": before},
        {"tier": tier_code, "reason": reason, "until": until.isoformat() if until else None},
        at=ctx.now,
    )
