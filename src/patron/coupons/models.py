from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, JSONType, UTCDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


class CouponTemplate(Base):
    """What a coupon is worth and where it applies (``rules``: ``coupons.domain.TemplateRules``).
    ``issued_count`` moves only by a guarded UPDATE, so it never passes ``total_quantity``."""

    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint(
            "total_quantity IS NULL OR issued_count <= total_quantity", name="quantity"
        ),
        CheckConstraint("issued_count >= 0 AND per_member_limit >= 1", name="counts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused
    rules: Mapped[dict[str, Any]] = mapped_column(JSONType)
    total_quantity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    per_member_limit: Mapped[int] = mapped_column(Integer, default=1)
    issued_count: Mapped[int] = mapped_column(BigInteger, default=0)
    #: points a member pays to take one in exchange (0 = not exchangeable)
    points_price: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Coupon(Base):
    """One coupon in a member's wallet. Unique by (template, member, issue key): an issue sent
    twice replays. A redeemed coupon names its order and the fen it took off each line."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("template_id", "member_id", "issue_key", name="uq_coupons_issue"),
        Index("ix_coupons_member_status", "member_id", "status", "valid_until"),
        Index("ix_coupons_status_until", "status", "valid_until"),
        Index("ix_coupons_order", "order_id"),
        CheckConstraint(
            "(status = 'redeemed') = (order_id IS NOT NULL)", name="redeemed_has_order"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reason: Mapped[str] = mapped_column(String(16))
    issue_key: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="issued")
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the points spend of an exchange
    posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    #: order line number → fen off (its share for returns)
    allocation: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CouponHistory(Base):
    """Every status a coupon took, in order (issued, redeemed, restored, expired, voided)."""

    __tablename__ = "coupon_history"
    __table_args__ = (Index("ix_coupon_history_coupon", "coupon_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(200), default="")
