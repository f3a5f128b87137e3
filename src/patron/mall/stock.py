"""Stock per warehouse (R3) and its append-only movement ledger.

Every change is a guarded UPDATE of the ``mall_stock`` row (the guard is the check: nothing
reads a figure and writes later) plus one movement row with the same deltas, so the sums of
the movements always equal the cached figures (``mall/check.py``). Two rows are locked in
warehouse-code order (transfers) so two transfers in opposite directions cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.errors import Conflict, Invalid
from patron.ledger.service import Ctx
from patron.mall import service
from patron.mall.models import Gift, Redemption, Stock, StockMovement
from patron.webhooks import events


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _ensure_row(session: Session, ctx: Ctx, gift_id: int, warehouse: str) -> None:
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Stock)
    session.execute(
        ins.values(
            gift_id=gift_id, warehouse=warehouse, on_hand=0, reserved=0, updated_at=ctx.now
        ).on_conflict_do_nothing()
    )


def record(
    session: Session,
    ctx: Ctx,
    gift_id: int,
    warehouse: str,
    kind: str,
    *,
    on_hand: int = 0,
    reserved: int = 0,
    redemption_id: int | None = None,
    reason: str = "",
) -> None:
    """One movement row (the caller has applied the same deltas to the stock row)."""
    session.execute(
        insert(StockMovement).values(
            gift_id=gift_id,
            warehouse=warehouse,
            kind=kind,
            on_hand_delta=on_hand,
            reserved_delta=reserved,
            redemption_id=redemption_id,
            reason=reason[:200],
            actor=ctx.actor.label[:120],
            created_at=ctx.now,
        )
    )


def _announce(
    session: Session,
    ctx: Ctx,
    gift: Gift,
    warehouse: str,
    kind: str,
    on_hand: int,
    reason: str,
    action: str,
) -> None:
    events.emit(
        session,
        "mall.stock.moved",
        {
            "gift_code": gift.code,
            "warehouse": warehouse,
            "kind": kind,
            "on_hand_delta": on_hand,
            "reason": reason,
        },
        ctx.now,
    )
    audit.record(
        session,
        ctx.actor,
        action,  # a literal at each call: the console's audit filter offers each one
        "mall_gift",
        gift.code,
        None,
        {"warehouse": warehouse, "on_hand_delta": on_hand, "reason": reason},
        at=ctx.now,
    )


# --------------------------------------------------------------------------- redemptions


def reserve(
    session: Session, ctx: Ctx, gift: Gift, order: Sequence[str], quantity: int
) -> str | None:
    """Reserve ``quantity`` units in the first warehouse of ``order`` that has them (one
    guarded UPDATE per warehouse tried); None when none has. The movement is recorded by the
    caller once the redemption has its id."""
    for warehouse in order:
        res = session.execute(
            update(Stock)
            .where(
                Stock.gift_id == gift.id,
                Stock.warehouse == warehouse,
                Stock.on_hand - Stock.reserved >= quantity,
            )
            .values(reserved=Stock.reserved + quantity, updated_at=ctx.now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(res) == 1:
            return warehouse
    return None


def release(session: Session, ctx: Ctx, r: Redemption, reason: str) -> None:
    """Give a cancelled redemption's reserved units back."""
    res = session.execute(
        update(Stock)
        .where(
            Stock.gift_id == r.gift_id,
            Stock.warehouse == r.warehouse,
            Stock.reserved >= r.quantity,
        )
        .values(reserved=Stock.reserved - r.quantity, updated_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(res) != 1:  # pragma: no cover - the check would report it
        raise Conflict("stock_inconsistent", "The reservation of this redemption is missing.")
    record(
        session,
        ctx,
        r.gift_id,
        r.warehouse,
        "release",
        reserved=-r.quantity,
        redemption_id=r.id,
        reason=reason,
    )


def take_back(session: Session, ctx: Ctx, r: Redemption, reason: str) -> None:
    """A returned redemption's units are on hand again in the warehouse they left."""
    res = session.execute(
        update(Stock)
        .where(Stock.gift_id == r.gift_id, Stock.warehouse == r.warehouse)
        .values(on_hand=Stock.on_hand + r.quantity, updated_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(res) != 1:  # pragma: no cover - a shipment left the row behind
        raise Conflict("stock_inconsistent", "The stock row of this redemption is missing.")
    record(
        session,
        ctx,
        r.gift_id,
        r.warehouse,
        "return",
        on_hand=r.quantity,
        redemption_id=r.id,
        reason=reason,
    )


def hand_over(session: Session, ctx: Ctx, r: Redemption, reason: str) -> None:
    """Reserved units leave the warehouse (picked up at a store, or shipped)."""
    res = session.execute(
        update(Stock)
        .where(
            Stock.gift_id == r.gift_id,
            Stock.warehouse == r.warehouse,
            Stock.reserved >= r.quantity,
        )
        .values(
            reserved=Stock.reserved - r.quantity,
            on_hand=Stock.on_hand - r.quantity,
            updated_at=ctx.now,
        )
        .execution_options(synchronize_session=False)
    )
    if _rowcount(res) != 1:  # pragma: no cover - the check would report it
        raise Conflict("stock_inconsistent", "The reservation of this redemption is missing.")
    record(
        session,
        ctx,
        r.gift_id,
        r.warehouse,
        "shipment",
        on_hand=-r.quantity,
        reserved=-r.quantity,
        redemption_id=r.id,
        reason=reason,
    )


# --------------------------------------------------------------------------- operators


def receive(
    session: Session, ctx: Ctx, gift_code: str, warehouse: str, quantity: int, reason: str = ""
) -> None:
    """A stock receipt (goods arrived from a supplier)."""
    if quantity < 1:
        raise Invalid("invalid_quantity", "A receipt needs a positive quantity.")
    service.check_warehouse(service.get_settings(session), warehouse)
    gift = service.get_gift(session, gift_code)
    _ensure_row(session, ctx, gift.id, warehouse)
    session.execute(
        update(Stock)
        .where(Stock.gift_id == gift.id, Stock.warehouse == warehouse)
        .values(on_hand=Stock.on_hand + quantity, updated_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    record(session, ctx, gift.id, warehouse, "receipt", on_hand=quantity, reason=reason)
    _announce(session, ctx, gift, warehouse, "receipt", quantity, reason, "mall.stock_receipt")


def adjust(
    session: Session, ctx: Ctx, gift_code: str, warehouse: str, delta: int, reason: str
) -> None:
    """A stocktake correction; it never takes units below what is reserved (or below zero)."""
    if delta == 0:
        raise Invalid("invalid_quantity", "An adjustment needs a non-zero delta.")
    if not reason.strip():
        raise Invalid("reason_required", "An adjustment needs a reason.")
    service.check_warehouse(service.get_settings(session), warehouse)
    gift = service.get_gift(session, gift_code)
    _ensure_row(session, ctx, gift.id, warehouse)
    res = session.execute(
        update(Stock)
        .where(
            Stock.gift_id == gift.id,
            Stock.warehouse == warehouse,
            Stock.on_hand - Stock.reserved + delta >= 0,
        )
        .values(on_hand=Stock.on_hand + delta, updated_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(res) != 1:
        raise _below_zero(session, gift, warehouse, -delta)
    record(session, ctx, gift.id, warehouse, "adjustment", on_hand=delta, reason=reason)
    _announce(session, ctx, gift, warehouse, "adjustment", delta, reason, "mall.stock_adjustment")


def transfer(
    session: Session,
    ctx: Ctx,
    gift_code: str,
    from_warehouse: str,
    to_warehouse: str,
    quantity: int,
    reason: str = "",
) -> None:
    settings = service.get_settings(session)
    service.check_warehouse(settings, from_warehouse)
    service.check_warehouse(settings, to_warehouse)
    if from_warehouse == to_warehouse:
        raise Invalid("same_warehouse", "A transfer needs two different warehouses.")
    if quantity < 1:
        raise Invalid("invalid_quantity", "A transfer needs a positive quantity.")
    gift = service.get_gift(session, gift_code)
    _ensure_row(session, ctx, gift.id, to_warehouse)
    moves = sorted([(from_warehouse, -quantity), (to_warehouse, quantity)])
    for warehouse, delta in moves:  # lock order: warehouse code
        res = session.execute(
            update(Stock)
            .where(
                Stock.gift_id == gift.id,
                Stock.warehouse == warehouse,
                Stock.on_hand - Stock.reserved + delta >= 0,
            )
            .values(on_hand=Stock.on_hand + delta, updated_at=ctx.now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(res) != 1:
            raise _below_zero(session, gift, warehouse, quantity)
    note = reason or f"{from_warehouse} → {to_warehouse}"
    record(session, ctx, gift.id, from_warehouse, "transfer_out", on_hand=-quantity, reason=note)
    record(session, ctx, gift.id, to_warehouse, "transfer_in", on_hand=quantity, reason=note)
    _announce(
        session,
        ctx,
        gift,
        from_warehouse,
        "transfer_out",
        -quantity,
        note,
        "mall.stock_transfer_out",
    )
    _announce(
        session, ctx, gift, to_warehouse, "transfer_in", quantity, note, "mall.stock_transfer_in"
    )


def _below_zero(session: Session, gift: Gift, warehouse: str, wanted: int) -> Conflict:
    row = session.get(Stock, (gift.id, warehouse), populate_existing=True)
    available = row.on_hand - row.reserved if row else 0
    return Conflict(
        "stock_below_zero",
        f"Only {available} unit(s) of {gift.code} are available in {warehouse} "
        f"(reserved units stay); {wanted} cannot be taken out.",
        details={"available": available, "warehouse": warehouse},
    )


# --------------------------------------------------------------------------- reads


def levels(session: Session, gift_code: str | None = None) -> list[tuple[str, Stock]]:
    stmt = select(Gift.code, Stock).join(Gift, Gift.id == Stock.gift_id)
    if gift_code:
        stmt = stmt.where(Gift.code == gift_code)
    return [(c, s) for c, s in session.execute(stmt.order_by(Gift.code, Stock.warehouse))]


def movements(
    session: Session,
    *,
    gift_code: str | None = None,
    warehouse: str | None = None,
    limit: int = 100,
) -> list[tuple[StockMovement, str, str | None]]:
    stmt = (
        select(StockMovement, Gift.code, Redemption.code)
        .join(Gift, Gift.id == StockMovement.gift_id)
        .outerjoin(Redemption, Redemption.id == StockMovement.redemption_id)
        .order_by(StockMovement.id.desc())
        .limit(limit)
    )
    if gift_code:
        stmt = stmt.where(Gift.code == gift_code)
    if warehouse:
        stmt = stmt.where(StockMovement.warehouse == warehouse)
    return [(m, g, r) for m, g, r in session.execute(stmt)]
