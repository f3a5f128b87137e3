from __future__ import annotations

from datetime import date, datetime
from typing import Any

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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from patron.db import Base, JSONType, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class Order(Base):
    """A purchase received from a POS, shop or the checkout, unique by (source, external id)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_orders_source_external_id"),
        # Segments and lifecycle stages aggregate a member's purchases in a window from this
        # index alone on PostgreSQL (an index-only scan: no row lookups).
        Index(
            "ix_orders_member_time",
            "member_id",
            "ordered_at",
            postgresql_include=["status", "total_fen", "refunded_fen", "discount_fen"],
        ),
        Index("ix_orders_member_day", "member_id", "business_date"),
        # Covers the dashboard's range queries (sales per day, per buyer): no row lookups.
        Index(
            "ix_orders_day_sales",
            "business_date",
            "status",
            "member_id",
            "paid_fen",
            "refunded_fen",
        ),
        CheckConstraint("total_fen >= 0 AND paid_fen >= 0 AND points_fen >= 0", name="amounts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    store_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    business_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(24), default="completed")
    list_total_fen: Mapped[int] = mapped_column(BigInteger)
    discount_fen: Mapped[int] = mapped_column(BigInteger)
    total_fen: Mapped[int] = mapped_column(BigInteger)  # after discounts, before payment split
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # paid with points
    paid_fen: Mapped[int] = mapped_column(BigInteger)  # paid otherwise: the earning base
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    welcome_bonus: Mapped[int] = mapped_column(BigInteger, default=0)
    first_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    earn_posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    spend_posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Which rules produced the earned points and growth (rule id, factor, points).
    rules_trace: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Loads are stated where they are needed (``LINES_AND_PAYMENTS``); an unstated one raises.
    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.line_no", lazy="raise")
    payments: Mapped[list[OrderPayment]] = relationship(order_by="OrderPayment.id", lazy="raise")


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0 AND returned_quantity <= quantity", name="quantity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    discount_fen: Mapped[int] = mapped_column(BigInteger)
    net_fen: Mapped[int] = mapped_column(BigInteger)  # after discounts
    points_fen: Mapped[int] = mapped_column(BigInteger)  # share of the points payment
    points: Mapped[int] = mapped_column(BigInteger)
    paid_fen: Mapped[int] = mapped_column(BigInteger)  # net - points share
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_points: Mapped[int] = mapped_column(BigInteger, default=0)


class OrderPayment(Base):
    __tablename__ = "order_payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger, default=0)


class OrderReturn(Base):
    __tablename__ = "order_returns"
    __table_args__ = (
        UniqueConstraint("order_id", "external_id", name="uq_order_returns_order_external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    returned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refund_fen: Mapped[int] = mapped_column(BigInteger)
    points_returned: Mapped[int] = mapped_column(BigInteger)
    points_clawed: Mapped[int] = mapped_column(BigInteger)
    growth_clawed: Mapped[int] = mapped_column(BigInteger)
    to_debt: Mapped[int] = mapped_column(BigInteger, default=0)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    lines: Mapped[list[ReturnLine]] = relationship(lazy="raise")


class ReturnLine(Base):
    __tablename__ = "order_return_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("order_returns.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    refund_fen: Mapped[int] = mapped_column(BigInteger)
    points_returned: Mapped[int] = mapped_column(BigInteger)


class RuleBudgetUsage(Base):
    """Points each budgeted earning rule has given so far (per-rule budgets)."""

    __tablename__ = "rule_budget_usage"

    rule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


#: the loader options of a query whose orders are shown with their lines and payments
LINES_AND_PAYMENTS = (selectinload(Order.lines), selectinload(Order.payments))
