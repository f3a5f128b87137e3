"""Order ingestion, returns, checkout quote/commit and order history."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.coupons import views as coupon_views
from patron.kit.ids import ExternalIdPath, SourcePath
from patron.kit.timeutil import business_tz
from patron.members.models import Member
from patron.members.service import get_member
from patron.orders import checkout, returns, service
from patron.orders.models import Order
from patron.orders.schemas import (
    CommitIn,
    OrderIn,
    OrderLineOut,
    OrderOut,
    OrderPage,
    QuoteIn,
    QuoteLineOut,
    QuoteOut,
    ReturnIn,
    ReturnOut,
)
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1", tags=["orders"])
Writer = Annotated[Principal, Depends(require(perm.ORDERS_WRITE))]
Reader = Annotated[Principal, Depends(require(perm.ORDERS_READ))]


def order_out(session: Session, order: Order, member_no: str | None = None) -> OrderOut:
    if member_no is None:
        member_no = session.scalar(select(Member.member_no).where(Member.id == order.member_id))
    return OrderOut(
        source=order.source,
        external_id=order.external_id,
        member_no=member_no or "",
        channel=order.channel,
        store_code=order.store_code,
        ordered_at=order.ordered_at,
        status=order.status,
        total_fen=order.total_fen,
        points_used=order.points_used,
        points_fen=order.points_fen,
        paid_fen=order.paid_fen,
        points_earned=order.points_earned,
        growth_earned=order.growth_earned,
        refunded_fen=order.refunded_fen,
        rules=order.rules_trace,
        lines=[
            OrderLineOut(
                line_no=ln.line_no,
                sku=ln.sku,
                category=ln.category,
                quantity=ln.quantity,
                unit_price_fen=ln.unit_price_fen,
                discount_fen=ln.discount_fen,
                net_fen=ln.net_fen,
                points_fen=ln.points_fen,
                paid_fen=ln.paid_fen,
                returned_quantity=ln.returned_quantity,
            )
            for ln in order.lines
        ],
    )


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    summary="Record an order from a POS or shop (idempotent by source + external_id)",
    responses={
        200: {"description": "The same order was already recorded", "model": OrderOut},
        **errors(404),  # no such member
    },
)
def ingest_order(
    body: OrderIn,
    response: Response,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> OrderOut:
    order, replayed = service.ingest_order(
        session,
        principal,
        body,
        now=clock.now(),
        tz=business_tz(settings.business_timezone),
        max_backdate_days=settings.order_backdate_days,
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
    return order_out(session, order, body.member_no)


@router.get("/orders/{source}/{external_id}", summary="One order")
def get_order(
    source: SourcePath, external_id: ExternalIdPath, principal: Reader, session: SessionDep
) -> OrderOut:
    return order_out(session, service.get_order(session, source, external_id))


@router.post(
    "/orders/{source}/{external_id}/returns",
    status_code=status.HTTP_201_CREATED,
    summary="Record a full or partial return; claws back points and growth proportionally",
)
def record_return(
    source: SourcePath,
    external_id: ExternalIdPath,
    body: ReturnIn,
    response: Response,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ReturnOut:
    ctx = service.make_ctx(session, principal, clock.now(), business_tz(settings.business_timezone))
    result = returns.record_return(session, ctx, source, external_id, body)
    if result.replayed:
        response.status_code = status.HTTP_200_OK
    r = result.record
    return ReturnOut(
        external_id=r.external_id,
        order_external_id=external_id,
        returned_at=r.returned_at,
        refund_fen=r.refund_fen,
        points_returned=r.points_returned,
        points_clawed=r.points_clawed,
        growth_clawed=r.growth_clawed,
        to_debt=r.to_debt,
        tier_changed_to=result.tier_changed_to,
    )


@router.get("/members/{member_no}/orders", summary="A member's orders, newest first")
def member_orders(
    member_no: Annotated[str, Path(pattern=r"^[0-9]{10}$")],
    principal: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> OrderPage:
    member = get_member(session, member_no)
    rows, total = service.member_orders(session, member.id, limit=limit, offset=offset)
    return OrderPage(
        items=[order_out(session, o, member_no) for o in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _quote_out(priced: checkout.Priced) -> QuoteOut:
    q = priced.quote
    return QuoteOut(
        member_no=priced.member.member_no,
        tier=q.tier_code,
        birthday_month=q.birthday_month,
        list_total_fen=q.list_total_fen,
        member_price_saving_fen=q.member_price_saving_fen,
        line_discount_fen=q.line_discount_fen,
        tier_discount_fen=q.tier_discount_fen,
        birthday_discount_fen=q.birthday_discount_fen,
        order_discount_fen=q.order_discount_fen,
        total_fen=q.total_fen,
        points_balance=priced.balance,
        max_points=q.max_points,
        points_used=q.points_used,
        points_fen=q.points_fen,
        paid_fen=q.paid_fen,
        points_earned=priced.earning.points,
        growth_earned=priced.earning.growth,
        rules=service.trace(priced.earning),
        lines=[QuoteLineOut.model_validate(ql, from_attributes=True) for ql in q.lines],
        **coupon_views.quote_fields(priced.coupons),  # coupons
    )


@router.post(
    "/checkout/quote",
    summary="Price a basket for a member: member prices, discounts, points to earn and usable",
    responses=errors(404),  # no such member
)
def checkout_quote(
    body: QuoteIn,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> QuoteOut:
    ctx = service.make_ctx(session, principal, clock.now(), business_tz(settings.business_timezone))
    return _quote_out(checkout.quote(session, ctx, body))


@router.post(
    "/checkout/commit",
    status_code=status.HTTP_201_CREATED,
    summary="Commit a quoted basket as an order, with its points payment, in one transaction",
    responses=errors(404),  # no such member
)
def checkout_commit(
    body: CommitIn,
    response: Response,
    principal: Writer,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> OrderOut:
    ctx = service.make_ctx(session, principal, clock.now(), business_tz(settings.business_timezone))
    order, replayed = checkout.commit(session, ctx, body)
    if replayed:
        response.status_code = status.HTTP_200_OK
    return order_out(session, order, body.member_no)
