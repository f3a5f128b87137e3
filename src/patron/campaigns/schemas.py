"""API shapes of campaigns and actions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal, Self

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.campaigns.domain import (
    MAX_FEN,
    MAX_POINTS,
    ActionKind,
    Audience,
    CodeStr,
    Schedule,
)
from patron.kit.timeutil import BoundedDateTime
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
    #: coupons the campaign gave (audience issues, action rewards) that were redeemed
    coupons_redeemed: int
    #: their discount, part of ``cost_fen``
    coupon_cost_fen: int
    #: points at their cost + redeemed coupons' discount + the campaign's other cost
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
    #: a coupon template's code: each reward also gives one of its coupons
    coupon: str | None = Field(default=None, min_length=1, max_length=64)


class ActionOut(BaseModel):
    code: str
    kind: str
    name: str
    points: int
    daily_cap: int | None
    total_cap: int | None
    campaign: str | None
    active: bool
    coupon: str | None = None


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
    #: the coupon the reward gave (an action with a coupon template)
    coupon: str | None = None
    #: why the action's coupon could not be given (sold_out, wrong_tier, over_member_limit,
    #: coupon_template_paused…); the points were given all the same
    coupon_refused: str | None = None


# --------------------------------------------------------------------------- UGC contests


class ContestPut(BaseModel):
    """A contest's settings (``PUT /contests/{code}`` creates or changes it)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    starts_at: BoundedDateTime
    ends_at: BoundedDateTime
    reward_points: int = Field(default=0, ge=0, le=1_000_000)
    #: a coupon template's code given to each winner (None: no coupon)
    reward_coupon: str | None = Field(default=None, min_length=1, max_length=64)
    max_winners: int = Field(ge=1, le=1000)


class ContestOut(BaseModel):
    code: str
    name: str
    description: str
    starts_at: datetime
    ends_at: datetime
    reward_points: int
    reward_coupon: str | None
    max_winners: int
    #: open | upcoming | closed (by the server's clock)
    state: Literal["upcoming", "open", "closed"]
    pending: int
    approved: int
    winners: int


class ContestList(BaseModel):
    items: list[ContestOut]


class ContestEntryOut(BaseModel):
    id: int
    member_no: str
    text: str
    #: pending | approved | rejected
    status: Literal["pending", "approved", "rejected"]
    note: str
    moderated_at: datetime | None
    winner: bool
    rewarded_at: datetime | None
    coupon_code: str | None
    created_at: datetime
    #: the renditions of its photo (image/webp), none when it has no photo
    image_urls: dict[str, str]


class ContestEntryList(BaseModel):
    items: list[ContestEntryOut]


class ContestModeration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: str = Field(default="", max_length=500)


class ContestWinnersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_ids: list[int] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _ids_in_range(self) -> Self:
        if any(not 1 <= i <= 2**31 - 1 for i in self.entry_ids):
            raise ValueError("entry ids are positive 32-bit integers")
        return self


class ContestWinnersOut(BaseModel):
    #: entries made winners (and rewarded) by this call
    chosen: list[int]
    #: entries named again that had already won: nothing given twice
    already: list[int]


class ContestEntryUpload(BaseModel):
    """A member's entry sent by a mini-program (multipart): the member's number, the text and
    an optional photo in the field ``image``."""

    member_no: str = Field(pattern=r"^[0-9]{10}$")
    text: str = Field(min_length=1, max_length=2000)
    image: UploadFile | None = None
