"""Apply order plans (``orders.plan``) set-based: one statement per kind of row for the whole
list, RETURNING ids instead of re-reading, nothing updated right after it was inserted.

The caller holds each member's ledger lock (``orders.facts.lock_account``) and the rule budget
rows; the points account's guarded update still refuses a spend the balance cannot cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.ledger.domain import InsufficientPoints
from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsAllocation,
    PointsLot,
    PointsPosting,
)
from patron.orders.models import Order, OrderLine, OrderPayment, RuleBudgetUsage
from patron.orders.plan import OrderPlan
from patron.tiers.models import MemberTier, TierChange
from patron.webhooks import events


def _upsert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def write_plans(session: Session, actor: Principal, plans: Sequence[OrderPlan]) -> list[Order]:
    """Write the plans; returns their orders (lines and payments loaded) in plan order."""
    if not plans:
        return []
    posting_ids = _postings(session, plans)
    _lots(session, plans, posting_ids)
    _accounts(session, plans)
    growth_ids = _growth(session, plans)
    _tiers(session, actor, plans)
    _budgets(session, plans)
    orders = _orders(session, plans, posting_ids)
    _audits(session, actor, plans, posting_ids)
    _events(session, plans, orders, posting_ids, growth_ids)
    return orders


def _postings(session: Session, plans: Sequence[OrderPlan]) -> dict[tuple[int, str], int]:
    rows: list[dict[str, Any]] = []
    keys: list[tuple[int, str]] = []
    for i, p in enumerate(plans):
        for posting in (p.spend, p.earn):
            if posting is None:
                continue
            keys.append((i, posting.kind))
            rows.append(
                {
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
            )
    if not rows:
        return {}
    ids = session.scalars(
        insert(PointsPosting).returning(PointsPosting.id, sort_by_parameter_order=True), rows
    ).all()
    return {k: int(v) for k, v in zip(keys, ids, strict=True)}


def _lots(session: Session, plans: Sequence[OrderPlan], posting_ids: dict[Any, int]) -> None:
    new = [
        {
            "member_id": p.member_id,
            "posting_id": posting_ids[(i, "earn")],
            "amount": p.earn.available_delta,
            "remaining": p.earn.available_delta,
            "earned_at": p.effective_at,
            "expires_at": p.lot_expires_at,
            "source_type": p.source_type,
            "source_id": p.source_id,
        }
        for i, p in enumerate(plans)
        if p.earn is not None
    ]
    if new:
        session.execute(insert(PointsLot), new)
    takes = [(i, p, t) for i, p in enumerate(plans) for t in p.takes]
    if not takes:
        return
    for _, _, t in takes:
        # one lot per statement so each guard is checked (the account lock makes a miss
        # impossible; most payments take one lot)
        res = session.execute(
            update(PointsLot)
            .where(PointsLot.id == t.lot_id, PointsLot.remaining >= t.amount)
            .values(remaining=PointsLot.remaining - t.amount)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], res).rowcount != 1:  # pragma: no cover - see above
            raise RuntimeError(f"lot {t.lot_id} changed under the ledger lock")
    session.execute(
        insert(PointsAllocation),
        [
            {
                "posting_id": posting_ids[(i, "redeem")],
                "lot_id": t.lot_id,
                "member_id": p.member_id,
                "amount": t.amount,
            }
            for i, p, t in takes
        ],
    )


def _accounts(session: Session, plans: Sequence[OrderPlan]) -> None:
    if not any(p.spend for p in plans):
        # earning only (an import batch): one row per member, one executemany
        per_member: dict[int, int] = {}
        for p in plans:
            if p.earn is not None:
                per_member[p.member_id] = per_member.get(p.member_id, 0) + p.earn.available_delta
        if per_member:
            session.connection().execute(
                update(PointsAccount)
                .where(PointsAccount.member_id == bindparam("mid"))
                .values(
                    available=PointsAccount.available + bindparam("pts"),
                    lifetime_earned=PointsAccount.lifetime_earned + bindparam("pts"),
                ),
                [{"mid": m, "pts": n} for m, n in sorted(per_member.items())],
            )
        return
    for p in plans:
        spent = -p.spend.available_delta if p.spend else 0
        earned = p.earn.available_delta if p.earn else 0
        if not (spent or earned):
            continue
        # The guard *is* the check (invariant 3): spent points must be there before this write.
        res = session.execute(
            update(PointsAccount)
            .where(PointsAccount.member_id == p.member_id, PointsAccount.available >= spent)
            .values(
                available=PointsAccount.available + (earned - spent),
                lifetime_earned=PointsAccount.lifetime_earned + earned,
                lifetime_redeemed=PointsAccount.lifetime_redeemed + spent,
            )
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], res).rowcount != 1:
            raise InsufficientPoints(spent, 0)


def _growth(session: Session, plans: Sequence[OrderPlan]) -> dict[int, int]:
    """Growth postings and accounts; returns growth posting ids by plan index."""
    grown = [(i, p) for i, p in enumerate(plans) if p.growth]
    if not grown:
        return {}
    ids = session.scalars(
        insert(GrowthPosting).returning(GrowthPosting.id, sort_by_parameter_order=True),
        [
            {
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
            for _, p in grown
        ],
    ).all()
    totals: dict[int, tuple[int, Any]] = {}
    for _, p in grown:
        before = totals.get(p.member_id, (0, p.now))[0]
        totals[p.member_id] = (before + p.growth, p.now)
    ins = _upsert(session)(GrowthAccount)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=[GrowthAccount.member_id],
            set_={
                "balance": GrowthAccount.balance + ins.excluded.balance,
                "lifetime_earned": GrowthAccount.lifetime_earned + ins.excluded.lifetime_earned,
                "updated_at": ins.excluded.updated_at,
            },
        ),
        [
            {"member_id": m, "balance": g, "lifetime_earned": g, "updated_at": at}
            for m, (g, at) in totals.items()
        ],
    )
    return {i: int(pid) for (i, _), pid in zip(grown, ids, strict=True)}


def _tiers(session: Session, actor: Principal, plans: Sequence[OrderPlan]) -> None:
    moved = [p for p in plans if p.tier_move is not None]
    if not moved:
        return
    # the member's tier row ends at its last step of the batch; every step is a history row
    last = {p.member_id: p for p in moved}
    ins = _upsert(session)(MemberTier)
    session.execute(
        ins.on_conflict_do_update(
            index_elements=[MemberTier.member_id],
            set_={
                c: ins.excluded[c]
                for c in (
                    "tier_code",
                    "since",
                    "next_evaluation_at",
                    "grace_until",
                    "override_until",
                    "override_reason",
                    "updated_at",
                )
            },
        ),
        [
            {
                "member_id": p.member_id,
                "tier_code": p.tier_move.to_code,
                "since": p.effective_at,
                "next_evaluation_at": p.tier_move.next_evaluation_at,
                "grace_until": None,
                "override_until": None,
                "override_reason": None,
                "updated_at": p.now,
            }
            for p in last.values()
            if p.tier_move is not None
        ],
    )
    session.execute(
        insert(TierChange),
        [
            {
                "member_id": p.member_id,
                "from_code": p.tier_move.from_code,
                "to_code": p.tier_move.to_code,
                "kind": "upgrade",
                "reason": "growth reached the threshold",
                "growth": p.tier_move.growth,
                "actor": actor.label[:120],
                "at": p.effective_at,
            }
            for p in moved
            if p.tier_move is not None
        ],
    )


def _budgets(session: Session, plans: Sequence[OrderPlan]) -> None:
    charges = [
        {"rid": rule_id, "pts": points, "at": p.now}
        for p in plans
        for rule_id, points in p.budget_charges
    ]
    if charges:
        # the Core table, not the entity: an ORM UPDATE with a list of parameters is a "bulk
        # UPDATE by primary key", which refuses a WHERE on the key given as a bind parameter
        usage = cast(Table, RuleBudgetUsage.__table__)
        session.execute(
            update(usage)
            .where(usage.c.rule_id == bindparam("rid"))
            .values(
                points_used=usage.c.points_used + bindparam("pts"),
                updated_at=bindparam("at"),
            ),
            charges,
        )


def _orders(
    session: Session, plans: Sequence[OrderPlan], posting_ids: dict[tuple[int, str], int]
) -> list[Order]:
    ids = session.scalars(
        insert(Order).returning(Order.id, sort_by_parameter_order=True),
        [
            {
                **p.order,
                "earn_posting_id": posting_ids.get((i, "earn")),
                "spend_posting_id": posting_ids.get((i, "redeem")),
            }
            for i, p in enumerate(plans)
        ],
    ).all()
    line_rows: list[dict[str, Any]] = [
        {
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
        for order_id, p in zip(ids, plans, strict=True)
        for ln in p.lines
    ]
    pay_rows: list[dict[str, Any]] = [
        {"order_id": order_id, "method": method, "amount_fen": amount, "points": pts}
        for order_id, p in zip(ids, plans, strict=True)
        for method, amount, pts in p.payments
    ]
    if line_rows:
        session.execute(insert(OrderLine), line_rows)
    if pay_rows:
        session.execute(insert(OrderPayment), pay_rows)
    # The orders as the response needs them, without reading back what was just written.
    lines_of: dict[int, list[OrderLine]] = {}
    for row in line_rows:
        lines_of.setdefault(int(row["order_id"]), []).append(OrderLine(**row))
    pays_of: dict[int, list[OrderPayment]] = {}
    for row in pay_rows:
        pays_of.setdefault(int(row["order_id"]), []).append(OrderPayment(**row))
    orders: list[Order] = []
    for i, (order_id, p) in enumerate(zip(ids, plans, strict=True)):
        order = Order(
            id=int(order_id),
            **p.order,
            earn_posting_id=posting_ids.get((i, "earn")),
            spend_posting_id=posting_ids.get((i, "redeem")),
        )
        set_committed_value(order, "lines", lines_of.get(int(order_id), []))
        set_committed_value(order, "payments", pays_of.get(int(order_id), []))
        orders.append(order)
    return orders


def _audits(
    session: Session,
    actor: Principal,
    plans: Sequence[OrderPlan],
    posting_ids: dict[tuple[int, str], int],
) -> None:
    audit.record_many(
        session,
        actor,
        [
            (
                entry.action,
                "member",
                str(p.member_id),
                {
                    "posting_id": posting_ids[
                        (i, "redeem" if entry.action == "points.spend" else "earn")
                    ],
                    **entry.after,
                },
                p.now,
            )
            for i, p in enumerate(plans)
            for entry in p.audits
        ],
    )


def _events(
    session: Session,
    plans: Sequence[OrderPlan],
    orders: Sequence[Order],
    posting_ids: dict[tuple[int, str], int],
    growth_ids: dict[int, int],
) -> None:
    """The events the general path emits posting by posting (points, growth, tier) and the
    order's ``order.recorded``, for all plans in one statement."""
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
    events.emit_many(session, new, plans[0].now)
