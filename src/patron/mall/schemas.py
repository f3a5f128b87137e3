"""API shapes of the points mall. Integer fields carry bounds (points and fen are integers)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field

from patron.mall.domain import MAX_QUANTITY

Code = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
MAX_POINTS = 10_000_000
MAX_UNITS = 1_000_000


class GiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    category: str = Field(min_length=1, max_length=32)
    points: int = Field(ge=1, le=MAX_POINTS)
    cash_fen: int = Field(default=0, ge=0, le=100_000_000)
    min_tier: str | None = Field(default=None, max_length=32)
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    limit_per_member: int | None = Field(default=None, ge=1, le=10_000)
    limit_window: Literal["day", "month", "sale"] = "sale"
    is_active: bool = True


class GiftOut(BaseModel):
    code: str
    name: str
    description: str
    category: str
    points: int
    cash_fen: int
    min_tier: str | None
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    limit_per_member: int | None
    limit_window: str
    is_active: bool
    value_band: str
    available: int
    hot: bool


class GiftList(BaseModel):
    items: list[GiftOut]


class StockLine(BaseModel):
    gift_code: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int


class StockList(BaseModel):
    items: list[StockLine]


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    warehouse: str = Field(pattern=r"^[a-z0-9_-]{1,16}$")
    quantity: int = Field(ge=1, le=MAX_UNITS)
    reason: str = Field(default="", max_length=200)


class StockAdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    warehouse: str = Field(pattern=r"^[a-z0-9_-]{1,16}$")
    delta: int = Field(ge=-MAX_UNITS, le=MAX_UNITS)
    reason: str = Field(min_length=1, max_length=200)


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    from_warehouse: str = Field(pattern=r"^[a-z0-9_-]{1,16}$")
    to_warehouse: str = Field(pattern=r"^[a-z0-9_-]{1,16}$")
    quantity: int = Field(ge=1, le=MAX_UNITS)
    reason: str = Field(default="", max_length=200)


class MovementOut(BaseModel):
    id: int
    gift_code: str
    warehouse: str
    kind: str
    on_hand_delta: int
    reserved_delta: int
    redemption_code: str | None
    reason: str
    actor: str
    created_at: datetime


class MovementList(BaseModel):
    items: list[MovementOut]


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_no: str = Field(pattern=r"^[0-9]{10}$")
    gift_code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)
    delivery: Literal["pickup", "ship"] = "pickup"
    store_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    flash_sale_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class RedemptionOut(BaseModel):
    code: str
    member_no: str
    gift_code: str
    gift_name: str
    quantity: int
    points: int
    cash_fen: int
    warehouse: str
    delivery: str
    store_code: str | None
    status: str
    flash_sale_id: int | None
    code_expires_at: datetime
    verified_at: datetime | None
    verified_store: str | None
    carrier: str | None
    tracking_no: str | None
    shipped_at: datetime | None
    received_at: datetime | None
    cancelled_at: datetime | None
    returned_at: datetime | None = None
    created_at: datetime


class RedemptionList(BaseModel):
    items: list[RedemptionOut]


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)


class RedemptionReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=200)


class ShipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: str = Field(min_length=1, max_length=32)
    tracking_no: str = Field(pattern=r"^[A-Za-z0-9-]{4,64}$")


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=80)
    store_code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")


class FlashSaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    points: int = Field(ge=1, le=MAX_POINTS)
    quantity: int = Field(ge=1, le=MAX_UNITS)
    per_member_limit: int = Field(default=1, ge=1, le=MAX_QUANTITY)
    starts_at: datetime
    ends_at: datetime


class FlashSaleOut(BaseModel):
    id: int
    gift_code: str
    points: int
    quantity: int
    granted: int
    remaining: int
    per_member_limit: int
    starts_at: datetime
    ends_at: datetime


class FlashSaleList(BaseModel):
    items: list[FlashSaleOut]


class PrizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["points", "item", "none"]
    award_points: int = Field(default=0, ge=0, le=MAX_POINTS)
    #: probability in parts per million (all prizes of a pool sum to 1,000,000)
    ppm: int = Field(ge=0, le=1_000_000)
    stock: int | None = Field(default=None, ge=0, le=MAX_UNITS)
    is_fallback: bool = False


class PoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["wheel", "blindbox"] = "wheel"
    cost_points: int = Field(ge=1, le=MAX_POINTS)
    daily_limit: int = Field(default=3, ge=1, le=1000)
    is_active: bool = True
    prizes: list[PrizeIn] = Field(min_length=1, max_length=20)


class PrizeOut(BaseModel):
    id: int
    name: str
    kind: str
    award_points: int
    ppm: int
    stock: int | None
    is_fallback: bool


class PoolOut(BaseModel):
    code: str
    name: str
    kind: str
    cost_points: int
    daily_limit: int
    version: int
    is_active: bool
    prizes: list[PrizeOut]


class DrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_no: str = Field(pattern=r"^[0-9]{10}$")


class DrawOut(BaseModel):
    id: int
    pool_code: str
    pool_version: int
    prize: PrizeOut
    fell_back: bool
    points_spent: int
    points_awarded: int
    draws_left_today: int


class AlertOut(BaseModel):
    gift_code: str
    available: int
    monthly_forecast: int
    short: bool
    slow_mover: bool
    last_redeemed_at: datetime | None
    suggested_quantity: int


class AlertList(BaseModel):
    items: list[AlertOut]


class PurchaseRequestOut(BaseModel):
    id: int
    gift_code: str
    warehouse: str
    quantity: int
    status: str
    available_at_request: int
    forecast: int
    created_at: datetime
    received_at: datetime | None
    supplier_code: str | None = None
    unit_cost_fen: int | None = None


class PurchaseRequestList(BaseModel):
    items: list[PurchaseRequestOut]


class ReceiveRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    warehouse: str | None = Field(default=None, pattern=r"^[a-z0-9_-]{1,16}$")


# --------------------------------------------------------------------------- suppliers

MAX_FEN = 10**12


class SupplierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    contact: str = Field(default="", max_length=200)
    is_active: bool = True


class AgreementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(min_length=1, max_length=40)
    valid_from: date
    valid_to: date
    terms: str = Field(default="", max_length=500)


class AgreementOut(BaseModel):
    ref: str
    valid_from: date
    valid_to: date
    terms: str


class SupplierOut(BaseModel):
    code: str
    name: str
    contact: str
    is_active: bool
    in_force: bool
    agreements: list[AgreementOut]


class SupplierList(BaseModel):
    items: list[SupplierOut]


class SupplierQuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    unit_cost_fen: int = Field(ge=1, le=MAX_FEN)
    quoted_on: date | None = None
    min_quantity: int = Field(default=1, ge=1, le=MAX_UNITS)
    lead_days: int = Field(default=7, ge=0, le=365)


class SupplierQuoteOut(BaseModel):
    supplier_code: str
    gift_code: str
    unit_cost_fen: int
    min_quantity: int
    lead_days: int
    quoted_on: date


class GiftSuppliersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preferred: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    backup: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")


class GiftSuppliersOut(BaseModel):
    gift_code: str
    preferred: str
    backup: str | None


class ComparisonLine(BaseModel):
    supplier_code: str
    supplier_name: str
    unit_cost_fen: int
    min_quantity: int
    lead_days: int
    quoted_on: date
    role: Literal["preferred", "backup"] | None
    agreement_in_force: bool
    cheapest: bool


class ComparisonOut(BaseModel):
    gift_code: str
    complete: bool
    quotes: list[ComparisonLine]


class ComparisonList(BaseModel):
    month: str
    min_quotes: int
    items: list[ComparisonOut]


class GiftImageOut(BaseModel):
    id: int
    key: str
    width: int | None
    height: int | None
    #: the image the gift's pages show (the latest upload)
    main: bool
    created_at: datetime
    created_by: str
    #: where each rendition is fetched through the API (``large``, ``thumb``)
    urls: dict[str, str]


class GiftImageList(BaseModel):
    items: list[GiftImageOut]


class GiftImageUpload(BaseModel):
    """The multipart form of an image upload: the file in the field ``image``."""

    image: UploadFile | None = None
