"""The operator console and the clerk desk, under /console. Each area is one module with its
own router; they call services, never SQL."""

from __future__ import annotations

from fastapi import APIRouter

from patron.web.console import (
    admin,
    analytics,
    analytics_reports,
    approvals,
    auth,
    campaign_ops,
    campaign_settings,
    campaigns,
    checkin_plans,
    config,
    config_earning,
    contests,
    coupons,
    dashboard,
    desk,
    exports,
    jobs,
    journeys,
    mall,
    mall_desk,
    mall_promos,
    mall_suppliers,
    mall_turnover,
    member_actions,
    members,
    members_batch,
    orders,
    privacy,
    risk,
    segments,
    service,
    service_export,
    service_nps,
)

router = APIRouter()
for _module in (
    auth,
    dashboard,
    analytics,
    analytics_reports,
    exports,  # before members: /members/export is not a member number
    members_batch,  # before members: /members/batch is not a member number
    members,
    member_actions,
    orders,
    approvals,
    campaign_ops,
    campaign_settings,
    campaigns,
    checkin_plans,
    contests,
    journeys,
    config,
    config_earning,
    desk,
    mall_desk,
    mall,
    mall_promos,
    mall_suppliers,
    mall_turnover,
    admin,
    jobs,
    privacy,
    service_nps,
    service_export,  # before service: /service/export is not a ticket number
    service,
    risk,
    coupons,
    segments,
):
    router.include_router(_module.router)
