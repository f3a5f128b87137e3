"""Full and partial returns: refunds, proportional clawback, points payments given back."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from patron.coupons.models import Coupon, CouponTemplate
from patron.coupons.service import get_settings as coupon_settings
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import service as ledger
from patron.ledger import store
from patron.ledger.domain import LotView
from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsHold,
    PointsLot,
    PointsPosting,
    PointsRefund,
)
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.orders import facts, return_plan, return_writer
from patron.orders.models import Order, OrderReturn
from patron.orders.schemas import ReturnIn
from patron.orders.service import content_hash, lock_order
from patron.tiers import domain as tier_domain
from patron.tiers import service as tiers
from patron.tiers.domain import TierLadder
from patron.tiers.models import MemberTier
from patron.webhooks import events as webhook_events

# ---- returns ---------------------------------------------------------------------------------


@dataclass
class ReturnResult:
    record: OrderReturn
    order: Order
    tier_changed_to: str | None
    replayed: bool


def record_return(
    session: Session, ctx: Ctx, source: str, external_id: str, data: ReturnIn
) -> ReturnResult:
    lock_order(session, source, external_id)
    # the order with its lines (its payments are not needed for a return), its member's number
    # and whether this return is already recorded: one statement
    done_id = (
        select(OrderReturn.id)
        .where(OrderReturn.order_id == Order.id, OrderReturn.external_id == data.external_id)
        .scalar_subquery()
    )
    found = (
        session.execute(
            select(Order, Member.member_no, done_id)
            .join(Member, Member.id == Order.member_id)
            .options(joinedload(Order.lines))
            .where(Order.source == source, Order.external_id == external_id)
            .execution_options(populate_existing=True)
        )
        .unique()
        .first()
    )
    if found is None:
        raise NotFound(
            "order_not_found",
            f"No order {external_id} from {source} has been received. If the return arrived "
            "before its order, send the order first and then retry the return.",
        )
    order, member_no, done_id_value = found
    digest = content_hash(data.model_dump(mode="json"))
    if done_id_value is not None:
        done = session.get(OrderReturn, done_id_value, options=[selectinload(OrderReturn.lines)])
        assert done is not None
        if done.content_hash != digest:
            raise Conflict(
                "return_conflict",
                f"Return {data.external_id} was already received with different content.",
            )
        return ReturnResult(done, order, None, True)
    if data.returned_at < order.ordered_at:
        raise Invalid(
            "return_before_order",
            "returned_at is earlier than the order.",
            details={"field": "returned_at"},
        )
    parts = return_plan.split_lines(
        _line_states(order), [(rl.line_no, rl.quantity) for rl in data.lines], external_id
    )
    record, changed = _apply(session, ctx, order, member_no, parts, data, digest)
    return ReturnResult(record, order, changed, False)


def _apply(
    session: Session,
    ctx: Ctx,
    order: Order,
    member_no: str,
    parts: tuple[return_plan.LinePart, ...],
    data: ReturnIn,
    digest: str,
) -> tuple[OrderReturn, str | None]:
    """Plan the return and write it; returns the return and the tier it moved the member to."""
    planned = _plan(session, ctx, order, member_no, parts, data, digest)
    by_no = {ln.line_no: ln for ln in order.lines}
    for part in parts:
        ln = by_no[part.line_no]
        ln.returned_quantity += part.quantity
        ln.refunded_fen += part.refund_fen
        ln.refunded_points += part.points
    record = return_writer.write_return(session, ctx.actor, planned)
    order.refunded_fen = planned.order_refunded_fen
    order.status = planned.order_status
    session.flush()
    return record, planned.tier_move.to_code if planned.tier_move else None


# ---- plan, then write ------------------------------------------------------------------------


def _line_states(order: Order) -> tuple[return_plan.LineState, ...]:
    return tuple(
        return_plan.LineState(
            ln.line_no,
            ln.quantity,
            ln.returned_quantity,
            ln.paid_fen,
            ln.refunded_fen,
            ln.points,
            ln.refunded_points,
        )
        for ln in order.lines
    )


def _plan(
    session: Session,
    ctx: Ctx,
    order: Order,
    member_no: str,
    parts: tuple[return_plan.LinePart, ...],
    data: ReturnIn,
    digest: str,
) -> return_plan.ReturnPlan:
    """Lock the member's ledger, read the return's facts (one statement; one more for the open
    lots when points are taken from them, one for the coupons when the order redeemed some)
    and plan it. A ledger with pending points or lots due is settled first, by the ledger."""
    ladder = tiers.get_ladder(session)
    account = facts.lock_account(session, order.member_id, ctx.now)
    ret = return_plan.ReturnOrder(
        order_id=order.id,
        source=order.source,
        external_id=order.external_id,
        paid_fen=order.paid_fen,
        points_earned=order.points_earned,
        growth_earned=order.growth_earned,
        refunded_fen=order.refunded_fen,
        spend_posting_id=order.spend_posting_id,
        lines=_line_states(order),
    )
    found = return_facts(session, ctx, ret, order.member_id, member_no, data.external_id, ladder)
    if found.settling_due:
        # release due pending points, expire due lots, repay debt from what is released (rare:
        # the facts are read again after it, without the account's pre-settling balances)
        ledger.settle(session, ctx, order.member_id)
        found = return_facts(
            session, ctx, ret, order.member_id, member_no, data.external_id, ladder
        )
    elif account is not None:
        found = replace(found, available=account.available, debt=account.debt)
    own: tuple[int, ...] = ()
    lots: tuple[LotView, ...] = ()
    if return_plan.lots_needed(ret, parts, found):
        lots, own = open_lots(session, order.member_id, f"{order.source}:{order.external_id}")
    redeemed = redeemed_coupons(session, order.id) if found.coupons_redeemed else ()
    return return_plan.plan_return(
        ret,
        parts,
        found,
        ladder,
        ctx.settings.expiry,
        return_id=data.external_id,
        returned_at=data.returned_at.astimezone(UTC),
        digest=digest,
        own_lots=own,
        open_lots=lots,
        actor=ctx.actor.label,
        now=ctx.now,
        tz=ctx.tz,
        coupons=redeemed,
        restore_on_return=bool(redeemed) and coupon_settings(session).restore_on_return,
    )


def redeemed_coupons(session: Session, order_id: int) -> tuple[return_plan.RedeemedCoupon, ...]:
    """The coupons redeemed on the order, with the lines their discount was spread over."""
    rows = session.execute(
        select(
            Coupon.id,
            Coupon.code,
            CouponTemplate.code,
            Coupon.member_id,
            Coupon.allocation,
            Coupon.valid_until,
        )
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.order_id == order_id, Coupon.status == "redeemed")
        .order_by(Coupon.id)
    ).all()
    return tuple(
        return_plan.RedeemedCoupon(
            cid, code, template, member_id, tuple(int(no) for no in (allocation or {})), until
        )
        for cid, code, template, member_id, allocation, until in rows
    )


def return_facts(
    session: Session,
    ctx: Ctx,
    order: return_plan.ReturnOrder,
    member_id: int,
    member_no: str,
    return_id: str,
    ladder: TierLadder,
) -> return_plan.ReturnFacts:
    """Everything the plan needs about the member's ledger, in one statement (under the lock);
    it also reads who subscribes to the events the return emits."""
    mid = member_id
    source_id = f"{order.source}:{order.external_id}"
    clawback_key = f"clawback:order:{source_id}:{return_id}"
    restore_key = f"earn:order_return:{f'{source_id}:{return_id}'[:64]}"
    now = ctx.now
    start = tier_domain.window_start(ladder.qualification_window, now, ctx.tz)

    def scalar(q: Any) -> Any:
        return q.scalar_subquery()

    refunds = (
        PointsRefund.member_id == mid,
        PointsRefund.source_type == "order",
        PointsRefund.source_id == source_id,
    )
    earned = (
        GrowthPosting.member_id == mid,
        GrowthPosting.kind == "earn",
        GrowthPosting.source_type == "order",
        GrowthPosting.source_id == source_id,
    )
    same_refund = (
        PointsRefund.source_type == "order",
        PointsRefund.source_id == source_id,
        PointsRefund.refund_id == return_id,
    )
    own_hold = (
        PointsHold.member_id == mid,
        PointsHold.source_type == "order",
        PointsHold.source_id == source_id,
        PointsHold.status == "pending",
    )
    spend = order.spend_posting_id or 0
    row = session.execute(
        select(
            scalar(select(PointsAccount.available).where(PointsAccount.member_id == mid)).label(
                "available"
            ),
            scalar(select(PointsAccount.debt).where(PointsAccount.member_id == mid)).label("debt"),
            store.settling_due(mid, now).label("settling_due"),
            exists().where(PointsPosting.idempotency_key == clawback_key).label("points_key_taken"),
            exists().where(GrowthPosting.idempotency_key == clawback_key).label("growth_key_taken"),
            *(
                scalar(select(col).where(*same_refund)).label(f"refund_{col.key}")
                for col in (
                    PointsRefund.member_id,
                    PointsRefund.refund_amount_fen,
                    PointsRefund.order_total_fen,
                    PointsRefund.points_clawed,
                    PointsRefund.growth_clawed,
                )
            ),
            *(
                scalar(select(col).where(PointsPosting.idempotency_key == restore_key)).label(
                    f"restore_{col.key}"
                )
                for col in (
                    PointsPosting.id,
                    PointsPosting.member_id,
                    PointsPosting.kind,
                    PointsPosting.available_delta,
                )
            ),
            *(
                scalar(select(col).where(*own_hold).order_by(PointsHold.id).limit(1)).label(
                    f"hold_{col.key}"
                )
                for col in (PointsHold.id, PointsHold.amount)
            ),
            scalar(
                select(func.coalesce(func.sum(PointsRefund.refund_amount_fen), 0)).where(*refunds)
            ).label("refunded"),
            scalar(
                select(func.coalesce(func.sum(PointsRefund.points_clawed), 0)).where(*refunds)
            ).label("points_clawed"),
            scalar(
                select(func.coalesce(func.sum(PointsRefund.growth_clawed), 0)).where(*refunds)
            ).label("growth_clawed"),
            scalar(select(func.min(PointsRefund.order_total_fen)).where(*refunds)).label("low"),
            scalar(select(func.max(PointsRefund.order_total_fen)).where(*refunds)).label("high"),
            scalar(
                select(
                    func.coalesce(
                        func.sum(PointsPosting.available_delta + PointsPosting.pending_delta), 0
                    )
                ).where(
                    PointsPosting.member_id == mid,
                    PointsPosting.kind == "earn",
                    PointsPosting.source_type == "order",
                    PointsPosting.source_id == source_id,
                )
            ).label("points_earned"),
            scalar(select(func.coalesce(func.sum(GrowthPosting.amount), 0)).where(*earned)).label(
                "growth_earned"
            ),
            scalar(select(func.min(GrowthPosting.effective_at)).where(*earned)).label("growth_at"),
            scalar(select(GrowthAccount.balance).where(GrowthAccount.member_id == mid)).label(
                "growth_balance"
            ),
            scalar(
                select(PointsPosting.available_delta).where(
                    PointsPosting.id == spend,
                    PointsPosting.member_id == mid,
                    PointsPosting.kind == "redeem",
                )
            ).label("spent"),
            scalar(
                select(
                    func.coalesce(
                        func.sum(PointsPosting.available_delta + PointsPosting.pending_delta), 0
                    )
                ).where((PointsPosting.reverses_id == spend) | (PointsPosting.restores_id == spend))
            ).label("given_back"),
            scalar(select(MemberTier.tier_code).where(MemberTier.member_id == mid)).label("tier"),
            scalar(select(MemberTier.override_until).where(MemberTier.member_id == mid)).label(
                "override_until"
            ),
            scalar(
                select(func.coalesce(func.sum(GrowthPosting.amount), 0)).where(
                    GrowthPosting.member_id == mid, GrowthPosting.effective_at >= start
                )
            ).label("window"),
            exists()
            .where(Coupon.order_id == order.order_id, Coupon.status == "redeemed")
            .label("coupons"),
            webhook_events.subscriptions_column(session).label("subscriptions"),
        )
    ).one()
    webhook_events.prime_subscriptions(session, row.subscriptions)
    spent = None if row.spent is None else -int(row.spent) - int(row.given_back or 0)
    return return_plan.ReturnFacts(
        member_id=mid,
        member_no=member_no,
        available=None if row.available is None else int(row.available),
        debt=int(row.debt or 0),
        settling_due=bool(row.settling_due),
        hold=None if row.hold_id is None else (int(row.hold_id), int(row.hold_amount)),
        refund_taken=None
        if row.refund_member_id is None
        else (
            int(row.refund_member_id),
            int(row.refund_refund_amount_fen),
            int(row.refund_order_total_fen),
            int(row.refund_points_clawed),
            int(row.refund_growth_clawed),
        ),
        clawback_key_taken=bool(row.points_key_taken) or bool(row.growth_key_taken),
        restore_taken=None
        if row.restore_id is None
        else (
            int(row.restore_id),
            int(row.restore_member_id),
            str(row.restore_kind),
            int(row.restore_available_delta),
        ),
        refunded_before=int(row.refunded or 0),
        points_clawed_before=int(row.points_clawed or 0),
        growth_clawed_before=int(row.growth_clawed or 0),
        refund_totals=(row.low, row.high),
        points_earned=int(row.points_earned or 0),
        growth_earned=int(row.growth_earned or 0),
        growth_effective_at=row.growth_at,
        growth_balance=None if row.growth_balance is None else int(row.growth_balance),
        spend_left=spent,
        tier_row_code=row.tier,
        override_until=row.override_until,
        window_growth=int(row.window or 0),
        coupons_redeemed=bool(row.coupons),
    )


def open_lots(
    session: Session, member_id: int, source_id: str
) -> tuple[tuple[LotView, ...], tuple[int, ...]]:
    """The member's lots that still hold points, locked in id order, and the ids of those the
    order earned (a clawback takes them first)."""
    stmt = (
        select(
            PointsLot.id,
            PointsLot.remaining,
            PointsLot.expires_at,
            and_(PointsLot.source_type == "order", PointsLot.source_id == source_id).label("own"),
        )
        .where(PointsLot.member_id == member_id, PointsLot.remaining > 0)
        .order_by(PointsLot.id)
    )
    if store.dialect(session) == "postgresql":
        stmt = stmt.with_for_update()
    rows = session.execute(stmt).all()
    return (
        tuple(LotView(r.id, r.remaining, r.expires_at) for r in rows),
        tuple(r.id for r in rows if r.own),
    )
