"""Ledger use cases that span points, growth and tiers, each audited.

These are what the API, other domains (orders, mall, campaigns) and the CLI call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.audit.models import AuditRecord
from patron.db import advisory_lock
from patron.errors import Conflict, Forbidden, Invalid, NotFound
from patron.kit.timeutil import business_date
from patron.ledger import domain, growth, queries, service
from patron.ledger.models import PointsAdjustment, PointsPosting, PointsRefund
from patron.ledger.service import Ctx, PostingResult
from patron.tiers import service as tiers


def _audit(
    session: Session, ctx: Ctx, action: str, entity: str, entity_id: str, after: dict[str, Any]
) -> None:
    audit.record(session, ctx.actor, action, entity, entity_id, None, after, at=ctx.now)


@dataclass(frozen=True, slots=True)
class EarnResult:
    posting: PostingResult
    growth_posting_id: int | None
    tier_changed_to: str | None


def earn(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    points: int,
    growth_value: int = 0,
    source_type: str,
    source_id: str,
    reason: str = "",
    pending_days: int | None = None,
    restores_id: int | None = None,
) -> EarnResult:
    if growth_value:
        domain.validate_points(growth_value, field="growth")
    result = service.earn(
        session,
        ctx,
        member_id,
        points=points,
        source_type=source_type,
        source_id=source_id,
        reason=reason,
        pending_days=pending_days,
        restores_id=restores_id,
    )
    growth_id = None
    changed = None
    if growth_value:
        growth_id = growth.earn(
            session,
            ctx,
            member_id,
            growth_value,
            source_type=source_type,
            source_id=source_id,
            reason=reason,
        )
        changed = tiers.on_growth_change(session, ctx, member_id)
    if not result.replayed:
        _audit(
            session,
            ctx,
            "points.earn",
            "member",
            str(member_id),
            {
                "posting_id": result.posting_id,
                "points": points,
                "growth": growth_value,
                "source": f"{source_type}:{source_id}",
                "pending_days": pending_days,
            },
        )
    return EarnResult(result, growth_id, changed)


def direct_earn(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    points: int,
    growth_value: int = 0,
    source_type: str,
    source_id: str,
    reason: str = "",
    pending_days: int | None = None,
) -> EarnResult:
    """A free-form earning named by an API caller (``POST .../points/earn``). It creates points
    from nothing, so it is capped by ``direct_earn_limit``: more is an adjustment, which a second
    person approves above its limits. Growth moves only with orders, actions and adjustments."""
    if growth_value:
        raise Invalid(
            "growth_not_allowed",
            "A direct earning cannot add growth: growth comes from orders and actions, or from "
            "an adjustment (POST .../points/adjustments with ledger 'growth').",
            details={"field": "growth"},
        )
    limit = ctx.settings.direct_earn_limit
    if isinstance(points, int) and points > limit:
        raise Invalid(
            "earn_over_limit",
            f"A direct earning may credit at most {limit} points; request an adjustment "
            "(POST .../points/adjustments) for more, which a second person approves above the "
            "approval limit.",
            details={"field": "points", "limit": limit},
        )
    stored = domain.api_source(source_type)
    _check_granted_today(session, ctx, points, stored, source_id)
    return earn(
        session,
        ctx,
        member_id,
        points=points,
        source_type=stored,
        source_id=source_id,
        reason=reason,
        pending_days=pending_days,
    )


def _check_granted_today(
    session: Session, ctx: Ctx, points: int, source_type: str, source_id: str
) -> None:
    """Earnings under the cap, one after another, would still mint without limit: what one
    caller credits this way per business day is held to ``adjustment_daily_limit``, as its
    adjustments are. A replay of an earning already made is not counted again."""
    key = f"earn:{source_type}:{source_id}"
    if session.scalar(select(PointsPosting.id).where(PointsPosting.idempotency_key == key)):
        return  # the earning replays (or conflicts) in service.earn
    advisory_lock(session, f"grant:{ctx.actor.key}")
    day = business_date(ctx.now, ctx.tz)
    start = datetime.combine(day, time(), ctx.tz).astimezone(UTC)
    actor = ctx.actor
    mine = (
        AuditRecord.actor_id == actor.id
        if actor.id is not None
        else AuditRecord.actor_label == actor.label[:120]
    )
    # The audit trail is the one place that says who made an earning.
    done = sum(
        int(after.get("points") or 0)
        for after in session.scalars(
            select(AuditRecord.after).where(
                AuditRecord.actor_type == actor.kind,
                mine,
                AuditRecord.action == "points.earn",
                AuditRecord.at >= start,
            )
        )
        if after and str(after.get("source", "")).startswith(domain.API_SOURCE_PREFIX)
    )
    limit = ctx.settings.adjustment_daily_limit
    if isinstance(points, int) and done + points > limit:
        raise Invalid(
            "earn_over_limit",
            f"Direct earnings by one caller may credit at most {limit} points per business day "
            f"({done} so far today); request an adjustment (POST .../points/adjustments), which "
            "a second person approves.",
            details={"field": "points", "limit": limit, "per": "day"},
        )


def spend(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    points: int,
    source_type: str,
    source_id: str,
    reason: str = "",
) -> PostingResult:
    result = service.spend(
        session,
        ctx,
        member_id,
        points=points,
        source_type=source_type,
        source_id=source_id,
        reason=reason,
    )
    if not result.replayed:
        _audit(
            session,
            ctx,
            "points.spend",
            "member",
            str(member_id),
            {
                "posting_id": result.posting_id,
                "points": points,
                "source": f"{source_type}:{source_id}",
            },
        )
    return result


def cancel_spend(
    session: Session, ctx: Ctx, member_id: int, posting_id: int, *, owner: str | None = None
) -> PostingResult:
    result = service.cancel_spend(session, ctx, member_id, posting_id, owner=owner)
    if not result.replayed:
        _audit(
            session,
            ctx,
            "points.spend_cancel",
            "member",
            str(member_id),
            {
                "posting_id": posting_id,
                "reversal_id": result.posting_id,
            },
        )
    return result


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_id: int
    points_clawed: int
    growth_clawed: int
    from_pending: int
    from_available: int
    to_debt: int
    replayed: bool
    tier_changed_to: str | None


def refund(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    source_type: str,
    source_id: str,
    refund_id: str,
    order_total_fen: int,
    refund_amount_fen: int,
) -> RefundResult:
    """Claw back, proportionally, the points and growth an order earned (P6, invariant 7)."""
    domain.validate_points(order_total_fen, field="order_total_fen", upper=domain.MAX_AMOUNT_FEN)
    domain.validate_points(
        refund_amount_fen, field="refund_amount_fen", upper=domain.MAX_AMOUNT_FEN
    )
    service.begin(session, ctx, member_id)
    existing = session.scalar(
        select(PointsRefund).where(
            PointsRefund.source_type == source_type,
            PointsRefund.source_id == source_id,
            PointsRefund.refund_id == refund_id,
        )
    )
    if existing is not None:
        if (existing.member_id, existing.refund_amount_fen, existing.order_total_fen) != (
            member_id,
            refund_amount_fen,
            order_total_fen,
        ):
            raise Conflict("idempotency_conflict", f"refund {refund_id!r} was recorded differently")
        return RefundResult(
            existing.id, existing.points_clawed, existing.growth_clawed, 0, 0, 0, True, None
        )
    prev = session.execute(
        select(
            func.coalesce(func.sum(PointsRefund.refund_amount_fen), 0),
            func.coalesce(func.sum(PointsRefund.points_clawed), 0),
            func.coalesce(func.sum(PointsRefund.growth_clawed), 0),
            func.min(PointsRefund.order_total_fen),
            func.max(PointsRefund.order_total_fen),
        ).where(
            PointsRefund.member_id == member_id,
            PointsRefund.source_type == source_type,
            PointsRefund.source_id == source_id,
        )
    ).one()
    returned_before, points_before, growth_before = int(prev[0]), int(prev[1]), int(prev[2])
    if prev[3] is not None and (prev[3] != order_total_fen or prev[4] != order_total_fen):
        raise Conflict("order_total_mismatch", "order total differs from earlier refunds")
    earned = service.earned_by_source(session, member_id, source_type, source_id)
    g_earned, g_effective = growth.earned_by_source(session, member_id, source_type, source_id)
    points = domain.proportional_clawback(
        earned=earned,
        order_total=order_total_fen,
        returned_before=returned_before,
        return_amount=refund_amount_fen,
        clawed_before=points_before,
    )
    g = domain.proportional_clawback(
        earned=g_earned,
        order_total=order_total_fen,
        returned_before=returned_before,
        return_amount=refund_amount_fen,
        clawed_before=growth_before,
    )
    claw = service.clawback_points(
        session,
        ctx,
        member_id,
        points,
        source_type=source_type,
        source_id=source_id,
        refund_id=refund_id,
    )
    g_done = growth.clawback(
        session,
        ctx,
        member_id,
        g,
        source_type=source_type,
        source_id=source_id,
        refund_id=refund_id,
        effective_at=g_effective,
    )
    row = PointsRefund(
        member_id=member_id,
        source_type=source_type,
        source_id=source_id,
        refund_id=refund_id,
        order_total_fen=order_total_fen,
        refund_amount_fen=refund_amount_fen,
        points_clawed=points,
        growth_clawed=g_done,
        created_at=ctx.now,
    )
    session.add(row)
    session.flush()
    changed = tiers.on_growth_change(session, ctx, member_id, refund=True) if g_done else None
    _audit(
        session,
        ctx,
        "points.refund_clawback",
        "member",
        str(member_id),
        {
            "refund": f"{source_type}:{source_id}:{refund_id}",
            "points": points,
            "growth": g_done,
            "to_debt": claw.to_debt,
        },
    )
    return RefundResult(
        row.id, points, g_done, claw.from_pending, claw.from_available, claw.to_debt, False, changed
    )


# --------------------------------------------------------------------------- adjustments


def request_adjustment(
    session: Session,
    ctx: Ctx,
    member_id: int,
    *,
    ledger: str,
    amount: int,
    reason: str,
    always_approve: bool = False,
) -> PointsAdjustment:
    """Apply at once within the approval limit; above it, wait for a second approver.
    ``always_approve``: wait whatever the amount (a batch adjustment from the console)."""
    if ledger not in ("points", "growth"):
        raise Invalid("invalid_ledger", "ledger must be 'points' or 'growth'")
    domain.validate_signed_points(amount)
    if not reason.strip():
        raise Invalid("reason_required", "An adjustment needs a reason.")
    needs_approval = always_approve or abs(amount) > ctx.settings.adjustment_approval_limit
    if not needs_approval:
        done = _applied_today_without_approval(session, ctx, ledger)
        needs_approval = done + abs(amount) > ctx.settings.adjustment_daily_limit
    if needs_approval and amount < 0:
        _refuse_overdraw(session, ctx, member_id, ledger, amount)
    row = PointsAdjustment(
        member_id=member_id,
        ledger=ledger,
        amount=amount,
        reason=reason[:200],
        status="pending_approval" if needs_approval else "applied",
        requested_by=ctx.actor.label[:120],
        requested_by_key=ctx.actor.key[:80],
        created_at=ctx.now,
        decided_at=None if needs_approval else ctx.now,
    )
    session.add(row)
    session.flush()
    if not needs_approval:
        _apply(session, ctx, row)
    _audit(
        session,
        ctx,
        "points.adjust_request",
        "points_adjustment",
        str(row.id),
        {
            "member_id": member_id,
            "ledger": ledger,
            "amount": amount,
            "reason": reason,
            "status": row.status,
        },
    )
    return row


def _refuse_overdraw(session: Session, ctx: Ctx, member_id: int, ledger: str, amount: int) -> None:
    """A deduction that waits for approval is refused now if the member could not pay it now,
    rather than queued for an approver to find out. (Applying it re-checks under the ledger's
    guarded write: the balance may still fall in between.)"""
    service.begin(session, ctx, member_id)  # lock and settle: due releases, expiry, debt
    if ledger == "points":
        available = queries.balance(session, member_id, ctx.now).available
        if available + amount < 0:
            raise domain.InsufficientPoints(-amount, max(available, 0))
    else:
        current, _ = growth.balance(session, member_id)
        if current + amount < 0:
            raise Conflict(
                "insufficient_growth",
                f"cannot remove {-amount} growth; the member has {current}",
                details={"requested": -amount, "available": current},
            )


def _applied_today_without_approval(session: Session, ctx: Ctx, ledger: str) -> int:
    """The magnitude this staff member adjusted on ``ledger`` today without a second approver.
    The requester's lock makes two adjustments at once by one person count each other."""
    advisory_lock(session, f"adjust:{ctx.actor.key}")
    day = business_date(ctx.now, ctx.tz)
    start = datetime.combine(day, time(), ctx.tz).astimezone(UTC)
    return int(
        session.scalar(
            select(func.coalesce(func.sum(func.abs(PointsAdjustment.amount)), 0)).where(
                PointsAdjustment.requested_by_key == ctx.actor.key[:80],
                PointsAdjustment.ledger == ledger,
                PointsAdjustment.status == "applied",
                PointsAdjustment.decided_by.is_(None),
                PointsAdjustment.created_at >= start,
            )
        )
        or 0
    )


def _apply(session: Session, ctx: Ctx, row: PointsAdjustment) -> None:
    key = f"adjust:{row.id}"
    if row.ledger == "points":
        service.adjust_points(session, ctx, row.member_id, row.amount, key=key, reason=row.reason)
    else:
        service.begin(session, ctx, row.member_id)  # the member lock also covers growth/tiers
        growth.adjust(session, ctx, row.member_id, row.amount, key=key, reason=row.reason)
        tiers.on_growth_change(session, ctx, row.member_id)


def decide_adjustment(
    session: Session, ctx: Ctx, adjustment_id: int, *, approve: bool, note: str = ""
) -> PointsAdjustment:
    row = session.get(PointsAdjustment, adjustment_id, with_for_update=True)
    if row is None:
        raise NotFound("adjustment_not_found", f"No adjustment {adjustment_id}.")
    if row.status != "pending_approval":
        raise Conflict("adjustment_decided", f"Adjustment {adjustment_id} is already {row.status}.")
    if row.requested_by_key == ctx.actor.key[:80] and not domain.may_decide_own(
        row.created_at, ctx.now, ctx.settings.self_approval_delay_hours
    ):
        raise Forbidden("approver_must_differ", "A second person must approve this adjustment.")
    if approve:
        _apply(session, ctx, row)
    row.status = "applied" if approve else "rejected"
    row.decided_by = ctx.actor.label[:120]
    row.decision_note = note[:200] or None
    row.decided_at = ctx.now
    session.flush()
    _audit(
        session,
        ctx,
        "points.adjust_approve" if approve else "points.adjust_reject",
        "points_adjustment",
        str(row.id),
        {
            "status": row.status,
            "note": note,
            "self_decided": row.requested_by_key == ctx.actor.key[:80],
        },
    )
    return row
