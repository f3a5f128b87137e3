"""Thin routes of the points mall for the shop, the ERP and the console."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.ledger.service import Ctx
from patron.mall import lottery, redemptions, replenish, service, stock, suppliers
from patron.mall.domain import MallSettings
from patron.mall.models import (
    FlashSale,
    Gift,
    LotteryPool,
    LotteryPrize,
    PurchaseRequest,
    Redemption,
)
from patron.mall.schemas import (
    AlertList,
    AlertOut,
    CancelIn,
    DrawIn,
    DrawOut,
    FlashSaleIn,
    FlashSaleList,
    FlashSaleOut,
    GiftIn,
    GiftList,
    GiftOut,
    MovementList,
    MovementOut,
    PoolIn,
    PoolOut,
    PrizeOut,
    PurchaseRequestList,
    PurchaseRequestOut,
    ReceiptIn,
    ReceiveRequestIn,
    RedeemIn,
    RedemptionList,
    RedemptionOut,
    RedemptionReturnIn,
    ShipIn,
    StockAdjustmentIn,
    StockLine,
    StockList,
    TransferIn,
    VerifyIn,
)
from patron.members import service as members
from patron.risk import service as risk
from patron.web.context import device_id, request_ctx
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1/mall", tags=["mall"])
GiftCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
RedemptionCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{4,16}$")]
Read = Annotated[Principal, Depends(require(perm.MALL_READ))]
Redeem = Annotated[Principal, Depends(require(perm.MALL_REDEEM))]
Manage = Annotated[Principal, Depends(require(perm.MALL_MANAGE))]


def _ctx(request: Request, session: Session, principal: Principal) -> Ctx:
    return request_ctx(request, session, principal, service.SECTIONS)


def gift_out(v: service.GiftView) -> GiftOut:
    g = v.gift
    return GiftOut(
        code=g.code,
        name=g.name,
        description=g.description,
        category=g.category,
        points=g.points,
        cash_fen=g.cash_fen,
        min_tier=g.min_tier,
        sale_starts_at=g.sale_starts_at,
        sale_ends_at=g.sale_ends_at,
        limit_per_member=g.limit_per_member,
        limit_window=g.limit_window,
        is_active=g.is_active,
        value_band=v.band_label,
        available=v.available,
        hot=v.hot,
    )


def redemption_out(r: Redemption, gift: Gift, member_no: str) -> RedemptionOut:
    return RedemptionOut(
        code=r.code,
        member_no=member_no,
        gift_code=gift.code,
        gift_name=gift.name,
        quantity=r.quantity,
        points=r.points,
        cash_fen=r.cash_fen,
        warehouse=r.warehouse,
        delivery=r.delivery,
        store_code=r.store_code,
        status=r.status,
        flash_sale_id=r.flash_sale_id,
        code_expires_at=r.code_expires_at,
        verified_at=r.verified_at,
        verified_store=r.verified_store,
        carrier=r.carrier,
        tracking_no=r.tracking_no,
        shipped_at=r.shipped_at,
        received_at=r.received_at,
        cancelled_at=r.cancelled_at,
        returned_at=r.returned_at,
        created_at=r.created_at,
    )


def _out(session: Session, r: Redemption, gift: Gift | None = None) -> RedemptionOut:
    gift = gift or session.get(Gift, r.gift_id)
    assert gift is not None
    return redemption_out(r, gift, service.member_no_of(session, r.member_id))


def _flash_out(s: FlashSale, gift_code: str) -> FlashSaleOut:
    return FlashSaleOut(
        id=s.id,
        gift_code=gift_code,
        points=s.points,
        quantity=s.quantity,
        granted=s.granted,
        remaining=s.quantity - s.granted,
        per_member_limit=s.per_member_limit,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
    )


def prize_out(p: LotteryPrize) -> PrizeOut:
    return PrizeOut(
        id=p.id,
        name=p.name,
        kind=p.kind,
        award_points=p.award_points,
        ppm=p.ppm,
        stock=p.stock,
        is_fallback=p.is_fallback,
    )


def _pool_out(pool: LotteryPool, prizes: list[LotteryPrize]) -> PoolOut:
    return PoolOut(
        code=pool.code,
        name=pool.name,
        kind=pool.kind,
        cost_points=pool.cost_points,
        daily_limit=pool.daily_limit,
        version=pool.version,
        is_active=pool.is_active,
        prizes=[prize_out(p) for p in prizes],
    )


# --------------------------------------------------------------------------- settings


@router.get("/settings", response_model=MallSettings, summary="Mall settings")
def get_settings(session: SessionDep, _p: Read) -> MallSettings:
    return service.get_settings(session)


@router.put("/settings", response_model=MallSettings, summary="Change the mall settings")
def put_settings(
    body: MallSettings,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))],
) -> MallSettings:
    service.put_settings(session, principal, body, clock.now())
    return body


# --------------------------------------------------------------------------- gifts


@router.get("/gifts", response_model=GiftList, summary="Gift catalogue")
def list_gifts(
    session: SessionDep,
    clock: ClockDep,
    _p: Read,
    category: Annotated[str | None, Query(max_length=32)] = None,
    band: Annotated[int | None, Query(ge=0, le=5)] = None,
    on_offer: bool = False,
) -> GiftList:
    views = service.browse(
        session, clock.now(), category=category, band=band, include_closed=not on_offer
    )
    return GiftList(items=[gift_out(v) for v in views])


@router.get("/gifts/{code}", response_model=GiftOut, summary="One gift", responses=errors(404))
def get_gift(code: GiftCode, session: SessionDep, clock: ClockDep, _p: Read) -> GiftOut:
    return gift_out(service.view(session, service.get_gift(session, code), clock.now()))


@router.put(
    "/gifts/{code}",
    response_model=GiftOut,
    summary="Create or update a gift",
    responses=errors(422),
)
def put_gift(
    code: GiftCode, body: GiftIn, session: SessionDep, clock: ClockDep, principal: Manage
) -> GiftOut:
    if body.code != code:
        body = body.model_copy(update={"code": code})
    gift = service.upsert_gift(session, principal, body, now=clock.now())
    return gift_out(service.view(session, gift, clock.now()))


# --------------------------------------------------------------------------- stock


@router.get("/stock", response_model=StockList, summary="Stock per gift and warehouse")
def get_stock(
    session: SessionDep,
    _p: Read,
    gift_code: Annotated[str | None, Query(max_length=32)] = None,
) -> StockList:
    return StockList(
        items=[
            StockLine(
                gift_code=c,
                warehouse=s.warehouse,
                on_hand=s.on_hand,
                reserved=s.reserved,
                available=s.on_hand - s.reserved,
            )
            for c, s in stock.levels(session, gift_code)
        ]
    )


@router.get("/stock/movements", response_model=MovementList, summary="Stock movement ledger")
def get_movements(
    session: SessionDep,
    _p: Read,
    gift_code: Annotated[str | None, Query(max_length=32)] = None,
    warehouse: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MovementList:
    rows = stock.movements(session, gift_code=gift_code, warehouse=warehouse, limit=limit)
    return MovementList(
        items=[
            MovementOut(
                id=m.id,
                gift_code=g,
                warehouse=m.warehouse,
                kind=m.kind,
                on_hand_delta=m.on_hand_delta,
                reserved_delta=m.reserved_delta,
                redemption_code=rc,
                reason=m.reason,
                actor=m.actor,
                created_at=m.created_at,
            )
            for m, g, rc in rows
        ]
    )


def _stock_write(
    request: Request,
    session: Session,
    principal: Principal,
    body: ReceiptIn | StockAdjustmentIn | TransferIn,
) -> StockList:
    """A stock write (receipt, adjustment, transfer) and the gift's levels after it."""
    ctx = _ctx(request, session, principal)
    match body:
        case ReceiptIn():
            stock.receive(session, ctx, body.gift_code, body.warehouse, body.quantity, body.reason)
        case StockAdjustmentIn():
            stock.adjust(session, ctx, body.gift_code, body.warehouse, body.delta, body.reason)
        case TransferIn():
            stock.transfer(
                session,
                ctx,
                body.gift_code,
                body.from_warehouse,
                body.to_warehouse,
                body.quantity,
                body.reason,
            )
    return get_stock(session, principal, body.gift_code)


@router.post(
    "/stock/receipts",
    response_model=StockList,
    status_code=201,
    summary="Receive stock into a warehouse",
    responses=errors(404),
)
def post_receipt(
    body: ReceiptIn, request: Request, session: SessionDep, principal: Manage
) -> StockList:
    return _stock_write(request, session, principal, body)


@router.post(
    "/stock/adjustments",
    response_model=StockList,
    status_code=201,
    summary="Correct stock after a count",
    responses=errors(404, 409),
)
def post_adjustment(
    body: StockAdjustmentIn, request: Request, session: SessionDep, principal: Manage
) -> StockList:
    return _stock_write(request, session, principal, body)


@router.post(
    "/stock/transfers",
    response_model=StockList,
    status_code=201,
    summary="Move stock between warehouses",
    responses=errors(404, 409),
)
def post_transfer(
    body: TransferIn, request: Request, session: SessionDep, principal: Manage
) -> StockList:
    return _stock_write(request, session, principal, body)


# --------------------------------------------------------------------------- redemptions


@router.post(
    "/redemptions",
    response_model=RedemptionOut,
    status_code=201,
    summary="Redeem a gift for a member (points spent, stock reserved, code issued)",
    responses=errors(403, 404, 409),
)
def post_redemption(
    body: RedeemIn,
    session: SessionDep,
    request: Request,
    principal: Redeem,
) -> RedemptionOut | JSONResponse:
    # A sold-out flash sale answers before the settings or the member are even read (most
    # of its attempts are losers).
    gate = None
    if body.flash_sale_id is not None:
        now = request.app.state.clock.now()
        gate = redemptions.flash_gate(session, now, body.flash_sale_id, body.gift_code)
    ctx = _ctx(request, session, principal)
    member = members.get_member(session, body.member_no)
    try:
        r, gift = redemptions.redeem(
            session,
            ctx,
            member,
            redemptions.RedeemRequest(
                gift_code=body.gift_code,
                quantity=body.quantity,
                delivery=body.delivery,
                store_code=body.store_code,
                flash_sale_id=body.flash_sale_id,
                device_id=device_id(request),
            ),
            gate=gate,
        )
    except risk.RiskHold as hold:  # returned, not raised: the review it opens is kept
        return risk.hold_response(session, principal, hold)
    return redemption_out(r, gift, member.member_no)


@router.get(
    "/redemptions",
    response_model=RedemptionList,
    summary="A member's redemption orders",
    responses=errors(404),
)
def list_redemptions(
    session: SessionDep,
    _p: Read,
    member_no: Annotated[str, Query(pattern=r"^[0-9]{10}$")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RedemptionList:
    member = members.get_member(session, member_no)
    return RedemptionList(
        items=[
            redemption_out(r, g, member.member_no)
            for r, g in redemptions.of_member(session, member.id, limit)
        ]
    )


@router.get(
    "/redemptions/{code}",
    response_model=RedemptionOut,
    summary="One redemption order",
    responses=errors(404),
)
def get_redemption(code: RedemptionCode, session: SessionDep, _p: Read) -> RedemptionOut:
    return _out(session, redemptions.get(session, code))


@router.post(
    "/redemptions/{code}/cancel",
    response_model=RedemptionOut,
    summary="Cancel a reserved redemption (points and stock back)",
    responses=errors(404, 409),
)
def post_cancel(
    code: RedemptionCode,
    body: CancelIn,
    session: SessionDep,
    request: Request,
    principal: Redeem,
) -> RedemptionOut:
    ctx = _ctx(request, session, principal)
    return _out(session, *redemptions.cancel(session, ctx, code, body.reason))


@router.post(
    "/redemptions/{code}/return",
    response_model=RedemptionOut,
    summary="Record the return of a shipped gift (the unit back in stock, the points back)",
    responses=errors(404, 409),
)
def post_return(
    code: RedemptionCode,
    body: RedemptionReturnIn,
    session: SessionDep,
    request: Request,
    principal: Manage,
) -> RedemptionOut:
    ctx = _ctx(request, session, principal)
    return _out(session, *redemptions.return_gift(session, ctx, code, body.reason))


@router.post(
    "/redemptions/{code}/ship",
    response_model=RedemptionOut,
    summary="Record the shipment of a redemption",
    responses=errors(404, 409),
)
def post_ship(
    code: RedemptionCode,
    body: ShipIn,
    session: SessionDep,
    request: Request,
    principal: Redeem,
) -> RedemptionOut:
    ctx = _ctx(request, session, principal)
    return _out(session, *redemptions.ship(session, ctx, code, body.carrier, body.tracking_no))


@router.post(
    "/redemptions/{code}/receive",
    response_model=RedemptionOut,
    summary="Record that the member received a shipped gift",
    responses=errors(404, 409),
)
def post_receive(
    code: RedemptionCode,
    session: SessionDep,
    request: Request,
    principal: Redeem,
) -> RedemptionOut:
    ctx = _ctx(request, session, principal)
    return _out(session, *redemptions.receive(session, ctx, code))


@router.post(
    "/verifications",
    response_model=RedemptionOut,
    summary="Verify a redemption code at a store and hand the gift over (核销)",
    responses=errors(404, 409),
)
def post_verification(
    body: VerifyIn,
    session: SessionDep,
    request: Request,
    principal: Redeem,
) -> RedemptionOut:
    ctx = _ctx(request, session, principal)
    return _out(session, *redemptions.verify(session, ctx, body.code, body.store_code))


# --------------------------------------------------------------------------- flash sales


@router.get("/flash-sales", response_model=FlashSaleList, summary="Flash sales")
def list_flash_sales(session: SessionDep, _p: Read) -> FlashSaleList:
    return FlashSaleList(items=[_flash_out(s, c) for s, c in redemptions.flash_sales(session)])


@router.post(
    "/flash-sales",
    response_model=FlashSaleOut,
    status_code=201,
    summary="Create a flash sale",
    responses=errors(404),
)
def post_flash_sale(
    body: FlashSaleIn,
    session: SessionDep,
    request: Request,
    principal: Manage,
) -> FlashSaleOut:
    ctx = _ctx(request, session, principal)
    sale = redemptions.create_flash_sale(
        session,
        ctx,
        body.gift_code,
        points=body.points,
        quantity=body.quantity,
        per_member_limit=body.per_member_limit,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    return _flash_out(sale, body.gift_code)


# --------------------------------------------------------------------------- lotteries


@router.put(
    "/lotteries/{code}",
    response_model=PoolOut,
    summary="Create or replace a lottery pool (a new version)",
    responses=errors(422),
)
def put_pool(
    code: GiftCode,
    body: PoolIn,
    session: SessionDep,
    request: Request,
    principal: Manage,
) -> PoolOut:
    if body.code != code:
        body = body.model_copy(update={"code": code})
    ctx = _ctx(request, session, principal)
    pool, prizes = lottery.put_pool(session, ctx, body)
    return _pool_out(pool, prizes)


@router.get(
    "/lotteries/{code}", response_model=PoolOut, summary="A lottery pool", responses=errors(404)
)
def get_pool(code: GiftCode, session: SessionDep, _p: Read) -> PoolOut:
    pool, prizes = lottery.get_pool(session, code)
    return _pool_out(pool, prizes)


@router.post(
    "/lotteries/{code}/draws",
    response_model=DrawOut,
    status_code=201,
    summary="Draw once for a member",
    responses=errors(404, 409),
)
def post_draw(
    code: GiftCode,
    body: DrawIn,
    session: SessionDep,
    request: Request,
    principal: Redeem,
) -> DrawOut:
    ctx = _ctx(request, session, principal)
    member = members.get_member(session, body.member_no)
    return draw_out(lottery.draw(session, ctx, member, code))


def draw_out(d: lottery.DrawResult) -> DrawOut:
    return DrawOut(
        id=d.draw.id,
        pool_code=d.pool.code,
        pool_version=d.draw.pool_version,
        prize=prize_out(d.prize),
        fell_back=d.draw.prize_id != d.draw.drawn_prize_id,
        points_spent=d.pool.cost_points,
        points_awarded=d.prize.award_points if d.prize.kind == "points" else 0,
        draws_left_today=d.left_today,
    )


# --------------------------------------------------------------------------- replenishment


def _request_out(
    r: PurchaseRequest, gift_code: str, supplier_codes: dict[int, str] | None = None
) -> PurchaseRequestOut:
    return PurchaseRequestOut(
        id=r.id,
        gift_code=gift_code,
        warehouse=r.warehouse,
        quantity=r.quantity,
        status=r.status,
        available_at_request=r.available_at_request,
        forecast=r.forecast,
        created_at=r.created_at,
        received_at=r.received_at,
        supplier_code=(supplier_codes or {}).get(r.supplier_id or 0),
        unit_cost_fen=r.unit_cost_fen,
    )


@router.get("/stock/alerts", response_model=AlertList, summary="Short stock and slow movers")
def get_alerts(session: SessionDep, clock: ClockDep, _p: Read) -> AlertList:
    return AlertList(
        items=[
            AlertOut(
                gift_code=a.gift.code,
                available=a.available,
                monthly_forecast=a.forecast,
                short=a.short,
                slow_mover=a.slow_mover,
                last_redeemed_at=a.last_redeemed_at,
                suggested_quantity=a.suggested,
            )
            for a in replenish.alerts(session, clock.now())
        ]
    )


@router.get("/purchase-requests", response_model=PurchaseRequestList, summary="Purchase requests")
def list_requests(session: SessionDep, _p: Read) -> PurchaseRequestList:
    codes = suppliers.codes_by_id(session)
    return PurchaseRequestList(
        items=[_request_out(r, c, codes) for r, c in replenish.requests(session)]
    )


@router.post(
    "/purchase-requests",
    response_model=PurchaseRequestList,
    status_code=201,
    summary="Raise a purchase request for every gift short of stock",
)
def post_requests(request: Request, session: SessionDep, principal: Manage) -> PurchaseRequestList:
    ctx = _ctx(request, session, principal)
    made = replenish.raise_requests(session, ctx)
    codes = {g.id: g.code for g in (service.gift_by_id(session, r.gift_id) for r in made)}
    by_id = suppliers.codes_by_id(session)
    return PurchaseRequestList(items=[_request_out(r, codes[r.gift_id], by_id) for r in made])


@router.post(
    "/purchase-requests/{request_id}/receive",
    response_model=PurchaseRequestOut,
    summary="The goods of a purchase request arrived (a stock receipt)",
    responses=errors(404, 409),
)
def post_receive_request(
    request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ReceiveRequestIn,
    session: SessionDep,
    request: Request,
    principal: Manage,
) -> PurchaseRequestOut:
    ctx = _ctx(request, session, principal)
    r = replenish.receive_request(session, ctx, request_id, body.warehouse)
    return _request_out(
        r, service.gift_by_id(session, r.gift_id).code, suppliers.codes_by_id(session)
    )
