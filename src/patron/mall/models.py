"""Tables of the points mall: gifts, stock per warehouse and its movement ledger, redemption
orders with their codes, flash sales and lotteries, suppliers with agreements and quotes.

Stock is kept twice on purpose: ``mall_stock`` holds the cached figures that guarded updates
test (``on_hand - reserved >= n``), ``mall_stock_movements`` the append-only history whose sums
must equal them (``mall/check.py``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, UTCDateTime


class Gift(Base):
    __tablename__ = "mall_gifts"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("cash_fen >= 0", name="cash_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    category: Mapped[str] = mapped_column(String(32), index=True)
    points: Mapped[int] = mapped_column(Integer)
    #: the cash part of a points + cash price (0 = points only)
    cash_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    #: lowest tier that may redeem it (None = every tier)
    min_tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sale_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sale_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: at most this many units per member in each ``limit_window`` (None = no limit)
    limit_per_member: Mapped[int | None] = mapped_column(Integer, nullable=True)
    limit_window: Mapped[str] = mapped_column(String(16), default="sale")  # day | month | sale
    image_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the operator's price; ``points`` may be lower while the dynamic price marks a slow mover
    #: down (None: never marked down, ``points`` is the operator's price)
    base_points: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Stock(Base):
    """Units of a gift in one warehouse: ``on_hand`` physically there, ``reserved`` promised to
    redemptions not yet handed over. Available = on_hand - reserved, never below zero."""

    __tablename__ = "mall_stock"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(16), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockMovement(Base):
    """Append-only (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "mall_stock_movements"
    __table_args__ = (Index("ix_mall_stock_movements_stock", "gift_id", "warehouse"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"))
    warehouse: Mapped[str] = mapped_column(String(16))
    #: receipt | reservation | release | shipment | return | adjustment | transfer_out |
    #: transfer_in
    kind: Mapped[str] = mapped_column(String(16))
    on_hand_delta: Mapped[int] = mapped_column(Integer)
    reserved_delta: Mapped[int] = mapped_column(Integer)
    redemption_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Redemption(Base):
    """A redemption order. ``status``: reserved → fulfilled (picked up, code verified) |
    shipped → received; reserved → cancelled (points and stock back, once); shipped or
    received → returned (the unit back in its warehouse, the points back, once)."""

    __tablename__ = "mall_redemptions"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_mall_redemptions_member_gift", "member_id", "gift_id", "created_at"),
        Index("ix_mall_redemptions_device", "device_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the short redemption code (also in the QR); the order's public reference
    code: Mapped[str] = mapped_column(String(16), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"))
    flash_sale_id: Mapped[int | None] = mapped_column(
        ForeignKey("mall_flash_sales.id"), nullable=True, index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    cash_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    warehouse: Mapped[str] = mapped_column(String(16))
    delivery: Mapped[str] = mapped_column(String(8))  # pickup | ship
    store_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: the device the request came from (``X-Device-Id``), for risk review's per-device rule
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    spend_posting_id: Mapped[int] = mapped_column(BigInteger)
    reversal_posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    code_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verified_store: Mapped[str | None] = mapped_column(String(32), nullable=True)
    verified_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    carrier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tracking_no: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: a shipped gift sent back: the unit is in its warehouse again, the points given back
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    return_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlashSale(Base):
    """A limited quantity of a gift at a flash price from ``starts_at``: ``granted`` only grows
    by a guarded UPDATE (``granted + n <= quantity``), released again when a unit is cancelled
    or returned."""

    __tablename__ = "mall_flash_sales"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("granted >= 0 AND granted <= quantity", name="granted_within_quantity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    granted: Mapped[int] = mapped_column(Integer, default=0)
    per_member_limit: Mapped[int] = mapped_column(Integer, default=1)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: set when an operator closed the sale before its end (no unit is granted after it)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LotteryPool(Base):
    """A wheel or blind box. Changing its prizes makes a new ``version``; draws keep theirs."""

    __tablename__ = "mall_lottery_pools"
    __table_args__ = (CheckConstraint("cost_points > 0", name="cost_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # wheel | blindbox
    cost_points: Mapped[int] = mapped_column(Integer)
    daily_limit: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LotteryPrize(Base):
    """A prize of one pool version. ``ppm``: probability in parts per million (integers, so the
    published odds sum to exactly 1). ``stock`` None = unlimited; the pool's fallback prize must
    be unlimited (it is what an out-of-stock prize falls to)."""

    __tablename__ = "mall_lottery_prizes"
    __table_args__ = (
        CheckConstraint("ppm >= 0 AND ppm <= 1000000", name="ppm_range"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        Index("ix_mall_lottery_prizes_pool", "pool_id", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("mall_lottery_pools.id"))
    version: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # points | item | none
    award_points: Mapped[int] = mapped_column(Integer, default=0)
    ppm: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer, nullable=True)
    is_fallback: Mapped[bool] = mapped_column(Boolean, default=False)


class LotteryDraw(Base):
    __tablename__ = "mall_lottery_draws"
    __table_args__ = (
        UniqueConstraint("member_id", "pool_id", "business_date", "seq"),
        Index("ix_mall_lottery_draws_pool", "pool_id", "pool_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("mall_lottery_pools.id"))
    pool_version: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    business_date: Mapped[date] = mapped_column(Date)
    #: the member's n-th draw of the pool that day (the unique key caps the daily limit)
    seq: Mapped[int] = mapped_column(Integer)
    #: the prize the random number chose, and the one given (differs after a fallback)
    drawn_prize_id: Mapped[int] = mapped_column(ForeignKey("mall_lottery_prizes.id"))
    prize_id: Mapped[int] = mapped_column(ForeignKey("mall_lottery_prizes.id"))
    roll: Mapped[int] = mapped_column(Integer)
    spend_posting_id: Mapped[int] = mapped_column(BigInteger)
    award_posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PurchaseRequest(Base):
    """A request to buy more of a gift, raised when its stock falls below the safety level
    (R4); receiving it records a stock receipt."""

    __tablename__ = "mall_purchase_requests"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        # at most one open request per gift and warehouse (the scheduled job relies on it)
        Index(
            "ux_mall_purchase_requests_open",
            "gift_id",
            "warehouse",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"), index=True)
    warehouse: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # open | received
    available_at_request: Mapped[int] = mapped_column(Integer)
    forecast: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(120))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the supplier it goes to (the gift's preferred one, the backup when the preferred one's
    #: agreement lapsed; None when neither has an agreement in force) and its quoted unit cost
    supplier_id: Mapped[int | None] = mapped_column(
        ForeignKey("mall_suppliers.id"), nullable=True, index=True
    )
    unit_cost_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Supplier(Base):
    __tablename__ = "mall_suppliers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    contact: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SupplierAgreement(Base):
    """A supply agreement, in force from ``valid_from`` to ``valid_to`` (both included)."""

    __tablename__ = "mall_supplier_agreements"
    __table_args__ = (
        CheckConstraint("valid_to >= valid_from", name="valid_window"),
        UniqueConstraint("supplier_id", "ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("mall_suppliers.id"), index=True)
    ref: Mapped[str] = mapped_column(String(40))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    terms: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SupplierQuote(Base):
    """A supplier's price for a gift on a day; the monthly comparison reads each supplier's
    latest quote of the month."""

    __tablename__ = "mall_supplier_quotes"
    __table_args__ = (
        CheckConstraint("unit_cost_fen > 0", name="cost_positive"),
        CheckConstraint("min_quantity > 0", name="min_quantity_positive"),
        Index("ix_mall_supplier_quotes_gift", "gift_id", "quoted_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("mall_suppliers.id"))
    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"))
    unit_cost_fen: Mapped[int] = mapped_column(BigInteger)
    min_quantity: Mapped[int] = mapped_column(Integer, default=1)
    lead_days: Mapped[int] = mapped_column(Integer, default=7)
    quoted_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GiftSuppliers(Base):
    """A gift's preferred supplier and its backup."""

    __tablename__ = "mall_gift_suppliers"
    __table_args__ = (
        CheckConstraint(
            "backup_supplier_id IS NULL OR backup_supplier_id <> preferred_supplier_id",
            name="backup_differs",
        ),
    )

    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"), primary_key=True)
    preferred_supplier_id: Mapped[int] = mapped_column(ForeignKey("mall_suppliers.id"))
    backup_supplier_id: Mapped[int | None] = mapped_column(
        ForeignKey("mall_suppliers.id"), nullable=True
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PriceChange(Base):
    """The history of a gift's points price: an operator's change or a dynamic markdown."""

    __tablename__ = "mall_price_changes"
    __table_args__ = (Index("ix_mall_price_changes_gift", "gift_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"))
    old_points: Mapped[int] = mapped_column(Integer)
    new_points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(16))  # operator | slow_mover
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GiftImage(Base):
    """An uploaded image of a gift (its renditions are in the image store under ``key``); the
    gift's ``image_key`` names the one pages show."""

    __tablename__ = "mall_gift_images"
    __table_args__ = (UniqueConstraint("gift_id", "key", name="uq_mall_gift_images_gift_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gift_id: Mapped[int] = mapped_column(ForeignKey("mall_gifts.id"))
    key: Mapped[str] = mapped_column(String(200))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
