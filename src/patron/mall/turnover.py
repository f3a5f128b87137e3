"""Stock turnover (R4): the monthly report per gift and warehouse, read from the stock movement
ledger, and the safety-stock alerts of each warehouse.

A month's row: the units on hand when it began (every movement before it), what came in
(receipts), moved between warehouses (transfers in less out), was corrected (adjustments) and
went out (shipments: gifts handed over or sent), the units on hand when it ended, the units
redeemed in the month and still redeemed (a cancelled or returned redemption's units came back,
as for the limits, the forecast and the "hot" tag), and the turnover — units out over the
average stock on hand ((opening + closing) / 2), in thousandths. Months are business-timezone
months.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql._typing import ColumnExpressionArgument

from patron.mall import domain, replenish, service
from patron.mall.models import Gift, Redemption, Stock, StockMovement


@dataclass(frozen=True, slots=True)
class TurnoverRow:
    gift: Gift
    warehouse: str
    opening: int
    received: int
    transferred: int
    adjusted: int
    issued: int
    closing: int
    redeemed: int
    turnover_permille: int | None
    slow_mover: bool


def month_window(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    first, last = domain.month_bounds(month)
    start = datetime.combine(first, time(0), tz)
    return start, datetime.combine(last + timedelta(days=1), time(0), tz)


def monthly(session: Session, month: str, tz: ZoneInfo, now: datetime) -> list[TurnoverRow]:
    """One aggregate over the movement ledger up to the month's end."""
    start, end = month_window(month, tz)
    m = StockMovement
    inside = (m.created_at >= start) & (m.created_at < end)

    def total(kinds: tuple[str, ...], column: ColumnExpressionArgument[int]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((inside & m.kind.in_(kinds), column), else_=0)), 0)

    rows = session.execute(
        select(
            m.gift_id,
            m.warehouse,
            func.coalesce(func.sum(case((m.created_at < start, m.on_hand_delta), else_=0)), 0),
            total(("receipt",), m.on_hand_delta),
            total(("transfer_in", "transfer_out"), m.on_hand_delta),
            total(("adjustment",), m.on_hand_delta),
            # issued net of returns (a returned unit is on hand again)
            total(("shipment", "return"), -m.on_hand_delta),
        )
        .where(m.created_at < end)
        .group_by(m.gift_id, m.warehouse)
    ).all()
    r = Redemption
    redeemed_units = {
        (gift_id, warehouse): int(units)
        for gift_id, warehouse, units in session.execute(
            select(r.gift_id, r.warehouse, func.sum(r.quantity))
            .where(r.created_at >= start, r.created_at < end, r.status.not_in(domain.UNDONE))
            .group_by(r.gift_id, r.warehouse)
        )
    }
    gifts = {g.id: g for g in session.scalars(select(Gift))}
    slow = {a.gift.id for a in replenish.alerts(session, now) if a.slow_mover}
    out = []
    for gift_id, warehouse, opening, received, moved, adjusted, issued in rows:
        closing = int(opening) + int(received) + int(moved) + int(adjusted) - int(issued)
        out.append(
            TurnoverRow(
                gifts[gift_id],
                warehouse,
                int(opening),
                int(received),
                int(moved),
                int(adjusted),
                int(issued),
                closing,
                redeemed_units.get((gift_id, warehouse), 0),
                domain.turnover_permille(int(issued), int(opening), closing),
                gift_id in slow,
            )
        )
    out.sort(key=lambda r: (r.gift.code, r.warehouse))
    return out


@dataclass(frozen=True, slots=True)
class WarehouseAlert:
    gift: Gift
    warehouse: str
    available: int
    forecast: int


def warehouse_alerts(session: Session, now: datetime) -> list[WarehouseAlert]:
    """Gifts short in one warehouse: its available units below ``safety_stock_percent`` % of
    the month's forecast of the redemptions that warehouse served."""
    settings = service.get_settings(session)
    since = now - timedelta(days=30 * settings.forecast_months)
    units = {
        (g, w): int(n)
        for g, w, n in session.execute(
            select(Redemption.gift_id, Redemption.warehouse, func.sum(Redemption.quantity))
            .where(Redemption.status.not_in(domain.UNDONE), Redemption.created_at >= since)
            .group_by(Redemption.gift_id, Redemption.warehouse)
        )
    }
    out = []
    for gift, s in session.execute(
        select(Gift, Stock)
        .join(Stock, Stock.gift_id == Gift.id)
        .where(Gift.is_active.is_(True))
        .order_by(Gift.code, Stock.warehouse)
    ):
        forecast = domain.monthly_forecast(
            units.get((gift.id, s.warehouse), 0), settings.forecast_months
        )
        available = s.on_hand - s.reserved
        if domain.below_safety(available, forecast, settings.safety_stock_percent):
            out.append(WarehouseAlert(gift, s.warehouse, available, forecast))
    return out
