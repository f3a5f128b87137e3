"""Operator-editable earning rules and checkout pricing settings, with a preview."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.auth import permissions as perm
from patron.auth.principal import Principal
from patron.errors import Invalid
from patron.kit.timeutil import BoundedDateTime, business_tz
from patron.orders import service as orders
from patron.orders.pricing import PricingSettings
from patron.program import service as program
from patron.rules.definitions import EarningRules
from patron.rules.domain import preview_earning
from patron.tiers import service as tiers
from patron.web.deps import ClockDep, SessionDep, SettingsDep, require
from patron.web.routing import api_router

router = api_router("/api/v1/rules", tags=["rules"])
Configure = Annotated[Principal, Depends(require(perm.PROGRAM_CONFIGURE))]
Reader = Annotated[Principal, Depends(require(perm.TIERS_READ))]


@router.get("/earning", summary="The earning rules in force")
def get_earning(principal: Reader, session: SessionDep) -> EarningRules:
    return orders.earning_rules(session)


@router.put("/earning", summary="Replace the earning rules (validated, audited)")
def put_earning(
    body: EarningRules, principal: Configure, session: SessionDep, clock: ClockDep
) -> EarningRules:
    program.put_section(session, principal, orders.EARNING_SECTION, body, now=clock.now())
    return orders.earning_rules(session)


@router.get("/pricing", summary="Points value, points-payment share and discount stacking")
def get_pricing(principal: Reader, session: SessionDep) -> PricingSettings:
    return orders.pricing_settings(session)


@router.put("/pricing", summary="Replace the checkout pricing settings (validated, audited)")
def put_pricing(
    body: PricingSettings, principal: Configure, session: SessionDep, clock: ClockDep
) -> PricingSettings:
    program.put_section(session, principal, orders.PRICING_SECTION, body, now=clock.now())
    return orders.pricing_settings(session)


class RulePreviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount_fen": 30000,
                    "category": "beauty",
                    "tier": "gold",
                    "at": "2026-03-08T12:00:00+08:00",
                }
            ]
        },
    )
    amount_fen: int = Field(ge=0, le=100_000_000_00)
    category: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    tier: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    at: BoundedDateTime | None = None
    rules: EarningRules | None = Field(
        default=None, description="rules to try instead of those in force (nothing is saved)"
    )


class RulePreviewOut(BaseModel):
    points: int
    growth: int
    text: str


@router.post("/earning/preview", summary="What a purchase would earn, in one sentence")
def preview(
    body: RulePreviewIn,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> RulePreviewOut:
    rules = body.rules or orders.earning_rules(session)
    ladder = tiers.get_ladder(session)
    tier = None
    if body.tier is not None:
        tier = next((t for t in ladder.tiers if t.code == body.tier), None)
        if tier is None:
            raise Invalid("unknown_tier", f"No tier {body.tier!r} in the ladder.")
    result = preview_earning(
        rules,
        amount_fen=body.amount_fen,
        category=body.category,
        at=body.at or clock.now(),
        tz=business_tz(settings.business_timezone),
        tier_code=tier.code if tier else None,
        tier_name=tier.name if tier else None,
        tier_multiplier_bp=tier.benefits.points_multiplier_bp if tier else 10_000,
    )
    return RulePreviewOut(points=result.points, growth=result.growth, text=result.text)
