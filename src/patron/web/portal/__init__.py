"""The member portal (mobile H5), under /portal. Each area is one module with its own router."""

from __future__ import annotations

from fastapi import APIRouter

from patron.web.portal import (
    activities,
    checkin,
    contests,
    coupons,
    helpdesk,
    home,
    legal,
    login,
    mall,
    mall_play,
    mydata,
    phone,
    points,
    profile,
    risk_check,
    tier,
)

router = APIRouter()
for _module in (
    login,
    home,
    points,
    tier,
    checkin,
    mall,
    mall_play,
    activities,
    contests,
    profile,
    phone,
    mydata,
    coupons,
    helpdesk,
    risk_check,
    legal,
):
    router.include_router(_module.router)
