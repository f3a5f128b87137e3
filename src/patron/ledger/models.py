"""Tables of the points ledger and the growth ledger.

Postings, allocations and growth postings are append-only (triggers in migration 0002); every
other row here is derived state that ``patron check`` reconciles against them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
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

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; Postgres gets 64-bit ids.
BigId = BigInteger().with_variant(Integer, "sqlite")

POSTING_KINDS = ("earn", "release", "redeem", "reversal", "expire", "clawback", "adjust", "repay")


class PointsAccount(Base):
    """Cached balances of one member, updated in the same transaction as the postings.

    The row is also the member's ledger lock: every write starts by updating it.
    """

    __tablename__ = "points_accounts"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available_nonneg"),
        CheckConstraint("pending >= 0", name="pending_nonneg"),
        CheckConstraint("debt >= 0", name="debt_nonneg"),
    )

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="RESTRICT"), primary_key=True, autoincrement=False
    )
    available: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsPosting(Base):
    """One immutable change; deltas per bucket (available / pending / debt)."""

    __tablename__ = "points_postings"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        UniqueConstraint("reverses_id"),
        Index("ix_points_postings_member", "member_id", "id"),
        Index("ix_points_postings_source", "source_type", "source_id"),
        Index("ix_points_postings_restores", "restores_id"),
        # Covers the dashboard's points per day (issued / redeemed / expired).
        Index(
            "ix_points_postings_time",
            "created_at",
            "kind",
            "available_delta",
            "pending_delta",
        ),
        CheckConstraint(
            "kind IN ('earn','release','redeem','reversal','expire','clawback','adjust','repay')",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))
    available_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    debt_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(200), default="")
    source_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_postings.id"), nullable=True)
    #: a credit that gives back part of a redemption (an order's points payment on a return);
    #: unlike ``reverses_id`` several may name one redemption, never for more than it spent
    restores_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsLot(Base):
    """Points that became spendable together and expire together."""

    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_range"),
        # A member's open lots, with their expiry: the expiry job reads the due lots of a range
        # of members from it (and every write reads a member's open lots).
        Index(
            "ix_points_lots_member_open",
            "member_id",
            "expires_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        # The expiry job scans only lots that still hold points.
        Index(
            "ix_points_lots_due",
            "expires_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        Index("ix_points_lots_source", "source_type", "source_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    posting_id: Mapped[int] = mapped_column(ForeignKey("points_postings.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PointsAllocation(Base):
    """Which lots a debit consumed (positive) or a reversal restored (negative)."""

    __tablename__ = "points_allocations"
    __table_args__ = (
        Index("ix_points_allocations_posting", "posting_id"),
        Index("ix_points_allocations_lot", "lot_id"),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("points_postings.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lots.id"))
    member_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


class PointsHold(Base):
    """Pending points (return window): released once, or cancelled by a refund."""

    __tablename__ = "points_holds"
    __table_args__ = (
        CheckConstraint("amount >= 0 AND amount <= original_amount", name="amount_range"),
        CheckConstraint("status IN ('pending','released','cancelled')", name="status"),
        Index(
            "ix_points_holds_due",
            "release_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_points_holds_member", "member_id"),
        Index("ix_points_holds_source", "source_type", "source_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    posting_id: Mapped[int] = mapped_column(ForeignKey("points_postings.id"))
    original_amount: Mapped[int] = mapped_column(BigInteger)
    #: what is still held (a partial refund during the window reduces it)
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    release_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PointsRefund(Base):
    """One processed refund of a source (order): the natural key that makes clawback idempotent."""

    __tablename__ = "points_refunds"
    __table_args__ = (UniqueConstraint("source_type", "source_id", "refund_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    refund_id: Mapped[str] = mapped_column(String(64))
    order_total_fen: Mapped[int] = mapped_column(BigInteger)
    refund_amount_fen: Mapped[int] = mapped_column(BigInteger)
    points_clawed: Mapped[int] = mapped_column(BigInteger)
    growth_clawed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsAdjustment(Base):
    """A manual adjustment; above the approval limit it waits for a second approver."""

    __tablename__ = "points_adjustments"
    __table_args__ = (
        CheckConstraint("ledger IN ('points','growth')", name="ledger"),
        CheckConstraint("status IN ('pending_approval','applied','rejected')", name="status"),
        Index("ix_points_adjustments_status", "status"),
        # the daily limit sums what one staff member adjusted today
        Index("ix_points_adjustments_requester", "requested_by_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    ledger: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(120))
    requested_by_key: Mapped[str] = mapped_column(String(80))
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ExpiryNotice(Base):
    """A reminder event: points of a member that lapse on a date (the messaging issue sends it)."""

    __tablename__ = "points_expiry_notices"
    __table_args__ = (UniqueConstraint("member_id", "expires_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    expires_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GrowthAccount(Base):
    __tablename__ = "growth_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_nonneg"),)

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id"), primary_key=True, autoincrement=False
    )
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GrowthPosting(Base):
    """Growth value (成长值): earned, clawed back or adjusted, never spent.

    ``effective_at`` places the posting in a qualification window; a clawback carries the
    effective time of the earning it reverses so it lowers the same window.
    """

    __tablename__ = "growth_postings"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_growth_postings_member", "member_id", "effective_at"),
        Index("ix_growth_postings_source", "source_type", "source_id"),
        CheckConstraint("kind IN ('earn','clawback','adjust')", name="kind"),
        CheckConstraint("amount <> 0", name="amount_nonzero"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    source_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
