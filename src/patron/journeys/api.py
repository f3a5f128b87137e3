"""Journeys API: save (versioned), pause, resume, list, and a member's paths."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.journeys import service
from patron.journeys.domain import Trigger
from patron.journeys.models import Journey
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.openapi import errors
from patron.web.routing import api_router

router = api_router("/api/v1", tags=["journeys"])
Reader = Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))]
Writer = Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))]
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
MemberNo = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,16}$")]


class JourneyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "welcome",
                    "name": "Welcome new members",
                    "trigger": "registration",
                    "steps": [
                        {"kind": "send", "template": "welcome"},
                        {"kind": "wait", "days": 3},
                        {"kind": "condition", "segment": "no-purchase", "else": "exit"},
                        {"kind": "coupon", "template": "WELCOME10"},
                    ],
                }
            ]
        },
    )
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    name: str = Field(min_length=1, max_length=100)
    trigger: Trigger
    params: dict[str, int] = Field(default_factory=dict)
    steps: list[dict[str, Any]] = Field(min_length=1, max_length=30)


class JourneyChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    trigger: Trigger | None = None
    params: dict[str, int] | None = None
    steps: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=30)


class JourneyOut(BaseModel):
    code: str
    name: str
    trigger: str
    params: dict[str, int]
    steps: list[dict[str, Any]]
    status: str
    version: int
    updated_at: datetime


def _out(j: Journey) -> JourneyOut:
    return JourneyOut(
        code=j.code,
        name=j.name,
        trigger=j.trigger,
        params=j.params,
        steps=j.steps,
        status=j.status,
        version=j.version,
        updated_at=j.updated_at,
    )


@router.get("/journeys", summary="Journeys")
def list_journeys(principal: Reader, session: SessionDep) -> list[JourneyOut]:
    return [_out(j) for j in service.list_journeys(session)]


@router.post(
    "/journeys",
    summary="Create a journey (loops and unknown references are refused)",
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
)
def create(body: JourneyIn, principal: Writer, session: SessionDep, clock: ClockDep) -> JourneyOut:
    j = service.create(
        session,
        principal,
        code=body.code,
        name=body.name,
        trigger=body.trigger,
        params=body.params,
        steps=body.steps,
        now=clock.now(),
    )
    return _out(j)


@router.patch(
    "/journeys/{code}",
    summary="Change a journey: a new version for new entrants",
    responses=errors(404),
)
def change(
    code: Code, body: JourneyChangeIn, principal: Writer, session: SessionDep, clock: ClockDep
) -> JourneyOut:
    j = service.change(
        session,
        principal,
        code,
        name=body.name,
        trigger=body.trigger,
        params=body.params,
        steps=body.steps,
        now=clock.now(),
    )
    return _out(j)


@router.post("/journeys/{code}/pause", summary="Pause a journey", responses=errors(404))
def pause(code: Code, principal: Writer, session: SessionDep, clock: ClockDep) -> JourneyOut:
    return _out(service.set_paused(session, principal, code, paused=True, now=clock.now()))


@router.post("/journeys/{code}/resume", summary="Resume a journey", responses=errors(404))
def resume(code: Code, principal: Writer, session: SessionDep, clock: ClockDep) -> JourneyOut:
    return _out(service.set_paused(session, principal, code, paused=False, now=clock.now()))


class PathStepOut(BaseModel):
    step: int
    kind: str
    outcome: str
    at: datetime


class PathOut(BaseModel):
    journey: str
    version: int
    status: str
    entered_at: datetime
    steps: list[PathStepOut]


@router.get(
    "/members/{member_no}/journeys",
    summary="The journeys a member entered and what happened at each step",
    responses=errors(404),
)
def member_paths(member_no: MemberNo, principal: Reader, session: SessionDep) -> list[PathOut]:
    return [
        PathOut(
            journey=j.code,
            version=e.version,
            status=e.status,
            entered_at=e.entered_at,
            steps=[
                PathStepOut(step=p.step + 1, kind=p.kind, outcome=p.outcome, at=p.at) for p in ps
            ],
        )
        for j, e, ps in service.member_paths(session, member_no)
    ]
