from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from patron.db import Base, UTCDateTime


class CheckIn(Base):
    """One row per member and business day: the unique key makes a second check-in impossible,
    and the ledger earning uses the same natural key (member + day)."""

    __tablename__ = "member_checkins"
    __table_args__ = (UniqueConstraint("member_id", "business_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    business_date: Mapped[date] = mapped_column(Date)
    streak: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    bonus: Mapped[int] = mapped_column(Integer, default=0)
    posting_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
