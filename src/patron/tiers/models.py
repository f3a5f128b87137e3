"""A member's current tier and the full tier history (T4)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, UTCDateTime
from patron.ledger.models import BigId


class MemberTier(Base):
    """Absent row = the base tier; created on the first tier change."""

    __tablename__ = "member_tiers"
    __table_args__ = (
        Index("ix_member_tiers_next_evaluation", "next_evaluation_at"),
        Index("ix_member_tiers_tier_code", "tier_code"),
    )

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id"), primary_key=True, autoincrement=False
    )
    tier_code: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    next_evaluation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    grace_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: a manual override holds the tier (no evaluation) until this time; None = no override
    override_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    override_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TierChange(Base):
    __tablename__ = "tier_history"
    __table_args__ = (Index("ix_tier_history_member", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    from_code: Mapped[str] = mapped_column(String(32))
    to_code: Mapped[str] = mapped_column(String(32))
    #: upgrade | downgrade | grace | override | refund_demotion
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200), default="")
    growth: Mapped[int] = mapped_column(BigInteger, default=0)
    actor: Mapped[str] = mapped_column(String(120), default="system")
    at: Mapped[datetime] = mapped_column(UTCDateTime)
