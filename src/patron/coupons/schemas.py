"""API shapes of coupons: templates, issues, wallets, and what a quote says about coupons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.coupons.domain import TemplateRules
from patron.kit import ids

CouponCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{4,20}$")]
MemberNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]
IssueRef = Annotated[str, StringConstraints(pattern=ids.EXTERNAL_ID_PATTERN)]  # as order ids


class CouponApplied(BaseModel):
    code: str
    template: str
    kind: str
    discount_fen: int
    #: free gift / free shipping: the declared value, and the gift handed over
    value_fen: int
    gift_sku: str | None
    cost_bearer: str
    #: line number (1-based, in basket order) → fen off
    lines: dict[str, int]


class CouponLeftOut(BaseModel):
    code: str
    reason: str
    message: str


class CouponTemplateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "满 200 减 30",
                    "rules": {
                        "kind": "threshold",
                        "amount_fen": 3000,
                        "min_spend_fen": 20000,
                        "valid_days": 30,
                        "categories": ["beauty"],
                    },
                    "total_quantity": 1000,
                    "per_member_limit": 1,
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=120)
    rules: dict[str, Any] = Field(description="see TemplateRules in docs/coupons.md")
    total_quantity: int | None = Field(default=None, ge=1, le=100_000_000)
    per_member_limit: int = Field(default=1, ge=1, le=1000)
    points_price: int = Field(default=0, ge=0, le=100_000_000)
    status: Literal["active", "paused"] = "active"


class CouponTemplateOut(BaseModel):
    code: str
    name: str
    kind: str
    status: str
    rules: TemplateRules
    total_quantity: int | None
    per_member_limit: int
    issued_count: int
    points_price: int


class IssueIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"member_nos": ["1234567897"], "reason": "manual", "ref": "VIP-0301"}]
        },
    )
    member_nos: list[MemberNo] = Field(min_length=1, max_length=10_000)
    reason: Literal["welcome", "first_order", "birthday", "manual"] = "manual"
    ref: IssueRef = Field(
        default="manual", description="with the reason, what makes a repeat of this issue a replay"
    )


class IssueOut(BaseModel):
    issued: int
    already_held: int
    refused: dict[str, str] = Field(description="member number → reason")
    codes: dict[str, str] = Field(description="member number → code issued now")


class SegmentIssueIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"segment": "dormant-vip", "ref": "RECALL-0301"}]},
    )
    segment: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    ref: IssueRef = Field(description="what makes a repeat of this issue a replay (manual:REF)")


class BulkIssueOut(BaseModel):
    reached: int = Field(description="members the segment or audience selects now")
    issued: int = Field(description="coupons issued by this call (a replay: 0)")
    not_issued: int = Field(
        description="members reached but not given one: already held, over the per-member "
        "limit, other tiers, or none left"
    )
    left: int | None = Field(description="quantity left to issue (null: unlimited)")


class ExchangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    ref: IssueRef = Field(description="the exchange request's id: a retry with it replays")


class CouponOut(BaseModel):
    code: str
    template: str
    name: str
    kind: str
    status: str
    reason: str
    valid_from: datetime
    valid_until: datetime
    issued_at: datetime
    order_id: int | None
    discount_fen: int


class CouponHistoryOut(BaseModel):
    status: str
    event: str
    at: datetime
    order_id: int | None
    note: str


class CouponDetailOut(CouponOut):
    history: list[CouponHistoryOut]


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=200)
