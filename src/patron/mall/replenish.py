"""Safety stock, slow movers and purchase requests (R4).

A gift is short when its available units (all warehouses) fall below ``safety_stock_percent`` %
of the forecast of a month's redemptions (the average of the last ``forecast_months`` 30-day
months, cancelled and returned redemptions excluded). Raising purchase requests makes one per
short gift that has none open, sent to the gift's preferred supplier (the backup when the
preferred one's agreement lapsed, see ``suppliers.choose``), announces ``mall.stock.low`` and
audits it; receiving a request records the stock receipt.

The ``mall_replenish`` job (``raise_warehouse_requests``) does the same per gift and warehouse:
a warehouse is short when its available units fall below ``safety_stock_percent`` % of the
forecast of the redemptions it served (``turnover.warehouse_alerts``); each short warehouse
without an open request gets one, to the gift's preferred supplier (the backup when the
preferred one's agreement lapsed). A database index allows one open request per gift and
warehouse, so reruns, and a console raise racing the job, never make a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.audit import service as audit
from patron.auth.principal import Principal
from patron.errors import Conflict, NotFound
from patron.kit.timeutil import business_date
from patron.ledger.service import Ctx
from patron.mall import domain, service, stock, suppliers
from patron.mall.models import Gift, PurchaseRequest, Redemption, Stock
from patron.webhooks import events


@dataclass(frozen=True, slots=True)
class Alert:
    gift: Gift
    available: int
    forecast: int
    short: bool
    slow_mover: bool
    last_redeemed_at: datetime | None
    suggested: int


def alerts(session: Session, now: datetime) -> list[Alert]:
    """Every active gift that is short of stock or a slow mover (three aggregate queries)."""
    settings = service.get_settings(session)
    since = now - timedelta(days=30 * settings.forecast_months)
    units = dict(
        session.execute(
            select(Redemption.gift_id, func.sum(Redemption.quantity))
            .where(Redemption.status.not_in(domain.UNDONE), Redemption.created_at >= since)
            .group_by(Redemption.gift_id)
        ).all()
    )
    last = dict(
        session.execute(
            select(Redemption.gift_id, func.max(Redemption.created_at))
            .where(Redemption.status.not_in(domain.UNDONE))
            .group_by(Redemption.gift_id)
        ).all()
    )
    avail = (
        select(Stock.gift_id, func.sum(Stock.on_hand - Stock.reserved).label("n"))
        .group_by(Stock.gift_id)
        .subquery()
    )
    out: list[Alert] = []
    slow_before = now - timedelta(days=settings.slow_mover_days)
    for gift, available in session.execute(
        select(Gift, func.coalesce(avail.c.n, 0))
        .outerjoin(avail, avail.c.gift_id == Gift.id)
        .where(Gift.is_active.is_(True))
        .order_by(Gift.code)
    ):
        forecast = domain.monthly_forecast(int(units.get(gift.id, 0)), settings.forecast_months)
        short = domain.below_safety(int(available), forecast, settings.safety_stock_percent)
        last_at = last.get(gift.id)
        slow = gift.created_at < slow_before and (last_at is None or last_at < slow_before)
        if short or slow:
            out.append(
                Alert(
                    gift,
                    int(available),
                    forecast,
                    short,
                    slow,
                    last_at,
                    domain.restock_quantity(int(available), forecast) if short else 0,
                )
            )
    return out


def raise_requests(session: Session, ctx: Ctx) -> list[PurchaseRequest]:
    """A purchase request for each short gift without an open one."""
    settings = service.get_settings(session)
    open_for = set(
        session.scalars(select(PurchaseRequest.gift_id).where(PurchaseRequest.status == "open"))
    )
    made: list[PurchaseRequest] = []
    day = business_date(ctx.now, ctx.tz)
    for a in alerts(session, ctx.now):
        if not a.short or a.gift.id in open_for:
            continue
        req = _raise_one(
            session,
            ctx,
            day,
            a.gift,
            settings.default_order[0],
            a.suggested,
            a.available,
            a.forecast,
        )
        if req is not None:
            made.append(req)
    return made


#: who raises the scheduled requests (the console tags their requests "raised automatically")
JOB: Final = Principal.system("job:mall-replenish")


def raise_warehouse_requests(session: Session, ctx: Ctx) -> list[PurchaseRequest]:
    """A purchase request for each gift and warehouse short of stock without an open one,
    announced (``mall.stock.low`` with the warehouse) and audited. Idempotent: a rerun finds
    the open requests and raises nothing more."""
    from patron.mall import turnover  # turnover reads the same settings; no cycle at import

    short = turnover.warehouse_alerts(session, ctx.now)
    if not short:
        return []
    open_for = {
        (g, w)
        for g, w in session.execute(
            select(PurchaseRequest.gift_id, PurchaseRequest.warehouse).where(
                PurchaseRequest.status == "open"
            )
        )
    }
    day = business_date(ctx.now, ctx.tz)
    made: list[PurchaseRequest] = []
    for a in short:
        if (a.gift.id, a.warehouse) in open_for:
            continue
        quantity = domain.restock_quantity(a.available, a.forecast)
        req = _raise_one(session, ctx, day, a.gift, a.warehouse, quantity, a.available, a.forecast)
        if req is not None:
            made.append(req)
    return made


def _raise_one(
    session: Session,
    ctx: Ctx,
    day: date,
    gift: Gift,
    warehouse: str,
    quantity: int,
    available: int,
    forecast: int,
) -> PurchaseRequest | None:
    """One open request to the gift's preferred supplier (the backup when the preferred one's
    agreement lapsed), announced and audited; None when another transaction raised the same
    gift and warehouse meanwhile (the open-request index refuses the second)."""
    choice = suppliers.choose(session, gift.id, day)
    req = PurchaseRequest(
        gift_id=gift.id,
        warehouse=warehouse,
        quantity=quantity,
        status="open",
        available_at_request=available,
        forecast=forecast,
        created_at=ctx.now,
        created_by=ctx.actor.label[:120],
        supplier_id=choice.supplier.id if choice.supplier else None,
        unit_cost_fen=choice.unit_cost_fen,
    )
    try:
        with session.begin_nested():
            session.add(req)
            session.flush()
    except IntegrityError:
        return None
    payload = {
        "gift_code": gift.code,
        "warehouse": warehouse,
        "available": available,
        "forecast": forecast,
        "purchase_request_id": req.id,
        "quantity": req.quantity,
        "supplier_code": choice.supplier.code if choice.supplier else None,
        "supplier_role": choice.role,
        "unit_cost_fen": choice.unit_cost_fen,
    }
    events.emit(session, "mall.stock.low", payload, ctx.now)
    audit.record(
        session,
        ctx.actor,
        "mall.purchase_request",
        "mall_gift",
        gift.code,
        None,
        payload,
        at=ctx.now,
    )
    return req


def receive_request(
    session: Session, ctx: Ctx, request_id: int, warehouse: str | None = None
) -> PurchaseRequest:
    """The goods of a request arrived: a stock receipt, once."""
    req = session.get(PurchaseRequest, request_id)
    if req is None:
        raise NotFound("purchase_request_not_found", f"No purchase request {request_id}.")
    done = session.execute(
        update(PurchaseRequest)
        .where(PurchaseRequest.id == request_id, PurchaseRequest.status == "open")
        .values(status="received", received_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    if stock._rowcount(done) != 1:
        raise Conflict(
            "purchase_request_closed", f"Purchase request {request_id} was already received."
        )
    gift = service.gift_by_id(session, req.gift_id)
    stock.receive(
        session,
        ctx,
        gift.code,
        warehouse or req.warehouse,
        req.quantity,
        f"purchase request {request_id}"
        + (f" from {suppliers.codes_by_id(session)[req.supplier_id]}" if req.supplier_id else ""),
    )
    session.refresh(req)
    return req


def requests(session: Session) -> list[tuple[PurchaseRequest, str]]:
    return [
        (r, c)
        for r, c in session.execute(
            select(PurchaseRequest, Gift.code)
            .join(Gift, Gift.id == PurchaseRequest.gift_id)
            .order_by(PurchaseRequest.id.desc())
            .limit(200)
        )
    ]
