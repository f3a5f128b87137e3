"""Check-in settings for operators (the check-in itself is a portal page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.checkin import service
from patron.checkin.domain import SECTION, CheckinSettings
from patron.program import service as program
from patron.web.deps import ClockDep, SessionDep, require
from patron.web.routing import api_router

router = api_router("/api/v1/checkin", tags=["checkin"])


@router.get("/settings", response_model=CheckinSettings, summary="Daily check-in settings")
def get_settings(
    session: SessionDep,
    _principal: Annotated[Principal, Depends(require(perm.POINTS_READ))],
) -> CheckinSettings:
    return service.get_settings(session)


@router.put("/settings", response_model=CheckinSettings, summary="Change daily check-in settings")
def put_settings(
    body: CheckinSettings,
    session: SessionDep,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))],
) -> CheckinSettings:
    program.put_section(session, principal, SECTION, body, now=clock.now())
    return body
