"""The operator console and the clerk desk, under /console. Each area is one module with its
own router; they call services, never SQL."""

from __future__ import annotations

from fastapi import APIRouter

from patron.web.console import (
    admin,
    analytics,
    approvals,
    auth,
    campaigns,
    config,
    config_earning,
    coupons,
    dashboard,
    desk,
    exports,
    mall,
    mall_desk,
    mall_promos,
    member_actions,
    members,
    members_batch,
    orders,
    privacy,
)

router = APIRouter()
for _module in (
    auth,
    dashboard,
    analytics,
    exports,  # before members: /members/export is not a member number
    members_batch,  # before members: /members/batch is not a member number
    members,
    member_actions,
    orders,
    approvals,
    campaigns,
    config,
    config_earning,
    desk,
    mall_desk,
    mall,
    mall_promos,
    admin,
    privacy,
    coupons,
):
    router.include_router(_module.router)
