from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, JSONType, UTCDateTime


class RiskReview(Base):
    """One assessment that stopped a redemption: the rules that fired and the model's score.

    ``decision`` is what was asked (``step_up``: an SMS code to the member; ``review``: an
    operator). ``status`` moves once from ``pending`` to ``verified`` (code entered),
    ``approved`` or ``rejected`` (operator); an approved or verified review lets the same member
    redeem the same gift once until ``expires_at``."""

    __tablename__ = "risk_reviews"
    __table_args__ = (
        Index("ix_risk_reviews_status", "status", "created_at"),
        Index("ix_risk_reviews_member", "member_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    action: Mapped[str] = mapped_column(String(24))  # mall_redemption
    subject: Mapped[str] = mapped_column(String(64))  # the gift's SKU
    points: Mapped[int] = mapped_column(BigInteger)
    store_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    device: Mapped[str | None] = mapped_column(String(64), nullable=True)
    score: Mapped[int] = mapped_column(Integer)  # 0–100
    rules: Mapped[list[Any]] = mapped_column(JSONType)
    decision: Mapped[str] = mapped_column(String(12))  # step_up | review
    status: Mapped[str] = mapped_column(String(12))  # pending|verified|approved|rejected|used
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)


class MemberFlag(Base):
    """A rule over many members at once (many new members on one phone prefix), found by the
    flag job with the keys to read phones; a redemption's assessment reads it in one query."""

    __tablename__ = "risk_member_flags"
    __table_args__ = (Index("uq_risk_member_flags", "member_id", "rule", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    rule: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)  # how many members share the signal
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime)
