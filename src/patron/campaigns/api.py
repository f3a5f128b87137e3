"""Thin routes over campaigns and actions (docs/campaigns.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.campaigns import actions, member_events, milestones, referrals, results, service
from patron.campaigns.domain import SECTION, CampaignSettings, ReferralSettings
from patron.campaigns.experiment import Interval
from patron.campaigns.models import Campaign, CampaignAction, MemberEvent, Referral
from patron.campaigns.schemas import (
    ActionDoneIn,
    ActionIn,
    ActionOut,
    CampaignIn,
    CampaignOut,
    CampaignPreviewOut,
    GrantOut,
    GroupOut,
    IntervalOut,
    ResultsOut,
    StatusIn,
)
from patron.coupons.api import bulk_out
from patron.coupons.schemas import BulkIssueOut
from patron.kit.timeutil import business_date, business_tz
from patron.members import service as members
from patron.orders.service import ORDER_SECTIONS
from patron.program import service as program
from patron.web.context import request_ctx
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
        coupon=a.coupon_template,
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


@router.post(
    "/preview", response_model=CampaignPreviewOut, summary="Reach and maximum cost of a campaign"
)
def preview_campaign(
    body: CampaignIn,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> CampaignPreviewOut:
    tz = business_tz(settings.business_timezone)
    now = clock.now()
    p = service.preview(session, body, today=business_date(now, tz), tz=tz, now=now)
    return CampaignPreviewOut(
        reach=p.reach,
        control=p.control,
        points_cap=p.points_cap,
        max_cost_fen=p.max_cost_fen,
        next_days=p.next_days,
    )


# before "/{code}": "settings" is a reserved campaign code
@router.get("/settings", response_model=CampaignSettings, summary="Campaign settings")
def get_campaign_settings(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> CampaignSettings:
    return service.get_settings(session)


@router.put(
    "/settings",
    response_model=CampaignSettings,
    summary="Change the campaign settings (budget cap, point cost, default control share)",
)
def put_campaign_settings(
    body: CampaignSettings,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> CampaignSettings:
    service.put_settings(session, principal, body, now=clock.now())
    return body


@router.get("/milestones", response_model=milestones.MilestoneSettings, summary="Points milestones")
def get_milestone_settings(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> milestones.MilestoneSettings:
    return milestones.get_settings(session)


@router.put(
    "/milestones",
    response_model=milestones.MilestoneSettings,
    summary="Change the points milestones (their benefits and coupons)",
    responses=errors(404),
)
def put_milestone_settings(
    body: milestones.MilestoneSettings,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> milestones.MilestoneSettings:
    milestones.put_settings(session, principal, body, now=clock.now())
    return body


@router.post(
    "/milestones/run",
    response_model=dict[str, int],
    summary="Give the milestones' coupons to the members past them now (milestone → issued)",
)
def run_milestone_coupons(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> dict[str, int]:
    return milestones.issue_coupons(session, request_ctx(request, session, principal))


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


class CouponIssueIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"template": "WELCOME30", "ref": ""}]}
    )

    template: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    #: empty: once per member for the campaign; a recurring campaign names the occasion
    ref: str = Field(default="", pattern=r"^[A-Za-z0-9_.:-]{0,32}$")


@router.post(
    "/{code}/coupon-issues",
    response_model=BulkIssueOut,
    summary="Issue a coupon to the campaign's audience (control group held out; set-based)",
    responses=errors(404, 409),
)
def issue_coupons(
    code: Code,
    body: CouponIssueIn,
    session: SessionDep,
    request: Request,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> BulkIssueOut:
    ctx = request_ctx(request, session, principal)
    return bulk_out(service.issue_coupons(session, ctx, code, body.template, body.ref))


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
        coupons_redeemed=r.coupons_redeemed,
        coupon_cost_fen=r.coupon_cost_fen,
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
    request: Request,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_ACTIONS))],
) -> GrantOut:
    member_id = members.member_id(session, body.member_no)
    # the campaigns' settings come with the order sections' one read
    program.preload(session, {**ORDER_SECTIONS, SECTION: CampaignSettings})
    ctx = request_ctx(request, session, principal)
    g = actions.record_action(session, ctx, code, member_id, body.ref)
    return GrantOut(
        action=code,
        member_no=body.member_no,
        ref=body.ref,
        points=g.points,
        replayed=g.replayed,
        coupon=g.coupon,
        coupon_refused=g.coupon_refused,
    )


# ---------------------------------------------------------------- referral

referral_router = api_router("/api/v1/referrals", tags=["referrals"])


class ReferralCodeOut(BaseModel):
    member_no: str
    code: str
    #: the portal's sign-up page with the code filled in (the QR carries this)
    link: str


class ReferralOut(BaseModel):
    id: int
    referrer_id: int
    referee_id: int
    status: str
    reason: str | None
    referrer_points: int
    referee_points: int


class ReferralDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


class RunOut(BaseModel):
    discovered: int
    rewarded: int
    clawed_back: int


def _referral_out(r: Referral) -> ReferralOut:
    return ReferralOut(
        id=r.id,
        referrer_id=r.referrer_id,
        referee_id=r.referee_id,
        status=r.status,
        reason=r.reason,
        referrer_points=r.referrer_points,
        referee_points=r.referee_points,
    )


@referral_router.get("/settings", response_model=ReferralSettings, summary="Referral settings")
def get_referral_settings(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> ReferralSettings:
    return referrals.get_settings(session)


@referral_router.put(
    "/settings",
    response_model=ReferralSettings,
    summary="Change the referral settings (rewards, coupons, tier-up, caps, abuse limits)",
    responses=errors(404),
)
def put_referral_settings(
    body: ReferralSettings,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> ReferralSettings:
    referrals.put_settings(session, principal, body, now=clock.now())
    return body


@referral_router.get(
    "/codes/{member_no}",
    response_model=ReferralCodeOut,
    summary="A member's referral code and link (created on first use)",
    responses=errors(404),
)
def get_code(
    member_no: Annotated[str, Path(pattern=r"^[0-9]{10}$")],
    session: SessionDep,
    clock: ClockDep,
    _principal: Annotated[Principal, Depends(require(perm.MEMBERS_WRITE))],
) -> ReferralCodeOut:
    code = referrals.code_of(session, members.member_id(session, member_no), now=clock.now())
    return ReferralCodeOut(member_no=member_no, code=code, link=f"/portal/join?ref={code}")


@referral_router.get(
    "", response_model=list[ReferralOut], summary="Referrals by status (held: the review queue)"
)
def list_referrals(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
    status: Annotated[str, Query(pattern="^(pending|rewarded|held|refused|clawed_back)$")] = "held",
) -> list[ReferralOut]:
    return [_referral_out(r) for r in referrals.listing(session, status)]


@referral_router.post(
    "/{referral_id}/decision",
    response_model=ReferralOut,
    summary="Approve or refuse a held referral",
    responses=errors(404, 409),
)
def decide(
    referral_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ReferralDecisionIn,
    session: SessionDep,
    request: Request,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> ReferralOut:
    ctx = request_ctx(request, session, principal)
    return _referral_out(referrals.decide(session, ctx, referral_id, approve=body.approve))


@referral_router.post(
    "/run", response_model=RunOut, summary="Discover, reward and claw back referrals now"
)
def run(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> RunOut:
    ctx = request_ctx(request, session, principal)
    return RunOut(**referrals.run_referrals(session, ctx, request.app.state.cipher))


# ---------------------------------------------------------------- member events

events_router = api_router("/api/v1/member-events", tags=["member events"])


class MemberEventOut(BaseModel):
    code: str
    name: str
    capacity: int
    registered: int
    waitlisted: int
    points_cost: int
    fee_fen: int


class RegistrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_no: str = Field(pattern=r"^[0-9]{10}$")


class CheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkin_code: str = Field(pattern=r"^[A-Za-z0-9]{8}$")


class RegistrationOut(BaseModel):
    event: str
    status: str
    checkin_code: str
    replayed: bool = False


def _event_out(session: Session, e: MemberEvent) -> MemberEventOut:
    return MemberEventOut(
        code=e.code,
        name=e.name,
        capacity=e.capacity,
        registered=e.registered,
        waitlisted=member_events.waitlisted(session, e.id),
        points_cost=e.points_cost,
        fee_fen=e.fee_fen,
    )


@events_router.post(
    "",
    response_model=MemberEventOut,
    status_code=201,
    summary="Create a member event",
    responses=errors(409),
)
def create_event(
    body: member_events.EventIn,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> MemberEventOut:
    return _event_out(
        session, member_events.create_event(session, principal, body, now=clock.now())
    )


@events_router.get(
    "/{code}", response_model=MemberEventOut, summary="A member event", responses=errors(404)
)
def get_event(
    code: Code,
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))],
) -> MemberEventOut:
    session.expire_all()
    return _event_out(session, member_events.get_event(session, code))


@events_router.post(
    "/{code}/registrations",
    response_model=RegistrationOut,
    summary="Register a member (a place or the waiting list)",
    responses=errors(404, 409),
)
def register(
    code: Code,
    body: RegistrationIn,
    session: SessionDep,
    request: Request,
    principal: Annotated[Principal, Depends(require(perm.MEMBERS_WRITE))],
) -> RegistrationOut:
    ctx = request_ctx(request, session, principal)
    done = member_events.register(session, ctx, code, members.member_id(session, body.member_no))
    r = done.registration
    return RegistrationOut(
        event=code, status=r.status, checkin_code=r.checkin_code, replayed=done.replayed
    )


@events_router.post(
    "/{code}/registrations/cancel",
    response_model=RegistrationOut,
    summary="Cancel a member's registration (points return; the waiting list moves up)",
    responses=errors(404, 409),
)
def cancel(
    code: Code,
    body: RegistrationIn,
    session: SessionDep,
    request: Request,
    principal: Annotated[Principal, Depends(require(perm.MEMBERS_WRITE))],
) -> RegistrationOut:
    ctx = request_ctx(request, session, principal)
    r = member_events.cancel(session, ctx, code, members.member_id(session, body.member_no))
    return RegistrationOut(event=code, status=r.status, checkin_code=r.checkin_code)


@events_router.post(
    "/{code}/checkin",
    response_model=RegistrationOut,
    summary="Check a member in at the event by their code",
    responses=errors(404, 409),
)
def checkin(
    code: Code,
    body: CheckinIn,
    session: SessionDep,
    request: Request,
    principal: Annotated[Principal, Depends(require(perm.MEMBERS_WRITE))],
) -> RegistrationOut:
    ctx = request_ctx(request, session, principal)
    r = member_events.check_in(session, ctx, code, body.checkin_code)
    return RegistrationOut(event=code, status=r.status, checkin_code=r.checkin_code)


class ClosedOut(BaseModel):
    no_shows: int


@events_router.post(
    "/{code}/close",
    response_model=ClosedOut,
    summary="Close an event: members who did not come are no-shows",
    responses=errors(404),
)
def close(
    code: Code,
    session: SessionDep,
    request: Request,
    principal: Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))],
) -> ClosedOut:
    ctx = request_ctx(request, session, principal)
    return ClosedOut(no_shows=member_events.close(session, ctx, code))


# ---------------------------------------------------------------- milestones

milestones_router = api_router("/api/v1/members/{member_no}/milestones", tags=["campaigns"])


class MilestoneOut(BaseModel):
    code: str
    name: str
    points: int
    benefit: str


class MilestonesOut(BaseModel):
    earned: int
    unlocked: list[MilestoneOut]
    next: MilestoneOut | None
    to_next: int | None


@milestones_router.get(
    "",
    response_model=MilestonesOut,
    summary="Points milestones a member unlocked",
    responses=errors(404),
)
def get_milestones(
    member_no: Annotated[str, Path(pattern=r"^[0-9]{10}$")],
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.POINTS_READ))],
) -> MilestonesOut:
    p = milestones.member_progress(session, members.member_id(session, member_no))

    def out(m: milestones.Milestone) -> MilestoneOut:
        return MilestoneOut(code=m.code, name=m.name, points=m.points, benefit=m.benefit)

    return MilestonesOut(
        earned=p.earned,
        unlocked=[out(m) for m in p.unlocked],
        next=out(p.next) if p.next else None,
        to_next=p.to_next,
    )
