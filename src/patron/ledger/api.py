"""Thin routes over the ledger flows. Members are addressed by ``member_no``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron import context
from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.timeutil import business_tz
from patron.ledger import domain, flows, growth, jobs, queries, service
from patron.ledger.models import PointsAdjustment, PointsPosting
from patron.ledger.schemas import (
    AdjustmentIn,
    AdjustmentOut,
    AllocationOut,
    BalanceOut,
    DecisionIn,
    EarnIn,
    ExpiryLine,
    GrowthOut,
    HistoryOut,
    PendingLine,
    PostingOut,
    PostingResultOut,
    RefundIn,
    RefundOut,
    SpendIn,
)
from patron.members import service as members
from patron.tiers import domain as tier_domain
from patron.tiers import service as tiers
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.routing import api_router

router = api_router("/api/v1/members/{member_no}", tags=["points"])
MemberNo = Annotated[str, Path(pattern=r"^[0-9]{10}$", description="10-digit member number")]
RowId = Annotated[int, Path(ge=1, le=2**53)]
admin_router = api_router("/api/v1/points", tags=["points"])


def _ctx(
    session: Session, principal: Principal, clock: ClockDep, settings: SettingsDep
) -> service.Ctx:
    return context.build(session, principal, clock.now(), business_tz(settings.business_timezone))


def _balance_out(session: Session, ctx: service.Ctx, member_no: str, member_id: int) -> BalanceOut:
    b = queries.balance(session, member_id, ctx.now)
    return BalanceOut(
        member_no=member_no,
        available=b.available,
        pending=b.pending,
        debt=b.debt,
        lifetime_earned=b.lifetime_earned,
        lifetime_redeemed=b.lifetime_redeemed,
        lifetime_expired=b.lifetime_expired,
        expiry_schedule=[
            ExpiryLine(last_day=domain.last_valid_day(at, ctx.tz), expires_at=at, points=n)
            for at, n in b.expiry_schedule
        ],
        pending_schedule=[PendingLine(release_at=at, points=n) for at, n in b.pending_schedule],
    )


def _posting_out(session: Session, posting_id: int) -> PostingOut:
    p = session.get(PointsPosting, posting_id)
    assert p is not None
    allocs = queries.allocations_of(session, [posting_id]).get(posting_id, [])
    return _to_out(p, allocs)


def _to_out(p: PointsPosting, allocs: list[tuple[int, int]]) -> PostingOut:
    return PostingOut(
        id=p.id,
        kind=p.kind,
        available_delta=p.available_delta,
        pending_delta=p.pending_delta,
        debt_delta=p.debt_delta,
        reason=p.reason,
        source_type=domain.shown_source(p.source_type),
        origin="api" if domain.is_api_source(p.source_type) else "patron",
        source_id=p.source_id,
        reverses_id=p.reverses_id,
        actor=p.actor,
        created_at=p.created_at,
        allocations=[AllocationOut(lot_id=lot, amount=n) for lot, n in allocs],
    )


def _result(
    session: Session,
    ctx: service.Ctx,
    member_no: str,
    member_id: int,
    res: service.PostingResult,
    changed: str | None = None,
) -> PostingResultOut:
    return PostingResultOut(
        posting=_posting_out(session, res.posting_id),
        replayed=res.replayed,
        balance=_balance_out(session, ctx, member_no, member_id),
        tier_changed_to=changed,
    )


@router.get("/points", response_model=BalanceOut)
def get_balance(
    member_no: MemberNo,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_READ))],
) -> BalanceOut:
    member = members.get_member(session, member_no)
    return _balance_out(session, _ctx(session, principal, clock, settings), member_no, member.id)


@router.get("/points/history", response_model=HistoryOut)
def get_history(
    member_no: MemberNo,
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.POINTS_READ))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HistoryOut:
    member = members.get_member(session, member_no)
    rows, total = queries.history(session, member.id, limit=limit, offset=offset)
    allocs = queries.allocations_of(session, [r.id for r in rows])
    return HistoryOut(
        items=[_to_out(r, allocs.get(r.id, [])) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post("/points/earn", response_model=PostingResultOut, status_code=201)
def post_earn(
    member_no: MemberNo,
    body: EarnIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_GRANT))],
) -> PostingResultOut:
    member = members.get_member(session, member_no)
    ctx = _ctx(session, principal, clock, settings)
    res = flows.direct_earn(
        session,
        ctx,
        member.id,
        points=body.points,
        growth_value=body.growth,
        source_type=body.source_type,
        source_id=body.source_id,
        reason=body.reason,
        pending_days=body.pending_days,
    )
    return _result(session, ctx, member_no, member.id, res.posting, res.tier_changed_to)


@router.post("/points/spend", response_model=PostingResultOut, status_code=201)
def post_spend(
    member_no: MemberNo,
    body: SpendIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_WRITE))],
) -> PostingResultOut:
    member = members.get_member(session, member_no)
    ctx = _ctx(session, principal, clock, settings)
    res = flows.spend(
        session,
        ctx,
        member.id,
        points=body.points,
        source_type=domain.api_source(body.source_type),
        source_id=body.source_id,
        reason=body.reason,
    )
    return _result(session, ctx, member_no, member.id, res)


@router.post("/points/spends/{posting_id}/cancel", response_model=PostingResultOut)
def post_cancel_spend(
    member_no: MemberNo,
    posting_id: RowId,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_WRITE))],
) -> PostingResultOut:
    member = members.get_member(session, member_no)
    ctx = _ctx(session, principal, clock, settings)
    res = flows.cancel_spend(session, ctx, member.id, posting_id)
    return _result(session, ctx, member_no, member.id, res)


@router.post("/points/refunds", response_model=RefundOut, status_code=201)
def post_refund(
    member_no: MemberNo,
    body: RefundIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_WRITE))],
) -> RefundOut:
    member = members.get_member(session, member_no)
    ctx = _ctx(session, principal, clock, settings)
    r = flows.refund(
        session,
        ctx,
        member.id,
        source_type=domain.api_source(body.source_type),
        source_id=body.source_id,
        refund_id=body.refund_id,
        order_total_fen=body.order_total_fen,
        refund_amount_fen=body.refund_amount_fen,
    )
    return RefundOut(
        refund_id=r.refund_id,
        points_clawed=r.points_clawed,
        growth_clawed=r.growth_clawed,
        from_pending=r.from_pending,
        from_available=r.from_available,
        to_debt=r.to_debt,
        replayed=r.replayed,
        tier_changed_to=r.tier_changed_to,
        balance=_balance_out(session, ctx, member_no, member.id),
    )


def _adj_out(row: PointsAdjustment) -> AdjustmentOut:
    return AdjustmentOut(
        id=row.id,
        member_id=row.member_id,
        ledger=row.ledger,
        amount=row.amount,
        reason=row.reason,
        status=row.status,
        requested_by=row.requested_by,
        decided_by=row.decided_by,
        decision_note=row.decision_note,
        created_at=row.created_at,
        decided_at=row.decided_at,
    )


@router.post("/points/adjustments", response_model=AdjustmentOut, status_code=201)
def post_adjustment(
    member_no: MemberNo,
    body: AdjustmentIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_ADJUST))],
) -> AdjustmentOut:
    member = members.get_member(session, member_no)
    ctx = _ctx(session, principal, clock, settings)
    row = flows.request_adjustment(
        session, ctx, member.id, ledger=body.ledger, amount=body.amount, reason=body.reason
    )
    return _adj_out(row)


@router.get("/growth", response_model=GrowthOut)
def get_growth(
    member_no: MemberNo,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_READ))],
) -> GrowthOut:
    member = members.get_member(session, member_no)
    ctx = _ctx(session, principal, clock, settings)
    ladder = tiers.get_ladder(session)
    bal, lifetime = growth.balance(session, member.id)
    start = tier_domain.window_start(ladder.qualification_window, ctx.now, ctx.tz)
    return GrowthOut(
        member_no=member_no,
        balance=bal,
        lifetime_earned=lifetime,
        window_growth=growth.window_total(session, member.id, start),
        window_start=start,
        qualification_window=ladder.qualification_window,
    )


# ---------------------------------------------------------------- program-wide endpoints


@admin_router.get("/adjustments", response_model=list[AdjustmentOut])
def list_adjustments(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.POINTS_APPROVE))],
    status: Literal["pending_approval", "applied", "rejected"] = "pending_approval",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[AdjustmentOut]:
    rows = session.scalars(
        select(PointsAdjustment)
        .where(PointsAdjustment.status == status)
        .order_by(PointsAdjustment.id)
        .limit(limit)
    )
    return [_adj_out(r) for r in rows]


def _decide(
    approve: bool,
    adjustment_id: RowId,
    body: DecisionIn | None,
    session: Session,
    principal: Principal,
    clock: ClockDep,
    settings: SettingsDep,
) -> AdjustmentOut:
    ctx = _ctx(session, principal, clock, settings)
    return _adj_out(
        flows.decide_adjustment(
            session, ctx, adjustment_id, approve=approve, note=body.note if body else ""
        )
    )


@admin_router.post("/adjustments/{adjustment_id}/approve", response_model=AdjustmentOut)
def approve_adjustment(
    adjustment_id: RowId,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_APPROVE))],
    body: DecisionIn | None = None,
) -> AdjustmentOut:
    return _decide(True, adjustment_id, body, session, principal, clock, settings)


@admin_router.post("/adjustments/{adjustment_id}/reject", response_model=AdjustmentOut)
def reject_adjustment(
    adjustment_id: RowId,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.POINTS_APPROVE))],
    body: DecisionIn | None = None,
) -> AdjustmentOut:
    return _decide(False, adjustment_id, body, session, principal, clock, settings)


@admin_router.get("/settings", response_model=service.PointsSettings)
def get_points_settings(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.POINTS_READ))],
) -> service.PointsSettings:
    return service.get_points_settings(session)


@admin_router.put("/settings", response_model=service.PointsSettings)
def put_points_settings(
    body: service.PointsSettings,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))],
) -> service.PointsSettings:
    from patron.program import service as program

    program.put_section(session, principal, service.SECTION, body, now=clock.now())
    return body


@admin_router.get("/expiring")
def list_expiring(
    session: SessionDep,
    clock: ClockDep,
    _principal: Annotated[Principal, Depends(require(perm.POINTS_READ))],
    days: Annotated[int | None, Query(ge=1, le=365)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, object]]:
    window = days or service.get_points_settings(session).reminder_days
    return [
        {"member_no": r.member_no, "points": r.points, "first_expiry": r.first_expiry}
        for r in jobs.expiring(session, clock.now(), window, limit=limit)
    ]
