"""The rows an order plan writes, as dicts for INSERTs (shared by the set-based writer and the
one-statement writer), the order object a response is built from, and the plans' events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm.attributes import set_committed_value

from patron.auth.principal import Principal
from patron.orders.models import Order, OrderLine, OrderPayment
from patron.orders.plan import OrderPlan, PlanLine, Posting
from patron.webhooks import events


def posting_row(p: OrderPlan, posting: Posting) -> dict[str, Any]:
    return {
        "member_id": p.member_id,
        "kind": posting.kind,
        "available_delta": posting.available_delta,
        "pending_delta": 0,
        "debt_delta": 0,
        "reason": posting.reason,
        "source_type": p.source_type,
        "source_id": p.source_id,
        "idempotency_key": posting.key,
        "reverses_id": None,
        "actor": p.actor,
        "created_at": p.now,
    }


def lot_row(p: OrderPlan, posting_id: Any) -> dict[str, Any]:
    assert p.earn is not None
    return {
        "member_id": p.member_id,
        "posting_id": posting_id,
        "amount": p.earn.available_delta,
        "remaining": p.earn.available_delta,
        "earned_at": p.effective_at,
        "expires_at": p.lot_expires_at,
        "source_type": p.source_type,
        "source_id": p.source_id,
    }


def growth_row(p: OrderPlan) -> dict[str, Any]:
    return {
        "member_id": p.member_id,
        "kind": "earn",
        "amount": p.growth,
        "effective_at": p.effective_at,
        "reason": p.growth_reason,
        "source_type": p.source_type,
        "source_id": p.source_id,
        "idempotency_key": p.growth_key,
        "actor": p.actor,
        "created_at": p.now,
    }


def line_row(order_id: Any, ln: PlanLine) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "line_no": ln.line_no,
        "sku": ln.sku,
        "category": ln.category,
        "quantity": ln.quantity,
        "unit_price_fen": ln.unit_price_fen,
        "discount_fen": ln.discount_fen,
        "net_fen": ln.net_fen,
        "points_fen": ln.points_fen,
        "points": ln.points,
        "paid_fen": ln.paid_fen,
        "returned_quantity": 0,
        "refunded_fen": 0,
        "refunded_points": 0,
    }


def payment_row(order_id: Any, payment: tuple[str, int, int]) -> dict[str, Any]:
    method, amount, pts = payment
    return {"order_id": order_id, "method": method, "amount_fen": amount, "points": pts}


def tier_row(p: OrderPlan) -> dict[str, Any]:
    assert p.tier_move is not None
    return {
        "member_id": p.member_id,
        "tier_code": p.tier_move.to_code,
        "since": p.effective_at,
        "next_evaluation_at": p.tier_move.next_evaluation_at,
        "grace_until": None,
        "override_until": None,
        "override_reason": None,
        "updated_at": p.now,
    }


def tier_change_row(actor: Principal, p: OrderPlan) -> dict[str, Any]:
    assert p.tier_move is not None
    return {
        "member_id": p.member_id,
        "from_code": p.tier_move.from_code,
        "to_code": p.tier_move.to_code,
        "kind": "upgrade",
        "reason": "growth reached the threshold",
        "growth": p.tier_move.growth,
        "actor": actor.label[:120],
        "at": p.effective_at,
    }


#: the member tier row's columns a tier move sets
TIER_SET = (
    "tier_code",
    "since",
    "next_evaluation_at",
    "grace_until",
    "override_until",
    "override_reason",
    "updated_at",
)


def order_object(
    order_id: int,
    p: OrderPlan,
    earn_id: int | None,
    spend_id: int | None,
    lines: list[dict[str, Any]],
    payments: list[dict[str, Any]],
) -> Order:
    """The order as the response needs it, without reading back what was just written."""
    order = Order(id=order_id, **p.order, earn_posting_id=earn_id, spend_posting_id=spend_id)
    set_committed_value(order, "lines", [OrderLine(**row) for row in lines])
    set_committed_value(order, "payments", [OrderPayment(**row) for row in payments])
    return order


def plan_events(
    plans: Sequence[OrderPlan],
    orders: Sequence[events.RecordedOrder],
    posting_ids: dict[tuple[int, str], int],
    growth_ids: dict[int, int],
) -> list[events.NewEvent]:
    """The events the general path emits posting by posting (points, growth, tier) and the
    order's ``order.recorded``, for all plans, in the order they are recorded."""
    new: list[events.NewEvent] = []
    for i, p in enumerate(plans):
        for posting in (p.spend, p.earn):
            if posting is None:
                continue
            new.append(
                events.NewEvent(
                    events.POINTS_EVENTS[posting.kind],
                    events.posting_payload(
                        posting_id=posting_ids[(i, posting.kind)],
                        kind=posting.kind,
                        available_delta=posting.available_delta,
                        source_type=p.source_type,
                        source_id=p.source_id,
                        occurred_at=p.now,
                    ),
                    member_id=p.member_id,
                    member_no=p.member_no,
                )
            )
        if i in growth_ids:
            new.append(
                events.NewEvent(
                    events.GROWTH_EVENTS["earn"],
                    events.growth_payload(
                        posting_id=growth_ids[i],
                        kind="earn",
                        amount=p.growth,
                        source_type=p.source_type,
                        source_id=p.source_id,
                        occurred_at=p.now,
                    ),
                    member_id=p.member_id,
                    member_no=p.member_no,
                )
            )
        if p.tier_move is not None:
            new.append(
                events.NewEvent(
                    "tier.changed",
                    events.tier_payload(
                        from_tier=p.tier_move.from_code,
                        to_tier=p.tier_move.to_code,
                        cause="upgrade",
                        growth=p.tier_move.growth,
                        now=p.now,
                    ),
                    member_id=p.member_id,
                    member_no=p.member_no,
                )
            )
        new.append(
            events.NewEvent(
                "order.recorded",
                events.order_recorded_payload(p.member_no, orders[i]),
                member_id=p.member_id,
                member_no=p.member_no,
            )
        )
    return new
