"""API shapes of the ledger. Amounts are strict integers: ``1.0``, ``"10"`` or ``true`` are 422."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from patron.ledger.domain import MAX_AMOUNT_FEN, MAX_API_SOURCE_TYPE, MAX_POINTS_PER_POSTING

Points = Annotated[StrictInt, Field(gt=0, le=MAX_POINTS_PER_POSTING)]
SignedPoints = Annotated[StrictInt, Field(ge=-MAX_POINTS_PER_POSTING, le=MAX_POINTS_PER_POSTING)]
Fen = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT_FEN)]
#: A caller's own source type: stored apart from Patron's (``order``, ``checkin`` …), see domain.
SourceType = Annotated[
    str, Field(min_length=1, max_length=MAX_API_SOURCE_TYPE, pattern=r"^[a-z][a-z0-9_.-]*$")
]
SourceId = Annotated[str, Field(min_length=1, max_length=64)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EarnIn(_In):
    points: Points
    #: must be 0: growth comes from orders, actions and adjustments (422 growth_not_allowed)
    growth: Annotated[StrictInt, Field(ge=0, le=MAX_POINTS_PER_POSTING)] = 0
    source_type: SourceType
    source_id: SourceId
    reason: str = Field(default="", max_length=200)
    #: days in the return window before the points become spendable (default: setting)
    pending_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = None


class SpendIn(_In):
    points: Points
    source_type: SourceType
    source_id: SourceId
    reason: str = Field(default="", max_length=200)


class RefundIn(_In):
    source_type: SourceType
    source_id: SourceId
    refund_id: SourceId
    order_total_fen: Fen
    refund_amount_fen: Fen


class AdjustmentIn(_In):
    ledger: Literal["points", "growth"] = "points"
    amount: SignedPoints
    reason: str = Field(min_length=1, max_length=200)


class DecisionIn(_In):
    note: str = Field(default="", max_length=200)


class AllocationOut(BaseModel):
    lot_id: int
    amount: int


class PostingOut(BaseModel):
    id: int
    kind: str
    available_delta: int
    pending_delta: int
    debt_delta: int
    reason: str
    #: as the caller named it for ``origin`` "api"; Patron's own type (order, checkin …) otherwise
    source_type: str | None
    origin: Literal["api", "patron"] = "patron"
    source_id: str | None
    reverses_id: int | None
    actor: str
    created_at: datetime
    allocations: list[AllocationOut] = []


class ExpiryLine(BaseModel):
    #: last business day on which these points can be used
    last_day: date
    expires_at: datetime
    points: int


class PendingLine(BaseModel):
    release_at: datetime
    points: int


class BalanceOut(BaseModel):
    member_no: str
    available: int
    pending: int
    debt: int
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_expired: int
    expiry_schedule: list[ExpiryLine]
    pending_schedule: list[PendingLine]


class PostingResultOut(BaseModel):
    posting: PostingOut
    replayed: bool
    balance: BalanceOut
    tier_changed_to: str | None = None


class HistoryOut(BaseModel):
    items: list[PostingOut]
    total: int
    limit: int
    offset: int


class RefundOut(BaseModel):
    refund_id: int
    points_clawed: int
    growth_clawed: int
    from_pending: int
    from_available: int
    to_debt: int
    replayed: bool
    tier_changed_to: str | None
    balance: BalanceOut


class AdjustmentOut(BaseModel):
    id: int
    member_id: int
    ledger: str
    amount: int
    reason: str
    status: str
    requested_by: str
    decided_by: str | None
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None


class GrowthOut(BaseModel):
    member_no: str
    balance: int
    lifetime_earned: int
    window_growth: int
    window_start: datetime
    qualification_window: str
