"""Full and partial returns: refunds, proportional clawback, points payments given back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from patron.coupons import redemption as coupons
from patron.errors import Conflict, Invalid, NotFound
from patron.ledger import flows
from patron.ledger import service as ledger
from patron.ledger.service import Ctx
from patron.members.models import Member
from patron.orders.models import Order, OrderReturn, ReturnLine
from patron.orders.schemas import ReturnIn
from patron.orders.service import content_hash, lock_order
from patron.webhooks import service as webhooks

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
    # and whether this return is already recorded: one statement (and one for the lines)
    done_id = (
        select(OrderReturn.id)
        .where(OrderReturn.order_id == Order.id, OrderReturn.external_id == data.external_id)
        .scalar_subquery()
    )
    found = session.execute(
        select(Order, Member.member_no, done_id)
        .join(Member, Member.id == Order.member_id)
        .options(lazyload(Order.payments))
        .where(Order.source == source, Order.external_id == external_id)
        .execution_options(populate_existing=True)
    ).first()
    if found is None:
        raise NotFound(
            "order_not_found",
            f"No order {external_id} from {source} has been received. If the return arrived "
            "before its order, send the order first and then retry the return.",
        )
    order, member_no, done_id_value = found
    digest = content_hash(data.model_dump(mode="json"))
    if done_id_value is not None:
        done = session.get(OrderReturn, done_id_value)
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
    ledger.begin(session, ctx, order.member_id)
    by_no = {ln.line_no: ln for ln in order.lines}
    wanted: dict[int, int] = {}
    for i, rl in enumerate(data.lines):
        if rl.line_no not in by_no:
            raise Invalid(
                "unknown_line",
                f"Order {external_id} has no line {rl.line_no}.",
                details={"field": f"lines.{i}.line_no"},
            )
        wanted[rl.line_no] = wanted.get(rl.line_no, 0) + rl.quantity
    for no, qty in wanted.items():
        ln = by_no[no]
        if ln.returned_quantity + qty > ln.quantity:
            raise Invalid(
                "return_exceeds_purchase",
                f"Line {no}: {qty} returned but only {ln.quantity - ln.returned_quantity} of "
                f"{ln.quantity} remain.",
                details={"field": "lines", "line_no": no},
            )
    # Proportional by quantity; the return that completes a line takes the remainder.
    parts: list[tuple[int, int, int, int]] = []  # line_no, quantity, cash, points
    for no, qty in sorted(wanted.items()):
        ln = by_no[no]
        final = ln.returned_quantity + qty == ln.quantity
        cash = ln.paid_fen - ln.refunded_fen if final else ln.paid_fen * qty // ln.quantity
        pts = ln.points - ln.refunded_points if final else ln.points * qty // ln.quantity
        ln.returned_quantity += qty
        ln.refunded_fen += cash
        ln.refunded_points += pts
        parts.append((no, qty, cash, pts))
    refund_fen = sum(p[2] for p in parts)
    points_back = sum(p[3] for p in parts)
    source_id = f"{source}:{external_id}"
    changed = None
    clawed = (0, 0, 0)  # points, growth, to debt
    if order.paid_fen > 0 and refund_fen > 0 and (order.points_earned or order.growth_earned):
        refunded = flows.refund(
            session,
            ctx,
            order.member_id,
            source_type="order",
            source_id=source_id,
            refund_id=data.external_id,
            order_total_fen=order.paid_fen,
            refund_amount_fen=refund_fen,
        )
        clawed = (refunded.points_clawed, refunded.growth_clawed, refunded.to_debt)
        changed = refunded.tier_changed_to
    if points_back:
        # The points that paid for the returned goods come back as a new lot.
        flows.earn(
            session,
            ctx,
            order.member_id,
            points=points_back,
            source_type="order_return",
            source_id=f"{source_id}:{data.external_id}"[:64],
            reason=f"points payment returned for order {external_id}",
            pending_days=0,
            restores_id=order.spend_posting_id,
        )
    # Inserted complete, once the ledger has answered: never updated right after.
    record = OrderReturn(
        order_id=order.id,
        member_id=order.member_id,
        external_id=data.external_id,
        returned_at=data.returned_at.astimezone(UTC),
        refund_fen=refund_fen,
        points_returned=points_back,
        points_clawed=clawed[0],
        growth_clawed=clawed[1],
        to_debt=clawed[2],
        content_hash=digest,
        created_at=ctx.now,
    )
    session.add(record)
    session.flush()
    session.add_all(
        ReturnLine(
            return_id=record.id, line_no=no, quantity=qty, refund_fen=cash, points_returned=pts
        )
        for no, qty, cash, pts in parts
    )
    order.refunded_fen += refund_fen
    all_back = all(ln.returned_quantity == ln.quantity for ln in order.lines)
    order.status = "returned" if all_back else "partially_returned"
    session.flush()
    coupons.on_return(session, ctx, order)  # coupons: give back those fully returned
    ref = {"member_no": member_no, "source": source, "external_id": external_id}
    webhooks.emit(
        session,
        "order.returned",
        {
            **ref,
            "return_id": data.external_id,
            "refund_fen": refund_fen,
            "points_returned": points_back,
            "points_clawed_back": record.points_clawed,
            "growth_clawed_back": record.growth_clawed,
            "to_debt": record.to_debt,
        },
        ctx.now,
    )
    # The clawback and tier move announce themselves (points.clawed_back, tier.changed).
    return ReturnResult(record, order, changed, False)
