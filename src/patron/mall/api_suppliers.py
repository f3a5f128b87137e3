"""Thin routes of the mall's suppliers: agreements, quotes, the monthly comparison and each
gift's preferred and backup supplier (purchase requests follow them, see ``suppliers``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.timeutil import business_date, business_tz
from patron.ledger.service import Ctx
from patron.mall import service, suppliers
from patron.mall.schemas import (
    AgreementIn,
    AgreementOut,
    ComparisonLine,
    ComparisonList,
    ComparisonOut,
    GiftSuppliersIn,
    GiftSuppliersOut,
    SupplierIn,
    SupplierList,
    SupplierOut,
    SupplierQuoteIn,
    SupplierQuoteOut,
)
from patron.web.context import request_ctx
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1/mall", tags=["mall"])
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Read = Annotated[Principal, Depends(require(perm.MALL_READ))]
Manage = Annotated[Principal, Depends(require(perm.MALL_MANAGE))]


def _ctx(request: Request, session: Session, principal: Principal) -> Ctx:
    return request_ctx(request, session, principal, service.SECTIONS)


def _supplier_out(v: suppliers.SupplierView) -> SupplierOut:
    s = v.supplier
    return SupplierOut(
        code=s.code,
        name=s.name,
        contact=s.contact,
        is_active=s.is_active,
        in_force=v.in_force,
        agreements=[
            AgreementOut(ref=a.ref, valid_from=a.valid_from, valid_to=a.valid_to, terms=a.terms)
            for a in v.agreements
        ],
    )


def _listing(session: Session, clock: ClockDep, settings: SettingsDep) -> list[SupplierOut]:
    day = business_date(clock.now(), business_tz(settings.business_timezone))
    return [_supplier_out(v) for v in suppliers.listing(session, day)]


@router.get("/suppliers", response_model=SupplierList, summary="Suppliers and their agreements")
def list_suppliers(
    session: SessionDep, clock: ClockDep, settings: SettingsDep, _p: Read
) -> SupplierList:
    return SupplierList(items=_listing(session, clock, settings))


@router.put(
    "/suppliers/{code}",
    response_model=SupplierOut,
    summary="Create or update a supplier",
    responses=errors(422),
)
def put_supplier(
    code: Code,
    body: SupplierIn,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Manage,
) -> SupplierOut:
    ctx = _ctx(request, session, principal)
    suppliers.put(
        session, ctx, code, name=body.name, contact=body.contact, is_active=body.is_active
    )
    return next(s for s in _listing(session, clock, settings) if s.code == code)


@router.post(
    "/suppliers/{code}/agreements",
    response_model=AgreementOut,
    status_code=201,
    summary="Add an agreement (validity and terms) to a supplier",
    responses=errors(404, 422),
)
def post_agreement(
    code: Code, body: AgreementIn, request: Request, session: SessionDep, principal: Manage
) -> AgreementOut:
    row = suppliers.add_agreement(
        session,
        _ctx(request, session, principal),
        code,
        ref=body.ref,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        terms=body.terms,
    )
    return AgreementOut(
        ref=row.ref, valid_from=row.valid_from, valid_to=row.valid_to, terms=row.terms
    )


@router.post(
    "/suppliers/{code}/quotes",
    response_model=SupplierQuoteOut,
    status_code=201,
    summary="Record a supplier's quote for a gift",
    responses=errors(404, 422),
)
def post_quote(
    code: Code, body: SupplierQuoteIn, request: Request, session: SessionDep, principal: Manage
) -> SupplierQuoteOut:
    row = suppliers.add_quote(
        session,
        _ctx(request, session, principal),
        code,
        body.gift_code,
        unit_cost_fen=body.unit_cost_fen,
        quoted_on=body.quoted_on,
        min_quantity=body.min_quantity,
        lead_days=body.lead_days,
    )
    return SupplierQuoteOut(
        supplier_code=code,
        gift_code=body.gift_code,
        unit_cost_fen=row.unit_cost_fen,
        min_quantity=row.min_quantity,
        lead_days=row.lead_days,
        quoted_on=row.quoted_on,
    )


@router.put(
    "/gifts/{code}/suppliers",
    response_model=GiftSuppliersOut,
    summary="Choose a gift's preferred and backup supplier",
    responses=errors(404, 422),
)
def put_gift_suppliers(
    code: Code, body: GiftSuppliersIn, request: Request, session: SessionDep, principal: Manage
) -> GiftSuppliersOut:
    suppliers.set_for_gift(
        session, _ctx(request, session, principal), code, body.preferred, body.backup
    )
    return GiftSuppliersOut(gift_code=code, preferred=body.preferred, backup=body.backup)


@router.get(
    "/quotes/comparison",
    response_model=ComparisonList,
    summary="The month's quotes per gift, cheapest first (complete with enough suppliers)",
    responses=errors(422),
)
def get_comparison(
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    _p: Read,
    month: Annotated[str, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")],
    gift_code: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = None,
) -> ComparisonList:
    day = business_date(clock.now(), business_tz(settings.business_timezone))
    rows = suppliers.comparison(session, month, day, gift_code)
    return ComparisonList(
        month=month,
        min_quotes=service.get_settings(session).min_quotes,
        items=[
            ComparisonOut(
                gift_code=c.gift.code,
                complete=c.complete,
                quotes=[
                    ComparisonLine(
                        supplier_code=q.supplier_code,
                        supplier_name=q.supplier_name,
                        unit_cost_fen=q.unit_cost_fen,
                        min_quantity=q.min_quantity,
                        lead_days=q.lead_days,
                        quoted_on=q.quoted_on,
                        role=q.role,
                        agreement_in_force=q.in_force,
                        cheapest=q.cheapest,
                    )
                    for q in c.lines
                ],
            )
            for c in rows
        ],
    )
