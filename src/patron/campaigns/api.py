"""Thin routes over campaigns and actions (docs/campaigns.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.orm import Session

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.campaigns import actions, results, service
from patron.campaigns.experiment import Interval
from patron.campaigns.models import Campaign, CampaignAction
from patron.campaigns.schemas import (
    ActionDoneIn,
    ActionIn,
    ActionOut,
    CampaignIn,
    CampaignOut,
    GrantOut,
    GroupOut,
    IntervalOut,
    PreviewOut,
    ResultsOut,
    StatusIn,
)
from patron.kit.timeutil import business_date, business_tz
from patron.members import service as members
from patron.orders.service import make_ctx
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1/campaigns", tags=["campaigns"])
Code = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


def _out(session: Session, c: Campaign) -> CampaignOut:
    return CampaignOut(
        code=c.code,
        name=c.name,
        status=c.status,
        schedule=c.schedule,
        audience=c.audience,
        multiplier_bp=c.multiplier_bp,
        budget_points=c.budget_points,
        budget_fen=c.budget_fen,
        budget_cap_bp=c.budget_cap_bp,
        control_bp=c.control_bp,
        points_cap=service.points_cap(c, service.get_settings(session)),
        points_used=service.points_used(session, c.id),
    )


def _action_out(session: Session, a: CampaignAction) -> ActionOut:
    return ActionOut(
        code=a.code,
        kind=a.kind,
        name=a.name,
        points=a.points,
        daily_cap=a.daily_cap,
        total_cap=a.total_cap,
        campaign=actions.campaign_code(session, a),
        active=a.active,
    )


def _interval(i: Interval | None) -> IntervalOut | None:
    return None if i is None else IntervalOut(estimate=i.estimate, low=i.low, high=i.high)


@router.get("", response_model=list[CampaignOut], summary="Campaigns, newest first")
def list_campaigns(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> list[CampaignOut]:
    return [_out(session, c) for c in service.listing(session)]


@router.post(
    "",
    response_model=CampaignOut,
    status_code=201,
    summary="Create a campaign (a draft)",
    responses=errors(409),
)
def create_campaign(
    body: CampaignIn,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> CampaignOut:
    return _out(session, service.create(session, principal, body, now=clock.now()))


@router.post("/preview", response_model=PreviewOut, summary="Reach and maximum cost of a campaign")
def preview_campaign(
    body: CampaignIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> PreviewOut:
    tz = business_tz(settings.business_timezone)
    p = service.preview(session, body, today=business_date(clock.now(), tz), tz=tz)
    return PreviewOut(
        reach=p.reach,
        control=p.control,
        points_cap=p.points_cap,
        max_cost_fen=p.max_cost_fen,
        next_days=p.next_days,
    )


@router.get("/{code}", response_model=CampaignOut, summary="One campaign", responses=errors(404))
def get_campaign(
    code: Code,
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> CampaignOut:
    return _out(session, service.get(session, code))


@router.put(
    "/{code}", response_model=CampaignOut, summary="Change a campaign", responses=errors(404, 409)
)
def put_campaign(
    code: Code,
    body: CampaignIn,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> CampaignOut:
    return _out(session, service.update(session, principal, code, body, now=clock.now()))


@router.post(
    "/{code}/status",
    response_model=CampaignOut,
    summary="Start, pause, resume or end a campaign",
    responses=errors(404, 409),
)
def set_status(
    code: Code,
    body: StatusIn,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> CampaignOut:
    return _out(session, service.set_status(session, principal, code, body.status, now=clock.now()))


@router.get(
    "/{code}/results",
    response_model=ResultsOut,
    summary="Results against the control group",
    responses=errors(404),
)
def get_results(
    code: Code,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> ResultsOut:
    tz = business_tz(settings.business_timezone)
    r = results.results(
        session, service.get(session, code), today=business_date(clock.now(), tz), tz=tz
    )

    def group(g: results.GroupFigures) -> GroupOut:
        return GroupOut(
            members=g.members,
            buyers=g.buyers,
            orders=g.orders,
            sales_fen=g.sales_fen,
            conversion=g.conversion,
            spend_per_member_fen=g.spend_per_member_fen,
        )

    return ResultsOut(
        code=r.code,
        first_day=r.first_day,
        last_day=r.last_day,
        participants=r.participants,
        treatment=group(r.treatment),
        control=group(r.control),
        points=r.points,
        cost_fen=r.cost_fen,
        incremental_sales_fen=r.incremental_sales_fen,
        roi=r.roi,
        conversion_uplift=_interval(r.uplift.conversion),
        spend_uplift_fen=_interval(r.uplift.spend_per_member),
        stratified_spend_uplift_fen=_interval(r.stratified),
    )


@router.get("/actions/", response_model=list[ActionOut], summary="Actions that earn")
def list_actions(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> list[ActionOut]:
    return [_action_out(session, a) for a in actions.listing(session)]


@router.post(
    "/actions/",
    response_model=ActionOut,
    status_code=201,
    summary="Create an action that earns",
    responses=errors(404, 409),
)
def create_action(
    body: ActionIn,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> ActionOut:
    return _action_out(session, actions.create_action(session, principal, body, now=clock.now()))


@router.post(
    "/actions/{code}/done",
    response_model=GrantOut,
    summary="A member did an action: reward it (once per ref, within the caps)",
    responses=errors(404, 409),
)
def action_done(
    code: Code,
    body: ActionDoneIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_ACTIONS))],
) -> GrantOut:
    member = members.get_member(session, body.member_no)
    ctx = make_ctx(session, principal, clock.now(), business_tz(settings.business_timezone))
    g = actions.record_action(session, ctx, code, member.id, body.ref)
    return GrantOut(
        action=code, member_no=body.member_no, ref=body.ref, points=g.points, replayed=g.replayed
    )
