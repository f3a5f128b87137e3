"""API shapes of campaigns and actions."""

from __future__ import annotations

from datetime import date
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.campaigns.domain import (
    MAX_FEN,
    MAX_POINTS,
    ActionKind,
    Audience,
    CodeStr,
    Schedule,
)
from patron.rules.definitions import BP, MAX_FACTOR_BP


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CodeStr
    name: str = Field(min_length=1, max_length=100)
    schedule: Schedule
    audience: Audience = Field(default_factory=Audience)
    #: earning multiplier while the schedule is on: 20000 = double points; None = none
    multiplier_bp: int | None = Field(default=None, ge=BP, le=MAX_FACTOR_BP)
    budget_points: int | None = Field(default=None, ge=0, le=MAX_POINTS)
    budget_fen: int | None = Field(default=None, ge=0, le=MAX_FEN)
    #: share held out as the control group (basis points, at most half); None = the setting
    control_bp: int | None = Field(default=None, ge=0, le=5_000)

    @model_validator(mode="after")
    def _needs_budget(self) -> Self:
        if (
            self.multiplier_bp is not None
            and self.budget_points is None
            and self.budget_fen is None
        ):
            raise ValueError("a campaign with a multiplier needs a budget in points or money")
        return self


class CampaignOut(BaseModel):
    code: str
    name: str
    status: str
    schedule: dict[str, object]
    audience: dict[str, object]
    multiplier_bp: int | None
    budget_points: int | None
    budget_fen: int | None
    budget_cap_bp: int
    control_bp: int
    points_cap: int | None
    points_used: int


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(pattern="^(active|paused|ended)$")


class CampaignPreviewOut(BaseModel):
    reach: int
    control: int
    points_cap: int | None
    max_cost_fen: int | None
    next_days: list[date]


class GroupOut(BaseModel):
    members: int
    buyers: int
    orders: int
    sales_fen: int
    conversion: float
    spend_per_member_fen: int


class IntervalOut(BaseModel):
    estimate: float
    low: float
    high: float


class ResultsOut(BaseModel):
    code: str
    first_day: date | None
    last_day: date | None
    participants: int
    treatment: GroupOut
    control: GroupOut
    points: int
    cost_fen: int
    #: extra sales over the control group's rate, in fen (None without a control group)
    incremental_sales_fen: int | None
    #: incremental sales per fen of cost (None without a control group or a cost)
    roi: float | None
    conversion_uplift: IntervalOut | None
    spend_uplift_fen: IntervalOut | None
    stratified_spend_uplift_fen: IntervalOut | None


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CodeStr
    kind: ActionKind
    name: str = Field(min_length=1, max_length=100)
    points: int = Field(ge=1, le=100_000)
    daily_cap: int | None = Field(default=None, ge=1, le=1_000)
    total_cap: int | None = Field(default=None, ge=1, le=100_000)
    campaign: CodeStr | None = None


class ActionOut(BaseModel):
    code: str
    kind: str
    name: str
    points: int
    daily_cap: int | None
    total_cap: int | None
    campaign: str | None
    active: bool


class ActionDoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_no: str = Field(min_length=1, max_length=16)
    #: the thing the member did (a review id, a share id): one reward per member and ref
    ref: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class GrantOut(BaseModel):
    action: str
    member_no: str
    ref: str
    points: int
    replayed: bool
