"""Recall packs for dormant members: settings and a run now (docs/campaigns.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.campaigns import recall
from patron.campaigns.recall import RecallSettings
from patron.program import service as program
from patron.web.context import request_ctx
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.routing import api_router

router = api_router("/api/v1/recall", tags=["campaigns"])
Reader = Annotated[Principal, Depends(require(perm.CAMPAIGNS_READ))]
Writer = Annotated[Principal, Depends(require(perm.CAMPAIGNS_WRITE))]


class RecallRunOut(BaseModel):
    members: int
    points: int
    coupons: int


@router.get("/settings", summary="Recall pack settings")
def get_settings(_principal: Reader, session: SessionDep) -> RecallSettings:
    return recall.get_settings(session)


@router.put("/settings", summary="Change the recall pack settings")
def put_settings(
    body: RecallSettings, principal: Writer, session: SessionDep, clock: ClockDep
) -> RecallSettings:
    program.put_section(session, principal, recall.SECTION, body, now=clock.now())
    return body


@router.post("/run", summary="Give recall packs to the dormant members due now (one batch)")
def run(principal: Writer, session: SessionDep, request: Request) -> RecallRunOut:
    done = recall.run(session, request_ctx(request, session, principal))
    return RecallRunOut(members=done.members, points=done.points, coupons=done.coupons)
