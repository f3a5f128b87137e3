"""Risk review API: the settings, the review queue and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.members import service as members
from patron.program import service as program
from patron.risk import domain, service
from patron.risk.models import RiskReview
from patron.web.context import request_ctx
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1/risk", tags=["risk"])
Reviewer = Annotated[Principal, Depends(require(perm.RISK_REVIEW))]
Configurer = Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))]


class ReviewOut(BaseModel):
    id: int
    #: ``mall_redemption`` (held before it was made) or ``earning`` (an order or manual
    #: credit flagged after the fact; ``gift_code`` is then ``order:<id>`` or ``adjustment:<id>``)
    kind: str
    member_no: str
    gift_code: str
    points: int
    store_code: str | None
    score: int
    rules: list[str]
    decision: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None


class RiskDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approve: bool
    note: str = Field(default="", max_length=500)


def _out(r: RiskReview, member_no: str) -> ReviewOut:
    return ReviewOut(
        id=r.id,
        kind=r.action,
        member_no=member_no,
        gift_code=r.subject,
        points=r.points,
        store_code=r.store_code,
        score=r.score,
        rules=list(r.rules),
        decision=r.decision,
        status=r.status,
        created_at=r.created_at,
        decided_at=r.decided_at,
        decided_by=r.decided_by,
        note=r.note,
    )


@router.get("/settings", summary="The rules' limits and the score thresholds")
def get_settings(principal: Reviewer, session: SessionDep) -> domain.RiskSettings:
    return service.settings(session)


@router.put("/settings", summary="Change the rules' limits and the score thresholds")
def put_settings(
    body: domain.RiskSettings, principal: Configurer, session: SessionDep, clock: ClockDep
) -> domain.RiskSettings:
    program.put_section(session, principal, domain.SECTION, body, now=clock.now())
    return body


@router.get("/reviews", summary="Held redemptions, newest first")
def reviews(
    principal: Reviewer,
    session: SessionDep,
    status: Annotated[
        Literal["pending", "approved", "rejected", "verified", "used", "all"], Query()
    ] = "pending",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ReviewOut]:
    rows, _ = service.queue(session, status=status, limit=limit, offset=0)
    owners = members.by_ids(session, list({r.member_id for r in rows}))
    return [_out(r, owners[r.member_id].member_no) for r in rows]


@router.post(
    "/reviews/{review_id}/decision",
    summary="Approve (the member may redeem the gift; an earning stands) or reject (an "
    "earning's points are taken back), with a note",
    responses=errors(404, 409),
)
def decide(
    review_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: RiskDecisionIn,
    principal: Reviewer,
    session: SessionDep,
    request: Request,
) -> ReviewOut:
    ctx = request_ctx(request, session, principal)
    r = service.decide(
        session, principal, review_id, approve=body.approve, note=body.note, now=ctx.now, ctx=ctx
    )
    return _out(r, members.by_ids(session, [r.member_id])[r.member_id].member_no)
