"""Coupon templates, issues, wallets, exchanges for points and voids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request, Response, status

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.coupons import bulk, domain, service
from patron.coupons.domain import CouponSettings
from patron.coupons.models import CouponTemplate
from patron.coupons.schemas import (
    BulkIssueOut,
    CouponDetailOut,
    CouponHistoryOut,
    CouponOut,
    CouponTemplateIn,
    CouponTemplateOut,
    ExchangeIn,
    IssueIn,
    IssueOut,
    SegmentIssueIn,
    VoidIn,
)
from patron.coupons.views import coupon_out
from patron.errors import Invalid
from patron.members.service import get_member
from patron.program import service as program
from patron.web.context import request_ctx
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1", tags=["coupons"])
Reader = Annotated[Principal, Depends(require(perm.COUPONS_READ))]
Issuer = Annotated[Principal, Depends(require(perm.COUPONS_ISSUE))]
Configurer = Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))]
TemplateCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CouponCodePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{4,20}$")]
MemberNoPath = Annotated[str, Path(pattern=r"^[0-9]{10}$")]


def template_out(t: CouponTemplate) -> CouponTemplateOut:
    return CouponTemplateOut(
        code=t.code,
        name=t.name,
        kind=t.kind,
        status=t.status,
        rules=service.rules_of(t),
        total_quantity=t.total_quantity,
        per_member_limit=t.per_member_limit,
        issued_count=t.issued_count,
        points_price=t.points_price,
    )


@router.get("/coupon-templates", summary="Coupon templates")
def list_templates(principal: Reader, session: SessionDep) -> list[CouponTemplateOut]:
    return [template_out(t) for t in service.list_templates(session)]


@router.get("/coupon-templates/{code}", summary="One coupon template")
def get_template(code: TemplateCode, principal: Reader, session: SessionDep) -> CouponTemplateOut:
    return template_out(service.get_template(session, code))


@router.put(
    "/coupon-templates/{code}",
    summary="Create or change a coupon template",
    responses={201: {"description": "Created", "model": CouponTemplateOut}},
)
def put_template(
    code: TemplateCode,
    body: CouponTemplateIn,
    response: Response,
    principal: Configurer,
    session: SessionDep,
    request: Request,
) -> CouponTemplateOut:
    ctx = request_ctx(request, session, principal)
    template, created = service.put_template(
        session,
        ctx,
        code,
        name=body.name,
        rules=service.parse_rules(body.rules),
        total_quantity=body.total_quantity,
        per_member_limit=body.per_member_limit,
        points_price=body.points_price,
        status=body.status,
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return template_out(template)


@router.post(
    "/coupon-templates/{code}/issues",
    summary="Issue a coupon to each member of a list (idempotent by template, member, reason, ref)",
    responses=errors(404, 409),
)
def issue(
    code: TemplateCode,
    body: IssueIn,
    principal: Issuer,
    session: SessionDep,
    request: Request,
) -> IssueOut:
    ctx = request_ctx(request, session, principal)
    ids = service.member_ids_by_no(session, body.member_nos)
    missing = [no for no in body.member_nos if no not in ids]
    if missing:
        raise Invalid(
            "unknown_member",
            f"No member {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; nothing was issued.",
            details={"field": "member_nos", "member_nos": missing[:20]},
        )
    key = domain.issue_key(body.reason, body.ref, at=ctx.now, tz=ctx.tz)
    report = service.issue_many(session, ctx, code, list(ids.values()), reason=body.reason, key=key)
    nos = {mid: no for no, mid in ids.items()}
    return IssueOut(
        issued=len(report.issued),
        already_held=len(report.already),
        refused={nos[mid]: why for mid, why in report.refused.items()},
        codes={nos[c.member_id]: c.code for c in report.issued},
    )


def bulk_out(report: bulk.BulkReport) -> BulkIssueOut:
    return BulkIssueOut(
        reached=report.reached,
        issued=report.issued,
        not_issued=max(report.reached - report.issued, 0),
        left=report.left,
    )


@router.post(
    "/coupon-templates/{code}/segment-issues",
    summary="Issue a coupon to every member of a saved segment (set-based, idempotent by ref)",
    responses=errors(404, 409),
)
def issue_to_segment(
    code: TemplateCode,
    body: SegmentIssueIn,
    principal: Issuer,
    session: SessionDep,
    request: Request,
) -> BulkIssueOut:
    ctx = request_ctx(request, session, principal)
    return bulk_out(bulk.issue_to_segment(session, ctx, code, body.segment, body.ref))


@router.get("/members/{member_no}/coupons", summary="A member's coupon wallet")
def member_coupons(
    member_no: MemberNoPath,
    principal: Reader,
    session: SessionDep,
    all_statuses: Annotated[bool, Query(alias="all")] = False,
) -> list[CouponOut]:
    member = get_member(session, member_no)
    return [
        coupon_out(c, t) for c, t in service.wallet(session, member.id, include_spent=all_statuses)
    ]


@router.post(
    "/members/{member_no}/coupons/exchange",
    status_code=status.HTTP_201_CREATED,
    summary="Take a coupon for points (idempotent by ref)",
    responses={
        200: {"description": "The same exchange was already made", "model": CouponOut},
        **errors(404, 409),
    },
)
def exchange(
    member_no: MemberNoPath,
    body: ExchangeIn,
    response: Response,
    principal: Issuer,
    session: SessionDep,
    request: Request,
) -> CouponOut:
    ctx = request_ctx(request, session, principal)
    member = get_member(session, member_no)
    coupon, replayed = service.exchange(session, ctx, member.id, body.template, body.ref)
    if replayed:
        response.status_code = status.HTTP_200_OK
    _, template = service.get_coupon(session, coupon.code)
    return coupon_out(coupon, template)


@router.get("/coupons/{code}", summary="One coupon with its status history")
def get_coupon(code: CouponCodePath, principal: Reader, session: SessionDep) -> CouponDetailOut:
    c, t = service.get_coupon(session, code)
    return CouponDetailOut(
        **coupon_out(c, t).model_dump(),
        history=[
            CouponHistoryOut(
                status=h.status, event=h.event, at=h.at, order_id=h.order_id, note=h.note
            )
            for h in service.history(session, c.id)
        ],
    )


@router.post("/coupons/{code}/void", summary="Void an unused coupon", responses=errors(404, 409))
def void(
    code: CouponCodePath,
    body: VoidIn,
    principal: Issuer,
    session: SessionDep,
    request: Request,
) -> CouponOut:
    ctx = request_ctx(request, session, principal)
    coupon = service.void(session, ctx, code, body.note)
    c, t = service.get_coupon(session, coupon.code)
    return coupon_out(c, t)


@router.get("/coupon-settings", summary="Coupon settings", response_model=CouponSettings)
def get_settings(principal: Reader, session: SessionDep) -> CouponSettings:
    return service.get_settings(session)


@router.put("/coupon-settings", summary="Change coupon settings", response_model=CouponSettings)
def put_settings(
    body: CouponSettings, principal: Configurer, session: SessionDep, clock: ClockDep
) -> CouponSettings:
    program.put_section(session, principal, domain.SECTION, body, now=clock.now())
    return body
