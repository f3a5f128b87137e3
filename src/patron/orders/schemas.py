from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from patron.coupons.schemas import CouponApplied, CouponCode, CouponLeftOut
from patron.kit.ids import Code, ExternalId, Sku, Source
from patron.kit.timeutil import BoundedDateTime

MemberNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]
Fen = Annotated[int, Field(ge=0, le=1_000_000_000_00)]
Quantity = Annotated[int, Field(ge=1, le=100_000)]
OrderChannel = Literal["store", "online", "mini_program", "app"]
PaymentMethod = Literal[
    "cash", "card", "wechat", "alipay", "points", "coupon", "stored_value", "other"
]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line_no: int | None = Field(default=None, ge=1, le=10_000)
    sku: Sku
    category: Code | None = Field(
        default=None, description="category code; looked up from the catalogue when omitted"
    )
    quantity: Quantity
    unit_price_fen: Fen
    discount_fen: Fen = 0


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: PaymentMethod
    amount_fen: Fen
    points: int | None = Field(default=None, ge=1, le=100_000_000)


class OrderIn(BaseModel):
    """An order as a POS or shop reports it (prices already computed there)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "pos",
                    "external_id": "SH001-20260301-0001",
                    "member_no": "1234567897",
                    "channel": "store",
                    "store_code": "SH001",
                    "ordered_at": "2026-03-01T10:15:00+08:00",
                    "lines": [
                        {"sku": "BEA-0001", "quantity": 1, "unit_price_fen": 19900},
                        {
                            "sku": "FRE-0102",
                            "quantity": 2,
                            "unit_price_fen": 1250,
                            "discount_fen": 500,
                        },
                    ],
                    "payments": [
                        {"method": "points", "amount_fen": 1000, "points": 1000},
                        {"method": "wechat", "amount_fen": 20900},
                    ],
                }
            ]
        },
    )
    source: Source
    external_id: ExternalId
    member_no: MemberNo
    channel: OrderChannel
    store_code: Code | None = None
    ordered_at: BoundedDateTime
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)
    payments: list[PaymentIn] = Field(min_length=1, max_length=10)
    earn: bool = Field(default=True, description="false for historical orders that earn nothing")


class OrderLineOut(BaseModel):
    line_no: int
    sku: str
    category: str
    quantity: int
    unit_price_fen: int
    discount_fen: int
    net_fen: int
    points_fen: int
    paid_fen: int
    returned_quantity: int


class OrderOut(BaseModel):
    source: str
    external_id: str
    member_no: str
    channel: str
    store_code: str | None
    ordered_at: datetime
    status: str
    total_fen: int
    points_used: int
    points_fen: int
    paid_fen: int
    points_earned: int
    growth_earned: int
    refunded_fen: int
    rules: dict[str, Any]
    lines: list[OrderLineOut]


class OrderPage(BaseModel):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line_no: int = Field(ge=1, le=10_000)
    quantity: Quantity


class ReturnIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_id": "R-0001",
                    "returned_at": "2026-03-05T09:00:00+08:00",
                    "lines": [{"line_no": 1, "quantity": 1}],
                }
            ]
        },
    )
    external_id: ExternalId
    returned_at: BoundedDateTime
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)


class ReturnOut(BaseModel):
    external_id: str
    order_external_id: str
    returned_at: datetime
    refund_fen: int
    points_returned: int
    points_clawed: int
    growth_clawed: int
    to_debt: int
    tier_changed_to: str | None = None


class BasketLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Sku
    quantity: Quantity
    discount_fen: Fen = 0


class QuoteIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "member_no": "1234567897",
                    "store_code": "SH001",
                    "channel": "store",
                    "lines": [{"sku": "BEA-0001", "quantity": 1}],
                    "points_to_use": 0,
                }
            ]
        },
    )
    member_no: MemberNo
    # No default: the natural one ("store") needs a store_code, which has none.
    channel: OrderChannel
    store_code: Code | None = Field(default=None, description="required for channel 'store'")
    lines: list[BasketLineIn] = Field(min_length=1, max_length=200)
    points_to_use: int = Field(default=0, ge=0, le=100_000_000)
    # coupons (patron.coupons): the quote picks the best valid combination of these
    coupon_codes: list[CouponCode] = Field(default_factory=list, max_length=10)
    best_coupons: bool = Field(
        default=False, description="also consider every usable coupon in the member's wallet"
    )


class CommitIn(QuoteIn):
    source: Source = "checkout"
    external_id: ExternalId
    expected_total_fen: Fen = Field(description="total_fen of the quote the customer accepted")
    expected_points_earned: int = Field(ge=0, le=100_000_000)
    payment_method: PaymentMethod = "cash"


class QuoteLineOut(BaseModel):
    sku: str
    category: str
    quantity: int
    list_unit_fen: int
    unit_price_fen: int
    member_price_applied: bool
    list_amount_fen: int
    member_price_saving_fen: int
    line_discount_fen: int
    tier_discount_fen: int
    birthday_discount_fen: int
    order_discount_fen: int
    coupon_discount_fen: int = 0
    net_fen: int
    points_fen: int
    points: int
    paid_fen: int
    #: a free gift's zero-price line: the coupon that gives it
    gift_coupon: str | None = None


class QuoteOut(BaseModel):
    member_no: str
    tier: str | None
    birthday_month: bool
    list_total_fen: int
    member_price_saving_fen: int
    line_discount_fen: int
    tier_discount_fen: int
    birthday_discount_fen: int
    order_discount_fen: int
    total_fen: int
    points_balance: int
    max_points: int
    points_used: int
    points_fen: int
    paid_fen: int
    points_earned: int
    growth_earned: int
    rules: dict[str, Any]
    lines: list[QuoteLineOut]
    # coupons (patron.coupons)
    coupon_discount_fen: int = 0
    coupons: list[CouponApplied] = Field(default_factory=list)
    coupons_left_out: list[CouponLeftOut] = Field(default_factory=list)
