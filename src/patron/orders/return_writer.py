"""Apply a return plan (``orders.return_plan``) set-based: the clawback, the points given back
and the debt they repay in one INSERT of postings (RETURNING their ids), the account moved by
one UPDATE, the return inserted complete with RETURNING, coupons back to the wallet in one
UPDATE, audit records and events one INSERT each.

The caller holds the member's ledger lock and has updated the order and its lines (ORM)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, literal, select, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.coupons.models import Coupon, CouponHistory
from patron.ledger import store
from patron.ledger.domain import Take
from patron.ledger.models import (
    GrowthAccount,
    GrowthPosting,
    PointsAccount,
    PointsHold,
    PointsLot,
    PointsPosting,
    PointsRefund,
)
from patron.orders import writer
from patron.orders.models import OrderReturn, ReturnLine
from patron.orders.return_plan import NEW_LOT, ReturnPlan
from patron.tiers.models import MemberTier, TierChange
from patron.webhooks import events


def write_return(session: Session, actor: Principal, p: ReturnPlan) -> OrderReturn:
    """Write the plan; returns the return (with its lines) as the response needs it."""
    if p.open_account:
        store.insert_ignore(session, PointsAccount, store.new_account(p.member_id, p.now))
    repay_key = f"repay:{p.member_id}:{uuid.uuid4().hex}"
    postings = _postings(p, repay_key)
    ids: dict[str, int] = {}
    if postings:
        # the table, not the entity: the ORM's bulk INSERT leaves out None values, which
        # splits rows of different shapes into one statement each
        table = cast(Table, PointsPosting.__table__)
        returned = session.execute(
            insert(table).returning(table.c.idempotency_key, table.c.id), postings
        )
        ids = {str(row[0]): int(row[1]) for row in returned}
    clawback_id = ids.get(p.clawback_key)
    restore_id = ids.get(p.restore_key)
    repay_id = ids.get(repay_key)
    if p.hold_left is not None:
        hold_id, left = p.hold_left
        session.execute(
            update(PointsHold)
            .where(PointsHold.id == hold_id, PointsHold.status == "pending")
            .values(
                amount=left,
                status="pending" if left else "cancelled",
                resolved_at=None if left else p.now,
            )
            .execution_options(synchronize_session=False)
        )
    if p.takes:
        assert clawback_id is not None
        store.consume(session, p.member_id, clawback_id, list(p.takes))
    if restore_id is not None:
        lot_id = session.execute(
            insert(PointsLot)
            .values(
                member_id=p.member_id,
                posting_id=restore_id,
                amount=p.points_back,
                remaining=p.points_back,
                earned_at=p.now,
                expires_at=p.restore_expires_at,
                source_type="order_return",
                source_id=p.restore_source_id,
            )
            .returning(PointsLot.id)
        ).scalar_one()
        if repay_id is not None:
            takes = [
                Take(lot_id if t.lot_id == NEW_LOT else t.lot_id, t.amount) for t in p.repay_takes
            ]
            store.consume(session, p.member_id, repay_id, takes)
    _account(session, p)
    growth_id = _growth(session, p)
    _tier(session, actor, p)
    record = _record(session, p)
    _coupons(session, p)
    audits: list[tuple[str, str, str, dict[str, Any] | None, datetime]] = [
        (
            action,
            "member",
            str(p.member_id),
            {"posting_id": restore_id, **after} if action == "points.earn" else after,
            p.now,
        )
        for action, after in p.audits
    ]
    audits += [
        ("coupon.restore", "coupon", c.code, {"order_id": p.order_id}, p.now)
        for c in p.coupons_back
    ]
    audit.record_many(session, actor, audits)
    events.emit_many(session, _events(p, clawback_id, growth_id, restore_id, repay_id), p.now)
    return record


def _postings(p: ReturnPlan, repay_key: str) -> list[dict[str, Any]]:
    base = {"member_id": p.member_id, "reverses_id": None, "actor": p.actor, "created_at": p.now}
    rows: list[dict[str, Any]] = []
    if p.refunded and p.points_clawed:
        rows.append(
            {
                **base,
                "kind": "clawback",
                "available_delta": -p.from_available,
                "pending_delta": -p.from_pending,
                "debt_delta": p.to_debt,
                "reason": f"refund {p.return_id}"[:200],
                "source_type": "order",
                "source_id": p.source_id,
                "idempotency_key": p.clawback_key,
                "restores_id": None,
            }
        )
    if p.restored:
        rows.append(
            {
                **base,
                "kind": "earn",
                "available_delta": p.points_back,
                "pending_delta": 0,
                "debt_delta": 0,
                "reason": p.restore_reason,
                "source_type": "order_return",
                "source_id": p.restore_source_id,
                "idempotency_key": p.restore_key,
                "restores_id": p.restores_id,
            }
        )
    if p.repay:
        rows.append(
            {
                **base,
                "kind": "repay",
                "available_delta": -p.repay,
                "pending_delta": 0,
                "debt_delta": -p.repay,
                "reason": "points debt repaid from new points",
                "source_type": None,
                "source_id": None,
                "idempotency_key": repay_key,
                "restores_id": None,
            }
        )
    return rows


def _account(session: Session, p: ReturnPlan) -> None:
    values: dict[str, Any] = {}
    back = p.points_back if p.restored else 0
    available = back - p.from_available - p.repay
    if available:
        values["available"] = PointsAccount.available + available
    if p.from_pending:
        values["pending"] = PointsAccount.pending - p.from_pending
    if p.to_debt - p.repay:
        values["debt"] = PointsAccount.debt + (p.to_debt - p.repay)
    if back:
        values["lifetime_earned"] = PointsAccount.lifetime_earned + back
    if store.dialect(session) != "postgresql":
        # nothing locked the row on SQLite (BEGIN IMMEDIATE serialised): its version moves here
        values["version"] = PointsAccount.version + 1
        values["updated_at"] = p.now
    if not values:
        return
    session.execute(
        update(PointsAccount)
        .where(PointsAccount.member_id == p.member_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _growth(session: Session, p: ReturnPlan) -> int | None:
    if p.open_growth_account:
        store.insert_ignore(
            session,
            GrowthAccount,
            {"member_id": p.member_id, "balance": 0, "lifetime_earned": 0, "updated_at": p.now},
        )
    if not (p.refunded and p.growth_clawed):
        return None
    growth_id = int(
        session.execute(
            insert(GrowthPosting)
            .values(
                member_id=p.member_id,
                kind="clawback",
                amount=-p.growth_clawed,
                effective_at=p.growth_effective_at,
                reason=f"refund {p.return_id}"[:200],
                source_type="order",
                source_id=p.source_id,
                idempotency_key=p.clawback_key,
                actor=p.actor,
                created_at=p.now,
            )
            .returning(GrowthPosting.id)
        ).scalar_one()
    )
    session.execute(
        update(GrowthAccount)
        .where(GrowthAccount.member_id == p.member_id)
        .values(balance=GrowthAccount.balance - p.growth_clawed, updated_at=p.now)
        .execution_options(synchronize_session=False)
    )
    return growth_id


def _tier(session: Session, actor: Principal, p: ReturnPlan) -> None:
    move = p.tier_move
    if move is None:
        return
    ins = writer.upsert(session)(MemberTier)
    row = {
        "member_id": p.member_id,
        "tier_code": move.to_code,
        "since": p.now,
        "next_evaluation_at": move.next_evaluation_at,
        "grace_until": None,
        "override_until": None,
        "override_reason": None,
        "updated_at": p.now,
    }
    session.execute(
        ins.values(**row).on_conflict_do_update(
            index_elements=[MemberTier.member_id],
            set_={c: ins.excluded[c] for c in row if c != "member_id"},
        )
    )
    session.execute(
        insert(TierChange),
        [
            {
                "member_id": p.member_id,
                "from_code": move.from_code,
                "to_code": move.to_code,
                "kind": move.kind,
                "reason": move.reason[:200],
                "growth": move.growth,
                "actor": actor.label[:120],
                "at": p.now,
            }
        ],
    )


def _refund_row(p: ReturnPlan) -> dict[str, Any]:
    return {
        "member_id": p.member_id,
        "source_type": "order",
        "source_id": p.source_id,
        "refund_id": p.return_id,
        "order_total_fen": p.order_total_fen,
        "refund_amount_fen": p.refund_fen,
        "points_clawed": p.points_clawed,
        "growth_clawed": p.growth_clawed,
        "created_at": p.now,
    }


def _record(session: Session, p: ReturnPlan) -> OrderReturn:
    """The ledger's refund row, the return and its lines: on PostgreSQL one statement (data-
    modifying CTEs), on SQLite one INSERT each."""
    values = {
        "order_id": p.order_id,
        "member_id": p.member_id,
        "external_id": p.return_id,
        "returned_at": p.returned_at,
        "refund_fen": p.refund_fen,
        "points_returned": p.points_back,
        "points_clawed": p.points_clawed,
        "growth_clawed": p.growth_clawed,
        "to_debt": p.to_debt,
        "content_hash": p.digest,
        "created_at": p.now,
    }
    line_values = [
        {
            "line_no": part.line_no,
            "quantity": part.quantity,
            "refund_fen": part.refund_fen,
            "points_returned": part.points,
        }
        for part in p.parts
    ]
    if store.dialect(session) == "postgresql":
        head = insert(OrderReturn).values(**values).returning(OrderReturn.id).cte("ret")
        columns = ["return_id", "line_no", "quantity", "refund_fen", "points_returned"]
        rows = union_all(
            *(
                select(
                    head.c.id,
                    *(
                        literal(row[c], ReturnLine.__table__.c[c].type).label(c)
                        for c in columns[1:]
                    ),
                )
                for row in line_values
            )
        )
        stmt = insert(ReturnLine).from_select(columns, rows).add_cte(head)
        if p.refunded:
            stmt = stmt.add_cte(insert(PointsRefund).values(**_refund_row(p)).cte("refund"))
        stmt = stmt.returning(ReturnLine.return_id)
        return_id = int(session.execute(stmt).scalars().first() or 0)
    else:
        if p.refunded:
            session.execute(insert(PointsRefund), [_refund_row(p)])
        return_id = int(
            session.execute(
                insert(OrderReturn).values(**values).returning(OrderReturn.id)
            ).scalar_one()
        )
        session.execute(
            insert(ReturnLine), [{"return_id": return_id, **row} for row in line_values]
        )
    record = OrderReturn(id=return_id, **values)
    set_committed_value(
        record, "lines", [ReturnLine(return_id=return_id, **row) for row in line_values]
    )
    return record


def _coupons(session: Session, p: ReturnPlan) -> None:
    """Coupons back to the wallet (the rows the coupons' own restore wrote), with history."""
    if not p.coupons_back:
        return
    ids = [c.id for c in p.coupons_back]
    session.execute(
        update(Coupon)
        .where(Coupon.id.in_(ids))
        .values(status="issued", order_id=None, redeemed_at=None, discount_fen=0, allocation=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(CouponHistory),
        [
            {
                "coupon_id": cid,
                "status": "issued",
                "event": "restored",
                "order_id": p.order_id,
                "at": p.now,
                "note": "order returned",
            }
            for cid in ids
        ],
    )


def _events(
    p: ReturnPlan,
    clawback_id: int | None,
    growth_id: int | None,
    restore_id: int | None,
    repay_id: int | None,
) -> list[events.NewEvent]:
    """In the order the ledger's flows emit them: the clawback, its growth, the tier move, the
    points given back, the debt they repay, coupons restored, then the return."""
    new: list[events.NewEvent] = []

    def points(kind: str, posting_id: int, **deltas: Any) -> None:
        payload = events.posting_payload(
            posting_id=posting_id, kind=kind, occurred_at=p.now, **deltas
        )
        new.append(
            events.NewEvent(
                events.POINTS_EVENTS[kind], payload, member_id=p.member_id, member_no=p.member_no
            )
        )

    if clawback_id is not None:
        points(
            "clawback",
            clawback_id,
            available_delta=-p.from_available,
            pending_delta=-p.from_pending,
            debt_delta=p.to_debt,
            source_type="order",
            source_id=p.source_id,
        )
    if growth_id is not None:
        new.append(
            events.NewEvent(
                events.GROWTH_EVENTS["clawback"],
                events.growth_payload(
                    posting_id=growth_id,
                    kind="clawback",
                    amount=-p.growth_clawed,
                    source_type="order",
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
                    cause=p.tier_move.kind,
                    growth=p.tier_move.growth,
                    now=p.now,
                ),
                member_id=p.member_id,
                member_no=p.member_no,
            )
        )
    if restore_id is not None:
        points(
            "earn",
            restore_id,
            available_delta=p.points_back,
            source_type="order_return",
            source_id=p.restore_source_id,
        )
    if repay_id is not None:
        points(
            "repay",
            repay_id,
            available_delta=-p.repay,
            debt_delta=-p.repay,
            source_type=None,
            source_id=None,
        )
    new.extend(
        events.NewEvent(
            "coupon.restored",
            {"code": c.code, "template": c.template_code, "order_id": p.order_id},
            c.member_id,
            p.member_no if c.member_id == p.member_id else None,
        )
        for c in p.coupons_back
    )
    new.append(
        events.NewEvent(
            "order.returned",
            {
                "member_no": p.member_no,
                "source": p.order_source,
                "external_id": p.order_external_id,
                "return_id": p.return_id,
                "refund_fen": p.refund_fen,
                "points_returned": p.points_back,
                "points_clawed_back": p.points_clawed,
                "growth_clawed_back": p.growth_clawed,
                "to_debt": p.to_debt,
            },
            member_id=p.member_id,
            member_no=p.member_no,
        )
    )
    return new
