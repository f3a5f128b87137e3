"""Tier routes: a member's tier with progress and history, overrides, and the ladder."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy.orm import Session

from patron import context
from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.kit.timeutil import BoundedDateTime, business_tz
from patron.ledger import service as ledger
from patron.members import service as members
from patron.tiers import domain, service
from patron.tiers.domain import TierBenefits, TierLadder
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.routing import api_router

router = api_router("/api/v1/members/{member_no}/tier", tags=["tiers"])
ladder_router = api_router("/api/v1/tiers", tags=["tiers"])
MemberNo = Annotated[str, Path(pattern=r"^[0-9]{10}$")]


class TierChangeOut(BaseModel):
    at: datetime
    from_tier: str | None
    to_tier: str
    kind: str
    reason: str | None
    growth: int | None


class TierOut(BaseModel):
    member_no: str
    tier: str
    name: str
    name_zh: str
    benefits: TierBenefits
    since: datetime | None
    window_growth: int
    next_tier: str | None
    next_threshold: int | None
    growth_needed: int
    progress_bp: int
    retention_threshold: int | None
    next_evaluation_at: datetime | None
    grace_until: datetime | None
    override_until: datetime | None
    override_reason: str | None
    history: list[TierChangeOut]


class OverrideIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tier": "gold", "reason": "VIP complaint resolution", "until": None}]
        },
    )
    tier: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    until: BoundedDateTime | None = None


def _ctx(
    session: Session, principal: Principal, clock: ClockDep, settings: SettingsDep
) -> ledger.Ctx:
    return context.build(session, principal, clock.now(), business_tz(settings.business_timezone))


def _tier_out(session: Session, ctx: ledger.Ctx, member_no: str, member_id: int) -> TierOut:
    ladder = service.get_ladder(session)
    st = service.state(session, ctx, member_id)
    tier = next((t for t in ladder.tiers if t.code == st.code), ladder.tiers[0])
    prog = domain.progress(ladder, tier.code, st.window_growth)
    changes, _ = service.history(session, member_id, limit=20)
    return TierOut(
        member_no=member_no,
        tier=tier.code,
        name=tier.name,
        name_zh=tier.name_zh,
        benefits=tier.benefits,
        since=st.since,
        window_growth=st.window_growth,
        next_tier=prog.next,
        next_threshold=prog.next_threshold,
        growth_needed=prog.needed,
        progress_bp=prog.progress_bp,
        retention_threshold=tier.retention_threshold,
        next_evaluation_at=st.next_evaluation_at,
        grace_until=st.grace_until,
        override_until=st.override_until,
        override_reason=st.override_reason,
        history=[
            TierChangeOut(
                at=c.at,
                from_tier=c.from_code,
                to_tier=c.to_code,
                kind=c.kind,
                reason=c.reason,
                growth=c.growth,
            )
            for c in changes
        ],
    )


@router.get("", summary="A member's tier, benefits, progress to the next tier and history")
def get_tier(
    member_no: MemberNo,
    principal: Annotated[Principal, Depends(require(perm.TIERS_READ))],
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TierOut:
    member = members.get_member(session, member_no)
    return _tier_out(session, _ctx(session, principal, clock, settings), member_no, member.id)


@router.post("/override", summary="Set a member's tier by hand, with a reason (audited)")
def override_tier(
    member_no: MemberNo,
    body: OverrideIn,
    principal: Annotated[Principal, Depends(require(perm.POINTS_ADJUST))],
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> TierOut:
    member = members.get_member(session, member_no)
    ctx = _ctx(session, principal, clock, settings)
    service.override_by_hand(
        session,
        ctx,
        member.id,
        member_no,
        tier_code=body.tier,
        reason=body.reason,
        until=body.until,
    )
    return _tier_out(session, ctx, member_no, member.id)


@ladder_router.get("", summary="The tier ladder: thresholds, retention and benefits")
def get_ladder(
    principal: Annotated[Principal, Depends(require(perm.TIERS_READ))], session: SessionDep
) -> TierLadder:
    return service.get_ladder(session)


@ladder_router.put("", summary="Replace the tier ladder (validated, audited)")
def put_ladder(
    body: TierLadder,
    principal: Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))],
    session: SessionDep,
    clock: ClockDep,
) -> TierLadder:
    service.put_ladder(session, principal, body, clock.now())
    return service.get_ladder(session)
