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
    mall_suppliers,
    mall_turnover,
    member_actions,
    members,
    privacy,
)

router = APIRouter()
for _module in (
    auth,
    dashboard,
    analytics,
    exports,  # before members: /members/export is not a member number
    members,
    member_actions,
    approvals,
    campaigns,
    config,
    config_earning,
    desk,
    mall_desk,
    mall,
    mall_promos,
    mall_suppliers,
    mall_turnover,
    admin,
    privacy,
    coupons,
):
    router.include_router(_module.router)
