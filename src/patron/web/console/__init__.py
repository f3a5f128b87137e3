"""The operator console and the clerk desk, under /console. Each area is one module with its
own router; they call services, never SQL."""

from __future__ import annotations

from fastapi import APIRouter

from patron.web.console import (
    admin,
    approvals,
    auth,
    config,
    config_earning,
    dashboard,
    desk,
    exports,
    member_actions,
    members,
    privacy,
)

router = APIRouter()
for _module in (
    auth,
    dashboard,
    exports,  # before members: /members/export is not a member number
    members,
    member_actions,
    approvals,
    config,
    config_earning,
    desk,
    admin,
    privacy,
):
    router.include_router(_module.router)
